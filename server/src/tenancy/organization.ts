/** The organization domain type and its row mapping. */
export type OrganizationStatus = 'active' | 'suspended' | 'decommissioned';

export interface OrganizationLimits {
  /** Token grants to the organization's agents per calendar month (UTC); null: none. */
  readonly monthlyTokens: number | null;
  /** Agents that are not decommissioned; null: none. */
  readonly maxAgents: number | null;
  /** Webhook endpoints; null: none. */
  readonly maxWebhookEndpoints: number | null;
}

export interface Organization {
  readonly orgId: string;
  readonly slug: string;
  readonly name: string;
  readonly status: OrganizationStatus;
  /** The platform organization: where admin:orgs lives; never suspended or decommissioned. */
  readonly isPlatform: boolean;
  readonly limits: OrganizationLimits;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface OrganizationRow {
  id: string;
  slug: string;
  name: string;
  status: OrganizationStatus;
  is_platform: boolean;
  monthly_tokens: number | null;
  max_agents: number | null;
  max_webhook_endpoints: number | null;
  created_at: Date;
  updated_at: Date;
}

export function toOrganization(row: OrganizationRow): Organization {
  return {
    orgId: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    isPlatform: row.is_platform,
    limits: { monthlyTokens: row.monthly_tokens, maxAgents: row.max_agents, maxWebhookEndpoints: row.max_webhook_endpoints },
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export const PLATFORM_SLUG = 'platform';
export const SLUG_PATTERN = /^[a-z0-9-]{2,63}$/;
