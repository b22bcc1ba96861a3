/**
 * What the token endpoint knows of a client: its status, scopes and live credential
 * hashes. Entries are hints kept in process memory; a grant made from one is checked
 * again by the database in the grant statement itself, and any refusal based on one is
 * re-decided from a fresh load. So staleness can cost a second lookup, never a token.
 * Every refusal costs exactly one lookup of the same cost, so an unknown client and a
 * wrong secret take the same time (test/reliability/timing.test.ts).
 */
import type { RunPrepared } from '../storage/prepared.js';
import { BoundedCache } from './bounded-cache.js';
import type { ClientForAuthentication } from './client-secrets.js';

// An unknown id costs what a known one does: the query is driven by the id, not by the
// agent row, so both indexes are probed either way, and the missing columns come back as
// stand-ins of the same types and sizes, so that one row of the same shape is sent and
// parsed. Only the two flags tell a stand-in from a stored value.
const LOAD_CLIENT_SQL = `select a.id is not null as is_known,
       c.id is not null as has_credential,
       coalesce(a.status, 'active') as status,
       coalesce(a.org_id, '00000000-0000-4000-8000-000000000000'::uuid) as org_id,
       coalesce(o.status, 'active') as org_status,
       coalesce(a.scopes, '{agents:read,tokens:read}'::text[]) as scopes,
       coalesce(c.id, '00000000-0000-4000-8000-000000000000'::uuid) as credential_id,
       coalesce(c.secret_hash, sha256('stand-in'::bytea)) as secret_hash
  from (select $1::uuid as id) wanted
  left join agents a on a.id = wanted.id
  left join organizations o on o.id = a.org_id
  left join credentials c on c.agent_id = wanted.id and c.revoked_at is null`;

interface ClientRow {
  is_known: boolean;
  has_credential: boolean;
  status: string;
  org_id: string;
  org_status: string;
  scopes: string[];
  credential_id: string;
  secret_hash: Uint8Array;
}

export class ClientDirectory {
  private readonly hints = new BoundedCache<string, ClientForAuthentication>(10_000);

  constructor(private readonly query: RunPrepared) {}

  cached(agentId: string): ClientForAuthentication | undefined {
    return this.hints.get(agentId);
  }

  async load(agentId: string): Promise<ClientForAuthentication | undefined> {
    const rows = await this.query<ClientRow>('load_client', LOAD_CLIENT_SQL, [agentId]);
    const client: ClientForAuthentication = {
      agentId,
      status: rows[0].status,
      orgId: rows[0].org_id,
      orgStatus: rows[0].org_status,
      scopes: rows[0].scopes,
      credentials: rows
        .filter((row) => row.has_credential)
        .map((row) => ({ credentialId: row.credential_id, secretHash: Buffer.from(row.secret_hash) })),
    };
    if (!rows[0].is_known) {
      this.hints.delete(agentId);
      return undefined;
    }
    this.hints.set(agentId, client);
    return client;
  }
}
