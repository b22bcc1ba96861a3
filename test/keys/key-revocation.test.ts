/**
 * `sentryagent-idp keys revoke <kid>` (issue 13, finding 9): a compromised key withdrawn at
 * once, on two instances of one database, neither of which is told: every token it signed
 * is inactive at the next request, the JWKS leaves it out, and a new key signs.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { agentCaller, OPERATOR_CALLER, type Caller } from '../../server/src/authorization/caller.js';
import { platformOrgId } from '../../server/src/tenancy/organization-store.js';
import { runCommandOn } from '../../server/src/cli/command-line.js';
import { bufferedOutput } from '../../server/src/cli/output.js';
import { adminToken, bearer, form, send } from '../support/api.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid as string;
const jwksKids = async (server: TestServer) => ((await send(server, '/.well-known/jwks.json')).body.keys as { kid: string }[]).map((key) => key.kid).sort();
const introspect = async (server: TestServer, caller: string, token: string) => (await send(server, '/api/v1/token/introspect', bearer(caller, form({ token })))).body;

let first: TestServer;
let second: TestServer;
beforeAll(async () => {
  first = await startTestServer();
  second = await startTestServer({ shareWith: first });
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

/** The CLI in process on the instances' database: neither instance hears of what it does. */
async function cli(argv: string[], caller: Caller = OPERATOR_CALLER) {
  const { output, printed } = bufferedOutput(argv.includes('--json'));
  const exitCode = await runCommandOn(argv.filter((arg) => arg !== '--json'), first.config, first.database, output, {
    caller,
    isSchemaCurrent: true,
    clock: first.deps.clock,
  });
  const { stdout, stderr } = printed();
  return { exitCode, stdout, stderr, json: () => JSON.parse(stdout) };
}

const revokedEvents = () => first.deps.knex('audit_events').where({ type: 'signing_key.revoked' }).orderBy('id').select('actor', 'data');

describe('keys revoke', () => {
  it('withdraws the active key: its tokens are inactive on every instance at the next request, the JWKS drops it, a new key signs', async () => {
    const compromised = await adminToken(first);
    const kid = kidOf(compromised);
    // Both instances have accepted it, so its signature is in their caches.
    expect(await introspect(second, compromised, compromised)).toMatchObject({ active: true });
    expect((await send(first, '/api/v1/agents', bearer(compromised))).status).toBe(200);

    const revoked = await cli(['keys', 'revoke', '--json', '--', kid]);
    expect(revoked).toMatchObject({ exitCode: 0, stderr: '' });
    const { replacedBy } = revoked.json();
    expect(revoked.json()).toEqual({ kid, revoked: true, replacedBy: expect.any(String) });
    expect(replacedBy).not.toBe(kid);

    // The second instance still holds the revoked key as its active one: its next grant is signed by the new key.
    const fresh = await adminToken(second);
    expect(kidOf(fresh)).toBe(replacedBy);
    // The first has heard nothing either: the revocation reaches it with the request.
    for (const instance of [first, second]) {
      expect(await send(instance, '/api/v1/agents', bearer(compromised))).toMatchObject({
        status: 401,
        body: { code: 'UNAUTHORIZED', message: 'The access token is invalid, expired or revoked.' },
      });
      expect(await introspect(instance, fresh, compromised)).toEqual({ active: false });
      expect(await jwksKids(instance)).toEqual([replacedBy]);
    }
    expect(await introspect(first, fresh, fresh)).toMatchObject({ active: true });

    expect(await revokedEvents()).toEqual([{ actor: 'operator', data: { kid, replacedBy } }]);
    const stored = await first.deps.knex('signing_keys').where({ kid }).first();
    expect(stored).toMatchObject({ revoked_at: expect.any(Date), retired_at: expect.any(Date), private_jwk: null, sealed_private_key: null, kek_id: null });
    const listed = (await cli(['keys', 'list', '--json'])).json();
    expect(listed).toEqual([
      expect.objectContaining({ kid: replacedBy, retiredAt: null, revokedAt: null, privateKey: 'encrypted' }),
      expect.objectContaining({ kid, revokedAt: expect.any(String), privateKey: 'none', kekId: null }),
    ]);
  });

  it('withdraws a retired key without rotating, and does nothing the second time', async () => {
    await first.deps.keys.refresh();
    const signedByRetiring = await adminToken(first);
    const retiring = kidOf(signedByRetiring);
    const rotated = (await cli(['keys', 'rotate', '--json'])).json();
    await Promise.all([first.deps.keys.refresh(), second.deps.keys.refresh()]);
    const caller = await adminToken(second);
    expect(kidOf(caller)).toBe(rotated.kid);
    expect(await introspect(second, caller, signedByRetiring)).toMatchObject({ active: true });
    expect(await jwksKids(second)).toEqual([rotated.kid, retiring].sort());

    const events = (await revokedEvents()).length;
    expect((await cli(['keys', 'revoke', '--json', '--', retiring])).json()).toEqual({ kid: retiring, revoked: true, replacedBy: null });
    expect(await introspect(second, caller, signedByRetiring)).toEqual({ active: false });
    expect(await jwksKids(first)).toEqual([rotated.kid]);
    expect(await introspect(first, caller, caller)).toMatchObject({ active: true });

    const again = await cli(['keys', 'revoke', '--', retiring]);
    expect(again).toMatchObject({ exitCode: 0, stdout: `${retiring} was already revoked: nothing to do\n` });
    expect(await revokedEvents()).toHaveLength(events + 1);
  });

  it('names an unknown kid (exit 3) and refuses anyone but the operator (exit 5), changing nothing', async () => {
    const events = (await revokedEvents()).length;
    expect(await cli(['keys', 'revoke', 'no-such-kid'])).toMatchObject({ exitCode: 3, stdout: '', stderr: 'sentryagent-idp: No signing key has kid no-such-kid.\n' });
    const active = (await first.deps.knex('signing_keys').whereNull('retired_at').first('kid')).kid;
    const lesser = agentCaller('00000000-0000-4000-8000-0000000000c1', ['agents:read', 'agents:write', 'tokens:read', 'audit:read'], {
      orgId: await platformOrgId(first.deps.knex),
      isPlatform: true,
    });
    expect(await cli(['keys', 'revoke', '--', active], lesser)).toMatchObject({ exitCode: 5, stderr: 'sentryagent-idp: Only the operator manages signing keys.\n' });
    expect(await first.deps.knex('signing_keys').where({ kid: active }).first('revoked_at')).toEqual({ revoked_at: null });
    expect(await revokedEvents()).toHaveLength(events);
  });
});
