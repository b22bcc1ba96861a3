/**
 * The services every edge calls: the HTTP API, the CLI (which has no signing keys or
 * GitHub issuer of its own, so only the first group) and registration. One instance of each
 * per process.
 */
import type { Knex } from 'knex';
import { AgentService } from './agents/agent-service.js';
import { AuditService } from './audit/audit-service.js';
import type { Clock } from './clock.js';
import { FederationService } from './federation/federation-service.js';
import { TrustPolicyService } from './github/trust-policy-service.js';
import { verifyDocumentSignature } from './keys/signing-key-store.js';
import { OrganizationService } from './organizations/organization-service.js';

export interface OperatorServices {
  readonly agents: AgentService;
  readonly organizations: OrganizationService;
  readonly trustPolicies: TrustPolicyService;
  readonly audit: AuditService;
  readonly federation: FederationService;
}

export function createOperatorServices(knex: Knex, clock: Clock): OperatorServices {
  return {
    agents: new AgentService({ knex, clock }),
    organizations: new OrganizationService({ knex, clock }),
    trustPolicies: new TrustPolicyService({ knex, clock }),
    audit: new AuditService({ knex, verifyDocument: (jws, typ) => verifyDocumentSignature(knex, jws, typ) }),
    federation: new FederationService({ knex, clock }),
  };
}
