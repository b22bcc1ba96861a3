/** Reading the audit log and verifying its chain: audit:read, for the API and the CLI. */
import type { Knex } from 'knex';
import { requireScope, type Caller } from '../authorization/caller.js';
import { verifyAuditChain, type ChainVerification } from './audit-chain.js';
import { listAuditEvents, type AuditEvent, type AuditQuery } from './audit-log.js';

export class AuditService {
  constructor(private readonly deps: { readonly knex: Knex }) {}

  async list(caller: Caller, query: AuditQuery): Promise<{ events: AuditEvent[]; nextCursor: string | null }> {
    requireScope(caller, 'audit:read');
    return listAuditEvents(this.deps.knex, query);
  }

  async verify(caller: Caller): Promise<ChainVerification> {
    requireScope(caller, 'audit:read');
    return verifyAuditChain(this.deps.knex);
  }
}
