/** The hash format is fixed: chains linked by earlier versions must still verify. */
import crypto from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { canonicalJson, hashAuditEvent } from '../../server/src/audit/audit-chain.js';

/** The hash as the linker first wrote it: the whole content through canonicalJson. */
function hashAsFirstWritten(row: Parameters<typeof hashAuditEvent>[0], seq: number, prevHash: string): string {
  const content = canonicalJson({
    seq,
    prevHash,
    id: String(row.id),
    type: row.type,
    agentId: row.agent_id,
    ...(row.org_id !== null && { orgId: row.org_id }),
    actor: row.actor,
    data: row.data,
    createdAt: row.created_at.toISOString(),
  });
  return crypto.createHash('sha256').update(content).digest('hex');
}

const event = {
  id: 42,
  type: 'token.issued',
  agent_id: '0b5c7f3e-8d2a-4c1b-9e6f-1a2b3c4d5e6f',
  org_id: '7e9f1d2c-3b4a-4f5e-8d6c-9a8b7c6d5e4f',
  actor: 'agent:0b5c7f3e-8d2a-4c1b-9e6f-1a2b3c4d5e6f',
  data: { jti: 'j-1', scope: 'agents:read tokens:read', grantType: 'client_credentials', nested: { z: [1, 'two', null, { b: true, a: 1.5 }], a: 'é"\\' } },
  created_at: new Date('2026-12-01T05:40:24.123Z'),
};

describe('hashAuditEvent', () => {
  it('hashes an event of an organization as the generic canonical JSON did', () => {
    expect(hashAuditEvent(event, 7, 'f'.repeat(64))).toBe(hashAsFirstWritten(event, 7, 'f'.repeat(64)));
  });

  it('hashes an event written before organizations, without an agent, as before', () => {
    const legacy = { ...event, org_id: null, agent_id: null, data: {} };
    expect(hashAuditEvent(legacy, 1, '0'.repeat(64))).toBe(hashAsFirstWritten(legacy, 1, '0'.repeat(64)));
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: [{ d: 1, c: null }, 'x'], a: { f: false, e: 'y' } })).toBe('{"a":{"e":"y","f":false},"b":[{"c":null,"d":1},"x"]}');
  });
});
