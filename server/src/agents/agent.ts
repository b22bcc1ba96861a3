/** The agent domain type and its row mapping. */
export type AgentStatus = 'active' | 'suspended' | 'decommissioned';

export interface Agent {
  readonly agentId: string;
  readonly orgId: string;
  readonly name: string;
  readonly description: string | null;
  readonly status: AgentStatus;
  readonly scopes: string[];
  readonly registeredRepository: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface AgentRow {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  status: AgentStatus;
  scopes: string[];
  registered_repository_id: string | null;
  registered_repository: string | null;
  created_at: Date;
  updated_at: Date;
}

export function toAgent(row: AgentRow): Agent {
  return {
    agentId: row.id,
    orgId: row.org_id,
    name: row.name,
    description: row.description,
    status: row.status,
    scopes: row.scopes,
    registeredRepository: row.registered_repository,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
