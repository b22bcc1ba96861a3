/** Reading the audit log and verifying its chain and digests: audit:read, for the API and the CLI. */
import type { Knex } from 'knex';
import { requireScope, type Caller } from '../authorization/caller.js';
import { ValidationFailed } from '../errors.js';
import { listAuditEvents, type AuditEvent, type AuditQuery } from './audit-log.js';
import { readAuditDigest, verifyAuditTrail, type AuditVerification, type VerifyDocument } from './audit-digests.js';

export class AuditService {
  constructor(private readonly deps: { readonly knex: Knex; readonly verifyDocument: VerifyDocument }) {}

  async list(caller: Caller, query: AuditQuery): Promise<{ events: AuditEvent[]; nextCursor: string | null }> {
    requireScope(caller, 'audit:read');
    return listAuditEvents(this.deps.knex, query);
  }

  /**
   * The whole chain and every stored digest; with `digest` (a digest kept outside the
   * database), also whether the chain still holds its head. A `digest` that is not one of
   * ours, signed, is 400 VALIDATION_ERROR.
   */
  async verify(caller: Caller, digest?: string): Promise<AuditVerification> {
    requireScope(caller, 'audit:read');
    const external = digest === undefined ? undefined : await readAuditDigest(digest, this.deps.verifyDocument);
    if (digest !== undefined && !external) {
      throw new ValidationFailed('The digest is not an audit digest signed by one of this server\'s keys.');
    }
    return verifyAuditTrail(this.deps.knex, this.deps.verifyDocument, external);
  }
}
