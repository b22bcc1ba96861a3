/**
 * The bootstrap admin (contract, "Bootstrap"): fixed credentials from the environment
 * when no agent has that id yet, or, on an empty database, generated credentials that
 * the caller prints once; except with NODE_ENV=production, where a printed secret would
 * land in the system journal: there nothing is generated, and start-up says how to make
 * the first admin instead. An advisory lock keeps instances starting together from
 * creating two.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { MIN_BOOTSTRAP_SECRET_LENGTH, type Config } from '../config.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { generateClientSecret } from '../oauth/client-secrets.js';
import { platformOrgId } from '../tenancy/organization-store.js';
import type { Agent } from './agent.js';
import { countAgents, findAgent, insertAgent } from './agent-store.js';
import { insertCredential } from './credential-store.js';

const BOOTSTRAP_LOCK = 7_242_004;
export const BOOTSTRAP_AGENT_NAME = 'bootstrap-admin';

export interface GeneratedAdmin {
  readonly clientId: string;
  readonly clientSecret: string;
}

export interface BootstrapOutcome {
  /** Credentials generated now, to be printed once. */
  readonly generatedAdmin?: GeneratedAdmin;
  /** NODE_ENV=production on a database without any agent: none generated, so nobody can get a token yet. */
  readonly isAdminWithheld: boolean;
}

export async function ensureBootstrapAdmin(knex: Knex, config: Config): Promise<BootstrapOutcome> {
  return knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [BOOTSTRAP_LOCK]);
    const fixed = config.bootstrapAdmin;
    if (fixed) {
      if (!(await findAgent(trx, fixed.clientId))) await createAdmin(trx, fixed.clientId, fixed.clientSecret, 'environment');
      return { isAdminWithheld: false };
    }
    if ((await countAgents(trx)) > 0) return { isAdminWithheld: false };
    if (config.isProduction) return { isAdminWithheld: true };
    const generated = { clientId: crypto.randomUUID(), clientSecret: generateClientSecret() };
    await createAdmin(trx, generated.clientId, generated.clientSecret, 'generated');
    return { generatedAdmin: generated, isAdminWithheld: false };
  });
}

/**
 * The bootstrap admin as it was made: BOOTSTRAP_ADMIN_CLIENT_ID's agent, else the agent of
 * the first start's `bootstrap.admin_created` event, else the first agent named
 * bootstrap-admin that the operator created in the platform organization (as
 * FIRST_ADMIN_HINT says). Never by its name alone: any caller with agents:write can name an
 * agent bootstrap-admin, and a decommissioned admin is not replaced by a namesake.
 */
export async function findBootstrapAdmin(knex: Knex, config: Pick<Config, 'bootstrapAdmin'>): Promise<Agent | undefined> {
  if (config.bootstrapAdmin) return findAgent(knex, config.bootstrapAdmin.clientId);
  const platform = await platformOrgId(knex);
  const made = await knex('audit_events')
    .where({ type: 'bootstrap.admin_created' })
    .orWhere((created) => created.where({ type: 'agent.created', actor: 'operator', org_id: platform }).whereRaw(`data->>'name' = ?`, [BOOTSTRAP_AGENT_NAME]))
    .orderBy('id')
    .first<{ agent_id: string | null } | undefined>('agent_id');
  return made?.agent_id ? findAgent(knex, made.agent_id) : undefined;
}

/** Start-up's one line when the admin was withheld: the two ways to make the first one. */
export const FIRST_ADMIN_HINT =
  'no agent exists, and with NODE_ENV=production no bootstrap admin is generated (its secret would be printed into the logs): ' +
  `set BOOTSTRAP_ADMIN_CLIENT_ID (a UUID) and BOOTSTRAP_ADMIN_CLIENT_SECRET (at least ${MIN_BOOTSTRAP_SECRET_LENGTH} characters) and restart, ` +
  `or create the first admin with the CLI: npx sentryagent-idp agents create --name ${BOOTSTRAP_AGENT_NAME} ` +
  `${KNOWN_SCOPES.map((scope) => `--scope ${scope}`).join(' ')}, then npx sentryagent-idp credentials create <agentId>`;

/** In the platform organization: the bootstrap admin is the one that can make the others. */
async function createAdmin(trx: Knex.Transaction, agentId: string, secret: string, source: string): Promise<void> {
  const orgId = await platformOrgId(trx);
  await insertAgent(trx, {
    id: agentId,
    orgId,
    name: BOOTSTRAP_AGENT_NAME,
    description: 'Created at first start; holds every scope.',
    scopes: KNOWN_SCOPES,
  });
  const credential = await insertCredential(trx, { agentId, orgId }, secret);
  await appendAuditEvent(trx, {
    type: 'bootstrap.admin_created',
    agentId,
    actor: 'system',
    data: { source, credentialId: credential.credentialId },
  });
}

export function formatGeneratedAdmin(admin: GeneratedAdmin): string {
  return [
    '',
    'SentryAgent IdP: bootstrap admin created. Store these now; the secret is not shown again.',
    `  client_id:     ${admin.clientId}`,
    `  client_secret: ${admin.clientSecret}`,
    '',
  ].join('\n');
}
