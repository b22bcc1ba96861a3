/**
 * The partner key cache on its own (the fetches are a function it is given): keys cached by
 * where they come from, a refetch for an unknown kid at most once per interval, a failed
 * fetch not retried within the interval (and the keys fetched before answering meanwhile),
 * inline keys imported once per partner revision, and only public signing keys kept.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { Partner } from '../../server/src/federation/federation-store.js';
import { importKeySet, PartnerKeys, PartnerKeysUnavailable } from '../../server/src/federation/partner-keys.js';

const jwk = (kid: string) => ({ ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid });

function partner(fields: Partial<Partner>): Partner {
  return {
    partnerId: crypto.randomUUID(), name: 'p', preset: 'custom', issuer: 'https://ci.example.com', status: 'active', revision: 1,
    jwksUri: 'https://ci.example.com/jwks', keys: null, audiences: ['idp'], algorithms: ['ES256'], maxTokenAgeSeconds: 600,
    singleUseJti: false, requiredClaims: [], orgIds: [], createdAt: '', updatedAt: '', ...fields,
  };
}

/** A source of key sets whose answers and clock the test sets. */
function world() {
  const state = { nowMs: 1_000_000, keySet: { keys: [jwk('a')] } as unknown, isDown: false, fetches: [] as string[] };
  const keys = new PartnerKeys({
    now: () => state.nowMs,
    fetchJson: async (url) => {
      state.fetches.push(url);
      if (state.isDown) throw new Error('connect ECONNREFUSED');
      return state.keySet;
    },
  });
  return { state, keys };
}

const kids = (keys: readonly { kid: string | undefined }[]) => keys.map((key) => key.kid);

describe('PartnerKeys', () => {
  it('fetches a source once for every partner that uses it', async () => {
    const { state, keys } = world();
    const [one, two] = [partner({}), partner({})];
    expect(kids(await keys.keysFor(one, 'a'))).toEqual(['a']);
    expect(kids(await keys.keysFor(two, 'a'))).toEqual(['a']);
    expect(state.fetches).toEqual(['https://ci.example.com/jwks']);
  });

  it('refetches for an unknown kid at most once per interval', async () => {
    const { state, keys } = world();
    const p = partner({});
    await keys.keysFor(p, 'a');
    state.keySet = { keys: [jwk('b')] };
    expect(kids(await keys.keysFor(p, 'b'))).toEqual(['b']); // rotated: one refetch
    expect(kids(await keys.keysFor(p, 'c'))).toEqual(['b']); // another unknown kid within 10 s: no fetch
    expect(state.fetches).toHaveLength(2);
    state.nowMs += 10_000;
    await keys.keysFor(p, 'c');
    expect(state.fetches).toHaveLength(3);
  });

  it('does not retry a failed fetch within the interval', async () => {
    const { state, keys } = world();
    const p = partner({});
    state.isDown = true;
    await expect(keys.keysFor(p, 'a')).rejects.toThrow(PartnerKeysUnavailable);
    await expect(keys.keysFor(p, 'a')).rejects.toThrow(/ECONNREFUSED/);
    expect(state.fetches).toHaveLength(1);
    state.nowMs += 10_000;
    state.isDown = false;
    expect(kids(await keys.keysFor(p, 'a'))).toEqual(['a']);
    expect(state.fetches).toHaveLength(2);
  });

  it('keeps answering with the keys fetched before while the source is down', async () => {
    const { state, keys } = world();
    const p = partner({});
    await keys.keysFor(p, 'a');
    state.nowMs += 300_000; // the cached set is stale
    state.isDown = true;
    expect(kids(await keys.keysFor(p, 'a'))).toEqual(['a']);
    expect(kids(await keys.keysFor(p, 'a'))).toEqual(['a']);
    expect(state.fetches).toHaveLength(2); // one attempt, not one per request
  });

  it('shares one fetch among concurrent lookups', async () => {
    const { state, keys } = world();
    const p = partner({});
    await Promise.all([keys.keysFor(p, 'a'), keys.keysFor(p, 'a'), keys.keysFor(p, 'a')]);
    expect(state.fetches).toHaveLength(1);
  });

  it('imports inline keys once per partner revision', async () => {
    const { state, keys } = world();
    const p = partner({ jwksUri: null, keys: { keys: [jwk('x')] } });
    const first = await keys.keysFor(p, 'x');
    expect(await keys.keysFor({ ...p }, 'x')).toBe(first);
    const changed = await keys.keysFor({ ...p, revision: 2, keys: { keys: [jwk('y')] } }, 'y');
    expect(kids(changed)).toEqual(['y']);
    expect(state.fetches).toEqual([]);
  });

  it('keeps only public signing keys', () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const imported = importKeySet({
      keys: [jwk('sig'), { ...jwk('enc'), use: 'enc' }, { ...privateKey.export({ format: 'jwk' }), kid: 'private' }, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }, 'not a key'],
    });
    expect(kids(imported)).toEqual(['sig']);
  });
});
