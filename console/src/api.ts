/**
 * The public API, called with the signed-in token and nothing else: the console can do
 * only what its token can. Every failure becomes an ApiError whose message is words a
 * person can act on, from the server's `{code, message}` or OAuth's `{error, error_description}`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Per-field problems of a 400 (`details`), when the server named them. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface RequestOptions {
  readonly token?: string;
  readonly json?: unknown;
  readonly form?: Record<string, string>;
}

const STATUS_WORDS: Record<number, string> = {
  401: 'The server did not accept the token: it has expired or been revoked. Sign in again.',
  403: 'The signed-in token may not do this.',
  404: 'Not found: it may have been deleted.',
  429: 'Too many requests: wait a moment and try again.',
};

async function errorOf(response: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await response.json()) as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page, say): the status speaks for it below.
  }
  const code = String(body.code ?? body.error ?? response.status);
  const message = typeof body.message === 'string' ? body.message : typeof body.error_description === 'string' ? body.error_description : undefined;
  const fallback = STATUS_WORDS[response.status] ?? `The server answered ${response.status} ${response.statusText}.`;
  const retryAfter = response.headers.get('Retry-After');
  const details = typeof body.details === 'object' && body.details !== null ? (body.details as Record<string, unknown>) : undefined;
  return new ApiError(response.status, code, `${message ?? fallback}${retryAfter ? ` (retry after ${retryAfter} s)` : ''}`, details);
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store', redirect: 'error' });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The server could not be reached. Check your connection and try again.');
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return undefined as T;
  try {
    return (await response.json()) as T;
  } catch {
    throw new ApiError(response.status, 'BAD_RESPONSE', 'The server sent an answer this console cannot read.');
  }
}

/** A path with its query, leaving out empty values. */
export function withQuery(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export const segment = encodeURIComponent;

// The shapes of the resources the pages show (server/openapi/openapi.json).
export interface Page<T> {
  readonly data: T[];
  readonly nextCursor?: string | null;
}
export interface Agent {
  agentId: string;
  orgId: string;
  name: string;
  description: string | null;
  status: 'active' | 'suspended' | 'decommissioned';
  scopes: string[];
  registeredRepository: string | null;
  createdAt: string;
  updatedAt: string;
}
export interface Credential {
  credentialId: string;
  clientId: string;
  status: 'active' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
}
export interface NewCredential {
  credentialId: string;
  clientId: string;
  clientSecret: string;
}
export interface Condition {
  claim: string;
  op: 'eq' | 'in' | 'glob';
  value: string | string[];
}
export interface TokenCheck {
  isVerified: boolean | null;
  reason?: string;
}
