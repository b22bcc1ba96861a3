/**
 * Signing in to the admin console (/console): the operator mints a short-lived token for an
 * agent, by default the bootstrap admin, and hands it over as a link. The token takes the
 * path every token takes (AccessTokens.issue): the issue_grants gate (agent and organization
 * active, scopes held), the rate window and the monthly quotas, the access_tokens record
 * and the `token.issued` audit row, here with the operator as actor; it is signed with the
 * active signing key. It carries no credential, so only the agent's (and its
 * organization's) state and scopes keep it alive, and it can be revoked like any other.
 */
import type { Knex } from 'knex';
import { actorOf, type Caller } from '../authorization/caller.js';
import { assertVisible, mayActIn } from '../authorization/tenancy.js';
import type { Config } from '../config.js';
import { isKnownScope } from '../authorization/scopes.js';
import { Conflict, Forbidden, NotFound, RateLimited, UnauthorizedClient, ValidationFailed } from '../errors.js';
import { GrantGateClosed, type AccessTokens } from '../oauth/access-tokens.js';
import { audienceFor } from '../oauth/audiences.js';
import { findOrganization } from '../tenancy/organization-store.js';
import type { Agent } from './agent.js';
import { findAgent } from './agent-store.js';
import { findBootstrapAdmin } from './bootstrap-admin.js';

/** 15 minutes, or TOKEN_TTL_SECONDS when that is shorter (AccessTokens.issue never exceeds it). */
export const CONSOLE_TOKEN_TTL_SECONDS = 900;

export interface ConsoleSignInServiceDeps {
  readonly knex: Knex;
  readonly config: Pick<Config, 'publicUrl' | 'tokenAudiences' | 'bootstrapAdmin'>;
  /** Loaded for a sign-in that passed the checks: reading the signing keys decrypts the active one. */
  readonly tokens: () => Promise<Pick<AccessTokens, 'issue'>>;
}

export interface ConsoleSignIn {
  readonly agent: Agent;
  readonly scopes: readonly string[];
  readonly accessToken: string;
  readonly expiresAt: Date;
}

export class ConsoleSignInService {
  constructor(private readonly deps: ConsoleSignInServiceDeps) {}

  /**
   * A token for `agentId` (undefined: the bootstrap admin) with `scopes`, some of the agent's
   * (undefined: all of them); only the operator may mint one.
   */
  async signIn(caller: Caller, agentId: string | undefined, scopes?: readonly string[]): Promise<ConsoleSignIn> {
    if (caller.kind !== 'operator') throw new Forbidden('Only the operator signs in to the console.');
    const agent = await this.agentToSignIn(caller, agentId);
    await this.assertMayObtainTokens(agent);
    const granted = scopes === undefined ? agent.scopes : [...new Set(scopes)];
    const unknown = granted.filter((scope) => !isKnownScope(scope));
    if (unknown.length > 0) throw new ValidationFailed(`Unknown scope: ${unknown.join(', ')}.`);
    const notHeld = granted.filter((scope) => !agent.scopes.includes(scope));
    if (notHeld.length > 0) throw new Forbidden(`Agent ${agent.agentId} does not hold ${notHeld.join(', ')}: a console token has some of its agent's scopes, never more.`);
    const tokens = await this.deps.tokens();
    try {
      const issued = await tokens.issue({
        agentId: agent.agentId,
        orgId: agent.orgId,
        credentialId: null,
        ttlSeconds: CONSOLE_TOKEN_TTL_SECONDS,
        grantType: 'console',
        scopes: granted,
        audience: audienceFor(this.deps.config, undefined),
        audit: { type: 'token.issued', actor: actorOf(caller), data: { via: 'console' } },
      });
      return { agent, scopes: granted, accessToken: issued.accessToken, expiresAt: issued.expiresAt };
    } catch (error) {
      throw asRefusal(error, agent);
    }
  }

  private async agentToSignIn(caller: Caller, agentId: string | undefined): Promise<Agent> {
    if (agentId !== undefined) return assertVisible(caller, await findAgent(this.deps.knex, agentId), 'Agent');
    const admin = await findBootstrapAdmin(this.deps.knex, this.deps.config);
    if (admin && mayActIn(caller, admin.orgId)) return admin;
    throw new NotFound('Agent', admin ? 'The bootstrap admin is not in this organization: name an agent with --agent.' : 'No bootstrap admin found: name an agent with --agent.');
  }

  /** What the database gate would refuse, said in words: the gate still decides. */
  private async assertMayObtainTokens(agent: Agent): Promise<void> {
    if (agent.status !== 'active') throw new Conflict(`Agent ${agent.agentId} is ${agent.status}: it cannot obtain tokens.`);
    const org = await findOrganization(this.deps.knex, agent.orgId);
    if (org && org.status !== 'active') {
      throw new Conflict(`The organization of agent ${agent.agentId} (${org.slug}) is ${org.status}: its agents cannot obtain tokens.`);
    }
  }
}

/** A grant refused after the checks above (a change in between, a rate window, a monthly quota): a conflict, in words. */
function asRefusal(error: unknown, agent: Agent): unknown {
  if (error instanceof GrantGateClosed) {
    return new Conflict(`The grant was refused: agent ${agent.agentId}, its organization or its scopes changed meanwhile.`);
  }
  if (error instanceof UnauthorizedClient || error instanceof RateLimited) return new Conflict(`No token for agent ${agent.agentId}: ${error.message}`);
  return error;
}
