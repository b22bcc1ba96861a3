/**
 * The bootstrap admin (contract, "Bootstrap"): fixed credentials from the environment
 * when no agent has that id yet, or, on an empty database, generated credentials that
 * the caller prints once. An advisory lock keeps instances starting together from
 * creating two.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { generateClientSecret } from '../oauth/client-secrets.js';
import { countAgents, findAgent, insertAgent } from './agent-store.js';
import { insertCredential } from './credential-store.js';

const BOOTSTRAP_LOCK = 7_242_004;
export const BOOTSTRAP_AGENT_NAME = 'bootstrap-admin';

export interface GeneratedAdmin {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** Returns the credentials only when it generated them (to be printed once). */
export async function ensureBootstrapAdmin(knex: Knex, config: Config): Promise<GeneratedAdmin | undefined> {
  return knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [BOOTSTRAP_LOCK]);
    const fixed = config.bootstrapAdmin;
    if (fixed) {
      if (await findAgent(trx, fixed.clientId)) return undefined;
      await createAdmin(trx, fixed.clientId, fixed.clientSecret, 'environment');
      return undefined;
    }
    if ((await countAgents(trx)) > 0) return undefined;
    const generated = { clientId: crypto.randomUUID(), clientSecret: generateClientSecret() };
    await createAdmin(trx, generated.clientId, generated.clientSecret, 'generated');
    return generated;
  });
}

async function createAdmin(trx: Knex.Transaction, agentId: string, secret: string, source: string): Promise<void> {
  await insertAgent(trx, {
    id: agentId,
    name: BOOTSTRAP_AGENT_NAME,
    description: 'Created at first start; holds every scope.',
    scopes: KNOWN_SCOPES,
  });
  const credential = await insertCredential(trx, agentId, secret);
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
