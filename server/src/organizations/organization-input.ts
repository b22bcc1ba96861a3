/** What a client may send to create or change an organization: one schema for the API and the CLI. */
import { z } from 'zod';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { displayText } from '../http/validation.js';
import { SLUG_PATTERN } from '../tenancy/organization.js';

const slug = z.string().regex(SLUG_PATTERN, 'must be 2 to 63 characters of a-z, 0-9 and -');
// A positive whole number, or null for no limit.
const limit = z.number().int().min(1).max(2_147_483_647).nullable();
const limits = z.strictObject({ monthlyTokens: limit.optional(), maxAgents: limit.optional(), maxWebhookEndpoints: limit.optional() });
const ORGANIZATION_ADMIN_SCOPES = KNOWN_SCOPES.filter((scope) => scope !== 'admin:orgs') as [string, ...string[]];

export const createOrganizationInput = z.strictObject({
  slug,
  name: displayText(128),
  limits: limits.optional(),
  // The organization's first admin, made in the same call; its credentials are returned once.
  admin: z
    .strictObject({
      name: displayText(128),
      scopes: z
        .array(z.enum(ORGANIZATION_ADMIN_SCOPES, { message: `must be one of ${ORGANIZATION_ADMIN_SCOPES.join(', ')} (admin:orgs stays in the platform organization)` }))
        .max(ORGANIZATION_ADMIN_SCOPES.length)
        .transform((scopes) => [...new Set(scopes)]),
    })
    .optional(),
});
export type CreateOrganizationInput = z.infer<typeof createOrganizationInput>;

export const organizationPatchInput = z
  .strictObject({ slug: slug.optional(), name: displayText(128).optional(), limits: limits.optional() })
  .refine((patch) => Object.keys(patch).length > 0, 'at least one of slug, name, limits is required');
export type OrganizationPatchInput = z.infer<typeof organizationPatchInput>;
