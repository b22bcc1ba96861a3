/** Every migration, in order. Knex reads them from this list, not from the file system,
 * so the same list serves the compiled server, the CLI and the tests. */
import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.js';
import * as grantBatches from './20261123120000_grant_batches.js';
import * as setBasedGrants from './20261124090000_set_based_grants.js';
import * as registrationPolicyScopes from './20261130090000_registration_policy_scopes.js';
import * as trustPolicyTag from './20261130120000_trust_policy_tag.js';
import * as tokenProvenance from './20261130130000_token_provenance.js';
import * as auditDigests from './20261130140000_audit_digests.js';
import * as signingKeysAtRest from './20261201090000_signing_keys_at_rest.js';
import * as organizations from './20261202090000_organizations.js';
import * as federation from './20261203090000_federation.js';
import * as federationPartnerRevision from './20261204090000_federation_partner_revision.js';
import * as webhooks from './20261205090000_webhooks.js';
import * as auditCreatedBrin from './20261206090000_audit_created_brin.js';
import * as grantSpendsJti from './20261207090000_grant_spends_jti.js';

export interface Migration {
  readonly name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export const migrations: readonly Migration[] = [
  { name: '20261123000000_initial', ...initial },
  { name: '20261123120000_grant_batches', ...grantBatches },
  { name: '20261124090000_set_based_grants', ...setBasedGrants },
  { name: '20261130090000_registration_policy_scopes', ...registrationPolicyScopes },
  { name: '20261130120000_trust_policy_tag', ...trustPolicyTag },
  { name: '20261130130000_token_provenance', ...tokenProvenance },
  { name: '20261130140000_audit_digests', ...auditDigests },
  { name: '20261201090000_signing_keys_at_rest', ...signingKeysAtRest },
  { name: '20261202090000_organizations', ...organizations },
  { name: '20261203090000_federation', ...federation },
  { name: '20261204090000_federation_partner_revision', ...federationPartnerRevision },
  { name: '20261205090000_webhooks', ...webhooks },
  { name: '20261206090000_audit_created_brin', ...auditCreatedBrin },
  { name: '20261207090000_grant_spends_jti', ...grantSpendsJti },
];
