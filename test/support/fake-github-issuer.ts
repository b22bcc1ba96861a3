/**
 * A real HTTP stand-in for GitHub's OIDC issuer (token.actions.githubusercontent.com) and
 * for the runner's ID-token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL), on 127.0.0.1 and a
 * free port. Tokens are shaped like GitHub's: header {typ, alg: RS256, x5t, kid}, claims from
 * action-fixtures/claims/push-main.json plus fresh iss, aud, jti, iat, nbf (back-dated), exp.
 */
import { KeyObject, createHash, randomBytes, randomUUID, sign, timingSafeEqual, type webcrypto } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { loadClaimFixture, type GitHubClaimSet } from './github-claims.js';

export interface MintOptions {
  kid?: string;
  alg?: string;
  header?: Record<string, unknown>;
  key?: CryptoKey | KeyObject;
  expiresInSeconds?: number;
  omit?: string[];
}

export interface FakeGitHubIssuer {
  readonly issuer: string;
  readonly idTokenRequestUrl: string;
  readonly idTokenRequestToken: string;
  /** Claims of any shape are accepted, so tests can send wrong types (aud: 42). */
  mintIdToken(claims?: GitHubClaimSet | Record<string, unknown>, options?: MintOptions): Promise<string>;
  setRunnerClaims(claims: GitHubClaimSet | Record<string, unknown>): void;
  rotateKeys(): Promise<void>;
  setAvailable(available: boolean): void;
  readonly jwksRequests: number;
  readonly runnerRequests: number;
  close(): Promise<void>;
}

interface SigningKey {
  readonly kid: string;
  readonly x5t: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  // GitHub's x5t is a certificate thumbprint; there is no certificate here, so hash the key.
  const x5t = createHash('sha1').update(await exportSPKI(publicKey)).digest('base64url');
  return { kid, x5t, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, x5t, alg: 'RS256', use: 'sig' } };
}

const DEFAULT_CLAIMS = loadClaimFixture('push-main');

// GitHub's audience when the workflow asks for none: the repository owner's URL.
function defaultAudience(claims: Record<string, unknown>): string {
  return `https://github.com/${String(claims.repository_owner ?? DEFAULT_CLAIMS.repository_owner)}`;
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export async function startFakeGitHubIssuer(options: { audience?: string } = {}): Promise<FakeGitHubIssuer> {
  let signingKey = await createSigningKey();
  let runnerClaims: Record<string, unknown> = {};
  let isAvailable = true;
  let jwksRequests = 0;
  let runnerRequests = 0;
  const idTokenRequestToken = randomBytes(24).toString('base64url');
  const server = http.createServer((request, response) => {
    route(request, response).catch((error: unknown) => response.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function mintIdToken(claims: Record<string, unknown> = {}, mint: MintOptions = {}): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      ...DEFAULT_CLAIMS,
      iss: issuer,
      aud: options.audience ?? defaultAudience(claims),
      jti: randomUUID(),
      iat,
      nbf: iat - 5,
      exp: iat + (mint.expiresInSeconds ?? 300),
      ...claims,
    };
    for (const name of mint.omit ?? []) delete payload[name];
    const header = { typ: 'JWT', alg: mint.alg ?? 'RS256', x5t: signingKey.x5t, kid: mint.kid ?? signingKey.kid, ...mint.header };
    const signingInput = `${encode(header)}.${encode(payload)}`;
    if (String(header.alg).toLowerCase() === 'none') return `${signingInput}.`;
    const key = mint.key ?? signingKey.privateKey;
    if (header.alg !== 'RS256') {
      return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader(header).sign(key);
    }
    // RS256 by hand, so any header can be sent, even one jose refuses to sign (crit).
    const keyObject = key instanceof KeyObject ? key : KeyObject.from(key as webcrypto.CryptoKey);
    return `${signingInput}.${sign('sha256', Buffer.from(signingInput), keyObject).toString('base64url')}`;
  }

  async function route(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', issuer);
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (request.method !== 'GET') return send(405, { message: 'Method Not Allowed' });
    if (url.pathname === '/.well-known/jwks') jwksRequests += 1;
    if (url.pathname === '/runner/idtoken') runnerRequests += 1;
    switch (url.pathname) {
      case '/.well-known/openid-configuration':
        return isAvailable ? send(200, discoveryDocument(issuer)) : send(503, { message: 'Service Unavailable' });
      case '/.well-known/jwks':
        return isAvailable ? send(200, { keys: [signingKey.publicJwk] }) : send(503, { message: 'Service Unavailable' });
      case '/runner/idtoken': {
        if (!hasBearer(request.headers.authorization, idTokenRequestToken)) return send(401, { message: 'Unauthorized' });
        const aud = url.searchParams.get('audience') ?? defaultAudience(runnerClaims);
        return send(200, { value: await mintIdToken({ ...runnerClaims, aud }) });
      }
      default:
        return send(404, { message: 'Not Found' });
    }
  }

  return {
    issuer,
    idTokenRequestUrl: `${issuer}/runner/idtoken?api-version=2.0`,
    idTokenRequestToken,
    mintIdToken,
    setRunnerClaims: (claims) => {
      runnerClaims = { ...claims };
    },
    rotateKeys: async () => {
      signingKey = await createSigningKey();
    },
    setAvailable: (available) => {
      isAvailable = available;
    },
    get jwksRequests() {
      return jwksRequests;
    },
    get runnerRequests() {
      return runnerRequests;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // fetch keeps connections alive; without this, close() waits for them to time out.
        server.closeAllConnections();
      }),
  };
}

function hasBearer(authorization: string | undefined, expected: string): boolean {
  const presented = Buffer.from(authorization ?? '');
  const wanted = Buffer.from(`Bearer ${expected}`);
  return presented.length === wanted.length && timingSafeEqual(presented, wanted);
}

// Shaped like https://token.actions.githubusercontent.com/.well-known/openid-configuration.
function discoveryDocument(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks`,
    subject_types_supported: ['public', 'pairwise'],
    response_types_supported: ['id_token'],
    claims_supported: [
      'sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'sha', 'repository', 'repository_id',
      'repository_owner', 'repository_owner_id', 'run_id', 'run_number', 'run_attempt', 'actor', 'actor_id',
      'workflow', 'workflow_ref', 'workflow_sha', 'head_ref', 'base_ref', 'event_name', 'ref_type',
      'ref_protected', 'environment', 'job_workflow_ref', 'job_workflow_sha', 'repository_visibility',
      'runner_environment',
    ],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid'],
  };
}
