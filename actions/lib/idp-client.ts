/**
 * The one client both actions use to talk to the IdP: a POST retried under a RetryPolicy,
 * with the body prepared afresh for every attempt. That matters for the OIDC endpoints:
 * the IdP accepts each GitHub ID token once (its `jti`), so an attempt after a 5xx must
 * carry a new ID token, not the one the failed attempt may already have spent.
 */
import {
  IdTokenUnavailableError,
  IdpRefusalError,
  IdpUnreachableError,
  UnexpectedResponseError,
  toSafeLine,
} from './errors.js';
import { computeRetryDelayMs, isRetryableStatus, parseRetryAfterMs, type RetryPolicy } from './retry.js';
import { sendWithHttpClient, type IncomingReply, type Transport } from './transport.js';

export interface IdpClient {
  /** Base URL without a trailing slash. */
  readonly apiUrl: string;
  readonly policy: RetryPolicy;
  /** Progress notes (retries); never given a token. */
  readonly log: (message: string) => void;
  readonly transport: Transport;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  readonly random: () => number;
}

export function createIdpClient(
  settings: Pick<IdpClient, 'apiUrl' | 'policy'> & Partial<IdpClient>,
): IdpClient {
  return {
    log: () => {},
    transport: sendWithHttpClient,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => Date.now(),
    random: Math.random,
    ...settings,
  };
}

export interface PreparedBody {
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface IdpAnswer {
  readonly url: string;
  readonly status: number;
  readonly body: string;
}

/** POSTs to `apiUrl + path` until a 2xx (returned), a refusal (thrown) or the budget runs out (thrown). */
export async function postWithRetries(
  client: IdpClient,
  path: string,
  prepare: () => Promise<PreparedBody>,
): Promise<IdpAnswer> {
  const url = `${client.apiUrl}${path}`;
  const startMs = client.now();
  for (let attempt = 1; ; attempt += 1) {
    const prepared = await prepare();
    const remainingMs = client.policy.maxElapsedMs - (client.now() - startMs);
    const timeoutMs = Math.max(1, Math.min(client.policy.attemptTimeoutMs, remainingMs));
    let failure: string;
    let retryAfterMs: number | undefined;
    try {
      const reply = await client.transport({
        url,
        headers: { 'Content-Type': prepared.contentType, Accept: 'application/json', ...prepared.headers },
        body: prepared.body,
        timeoutMs,
      });
      if (reply.status >= 200 && reply.status < 300) return { url, status: reply.status, body: reply.body };
      const { errorCode, description } = readErrorBody(reply.body);
      if (!isRetryableStatus(reply.status)) {
        const location = readHeader(reply, 'location');
        throw new IdpRefusalError(url, reply.status, errorCode, description, location && toSafeLine(location));
      }
      failure = `HTTP ${reply.status}${errorCode ? ` ${errorCode}` : ''}${description ? `: ${toSafeLine(description, 120)}` : ''}`;
      retryAfterMs = parseRetryAfterMs(readHeader(reply, 'retry-after'), client.now());
    } catch (error) {
      if (error instanceof IdpRefusalError) throw error;
      failure = describeNetworkError(error, timeoutMs);
    }
    const delayMs = computeRetryDelayMs(attempt, retryAfterMs, client.policy, client.random);
    const elapsedMs = client.now() - startMs;
    if (elapsedMs + delayMs >= client.policy.maxElapsedMs) {
      throw new IdpUnreachableError(client.apiUrl, attempt, elapsedMs, failure);
    }
    client.log(`Attempt ${attempt} to reach ${url} failed (${failure}); retrying in ${(delayMs / 1000).toFixed(1)} s.`);
    await client.sleep(delayMs);
  }
}

/**
 * POSTs JSON that carries a GitHub ID token, fetched anew for every attempt. A failure to
 * get one ends the call: it is a permissions problem the IdP cannot help with.
 */
export async function postWithIdToken(
  client: IdpClient,
  path: string,
  getIdToken: () => Promise<string>,
  buildBody: (idToken: string) => Record<string, unknown>,
): Promise<IdpAnswer> {
  return postWithRetries(client, path, async () => {
    let idToken: string;
    try {
      idToken = await getIdToken();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // @actions/core prefixes every getIDToken failure with this; the reason follows it.
      throw new IdTokenUnavailableError(toSafeLine(message.replace(/^Error message:\s*/, '')));
    }
    return { contentType: 'application/json', body: JSON.stringify(buildBody(idToken)) };
  });
}

/** The 2xx body as a JSON object, or an UnexpectedResponseError. */
export function readJsonObject(answer: IdpAnswer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(answer.body);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // reported below
  }
  throw new UnexpectedResponseError(answer.url, answer.status, 'a body that is not a JSON object');
}

/** Both error shapes of the contract, RFC 6749 `{error, error_description}` and `{code, message}`, as safe lines. */
function readErrorBody(body: string): { errorCode?: string; description?: string } {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    const errorCode = parsed.error ?? parsed.code;
    const description = parsed.error_description ?? parsed.message;
    return {
      errorCode: (typeof errorCode === 'string' && toSafeLine(errorCode, 60)) || undefined,
      description: (typeof description === 'string' && toSafeLine(description)) || undefined,
    };
  } catch {
    return {};
  }
}

function readHeader(reply: IncomingReply, name: string): string | undefined {
  const value = reply.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed',
};

function describeNetworkError(error: unknown, timeoutMs: number): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return `${NETWORK_ERRORS[code] ?? 'network error'} (${code})`;
  const message = error instanceof Error ? error.message : String(error);
  if (/^Request timeout/.test(message)) return `no answer within ${(timeoutMs / 1000).toFixed(1)} s`;
  return toSafeLine(message, 120) || 'network error';
}
