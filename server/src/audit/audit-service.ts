/** Reading the audit log and verifying its chain and digests: audit:read, for the API and the CLI. */
import type { Knex } from 'knex';
import { requireScope, type Caller } from '../authorization/caller.js';
import { Forbidden, ValidationFailed } from '../errors.js';
import { organizationFor } from '../tenancy/organization-scope.js';
import { listAuditEvents, type AuditEvent, type AuditQuery } from './audit-log.js';
import { readAuditDigest, verifyAuditTrail, type AuditVerification, type VerifyDocument } from './audit-digests.js';

export type AuditListQuery = Omit<AuditQuery, 'orgId' | 'isPlatform'> & { readonly orgId?: string };

export class AuditService {
  constructor(private readonly deps: { readonly knex: Knex; readonly verifyDocument: VerifyDocument }) {}

  /** One organization's events: the caller's own, or (admin:orgs in the platform organization) the one named. */
  async list(caller: Caller, query: AuditListQuery): Promise<{ events: AuditEvent[]; nextCursor: string | null }> {
    requireScope(caller, 'audit:read');
    const org = await organizationFor(this.deps.knex, caller, query.orgId);
    return listAuditEvents(this.deps.knex, { ...query, orgId: org.orgId, isPlatform: org.isPlatform });
  }

  /**
   * The whole chain and every stored digest; with `digest` (a digest kept outside the
   * database), also whether the chain still holds its head. A `digest` that is not one of
   * ours, signed, is 400 VALIDATION_ERROR.
   */
  async verify(caller: Caller, digest?: string): Promise<AuditVerification> {
    requireScope(caller, 'audit:read');
    // The walk covers every organization's events, and its counts would tell one tenant about the others.
    if (caller.kind === 'agent' ? !caller.isPlatform : caller.orgId !== undefined) {
      throw new Forbidden("Verifying the audit chain is for the platform organization's callers.");
    }
    const external = digest === undefined ? undefined : await readAuditDigest(digest, this.deps.verifyDocument);
    if (digest !== undefined && !external) {
      throw new ValidationFailed('The digest is not an audit digest signed by one of this server\'s keys.');
    }
    return verifyAuditTrail(this.deps.knex, this.deps.verifyDocument, external);
  }
}
