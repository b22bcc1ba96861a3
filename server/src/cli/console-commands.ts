/**
 * console: a sign-in link for the admin console, `${PUBLIC_URL}/console#token=…`. The token
 * rides in the fragment, which browsers never send, so it reaches no server's access log;
 * the page drops it from the address bar at once. It is printed and nowhere else: no log
 * line, no audit data (the audit row has its jti).
 */
import { ConsoleSignInService, type ConsoleSignIn } from '../agents/console-sign-in-service.js';
import { requireUuid } from '../http/validation.js';
import { SigningKeys } from '../keys/signing-keys.js';
import { AccessTokens } from '../oauth/access-tokens.js';
import { preparedStatements } from '../storage/prepared.js';
import { formatFields } from './output.js';
import { inOrganization, listOption, textOption, type CommandContext, type DatabaseCommand } from './command.js';

/**
 * The token issuer the server has, for this command: the signing keys as the server loads
 * them (with the server's own key ring when the server runs the command), without the
 * periodic reload a one-off signature does not need.
 */
async function loadAccessTokens({ config, database, clock, keyRing }: CommandContext): Promise<AccessTokens> {
  const keys = new SigningKeys(database.knex, config.signingAlg, config.tokenTtlSeconds, clock, { keyRing: keyRing() });
  await keys.refresh();
  return new AccessTokens(preparedStatements(database), keys, config, clock);
}

/** http:// to anything but loopback. */
function isCleartextRemote(publicUrl: string): boolean {
  const { protocol, hostname } = new URL(publicUrl);
  return protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(hostname) && !hostname.endsWith('.localhost');
}

function describeSignIn(signIn: ConsoleSignIn, url: string): string {
  return [
    'Admin console sign-in link:',
    `  ${url}`,
    formatFields([
      ['agent', `${signIn.agent.agentId} (${signIn.agent.name})`],
      ['scopes', signIn.scopes.join(' ') || '-'],
      ['expires', signIn.expiresAt.toISOString()],
    ]),
    'Whoever opens this link is signed in as this agent until it expires: treat it as a password.',
    'Browsers keep visited links in their history: open it in a private window.',
  ].join('\n');
}

export const consoleCommand: DatabaseCommand = inOrganization({
  name: 'console',
  summary: 'print a sign-in link for the admin console: a 15-minute token for an agent (default: the bootstrap admin)',
  synopsis: '[--agent <agentId>] [--scope <scope>]...',
  options: { agent: { type: 'string' }, scope: { type: 'string', multiple: true } },
  optionHelp: {
    agent: 'the agent to sign in as (default: the bootstrap admin)',
    scope: "only these of the agent's scopes (e.g. --scope agents:read --scope audit:read for a read-only console); repeat, or space-separate (default: all of them)",
  },
  run: async (context, { options }) => {
    const agentOption = textOption(options.agent);
    const agentId = agentOption === undefined ? undefined : requireUuid(agentOption, 'agentId');
    const service = new ConsoleSignInService({ knex: context.knex, config: context.config, tokens: () => loadAccessTokens(context) });
    const signIn = await service.signIn(context.caller, agentId, listOption(options.scope));
    const url = `${context.config.publicUrl}/console#token=${signIn.accessToken}`;
    if (isCleartextRemote(context.config.publicUrl)) {
      context.output.warn(`PUBLIC_URL is plain http on a host other than this machine: the token would cross the network in clear text. Serve the IdP over https.`);
    }
    context.output.result({ url, agentId: signIn.agent.agentId, scopes: signIn.scopes, expiresAt: signIn.expiresAt.toISOString() }, () => describeSignIn(signIn, url));
  },
});
