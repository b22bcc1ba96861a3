/**
 * Factories over real HTTP: tokens, agents and credentials made the way a client makes them.
 * Every reply is checked against the OpenAPI document (see openapi.ts), so that the document
 * cannot drift from what the server answers.
 */
import type { TestServer } from './test-server.js';
import { platformOrgId } from '../../server/src/tenancy/organization-store.js';
import { ADMIN } from './test-server.js';
import { assertDocumentedReply } from './openapi.js';

export interface Reply<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

export async function send(server: { url: string }, path: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(server.url + path, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const reply = { status: response.status, headers: response.headers, body, text };
  assertDocumentedReply(init.method ?? 'GET', path, reply);
  return reply;
}

/**
 * `fetch` for third-party clients (openid-client, oauth4webapi, jose): the same check of
 * every reply against the OpenAPI document, on a copy, leaving the response unread.
 */
export async function documentedFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const response = await fetch(url, init);
  const text = await response.clone().text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const { pathname, search } = new URL(url);
  assertDocumentedReply(init.method ?? 'GET', pathname + search, { status: response.status, headers: response.headers, body, text });
  return response;
}

export function form(params: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  };
}

export function json(method: string, body: unknown, token?: string): RequestInit {
  return {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  };
}

export function bearer(token: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } };
}

export async function getToken(server: { url: string }, clientId: string, clientSecret: string, scope?: string): Promise<string> {
  const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, ...(scope ? { scope } : {}) }));
  if (reply.status !== 200) throw new Error(`token request failed: ${reply.status} ${reply.text}`);
  return reply.body.access_token;
}

export async function adminToken(server: TestServer): Promise<string> {
  return getToken(server, ADMIN.clientId, ADMIN.clientSecret);
}

export interface AgentWithSecret {
  readonly agentId: string;
  readonly orgId: string;
  readonly clientSecret: string;
  readonly credentialId: string;
}

export async function createAgent(
  server: { url: string },
  admin: string,
  fields: { name?: string; scopes?: string[]; description?: string } = {},
): Promise<AgentWithSecret> {
  const created = await send(server, '/api/v1/agents', json('POST', { name: fields.name ?? 'test-agent', ...fields }, admin));
  if (created.status !== 201) throw new Error(`create agent failed: ${created.status} ${created.text}`);
  const credential = await send(server, `/api/v1/agents/${created.body.agentId}/credentials`, bearer(admin, { method: 'POST' }));
  if (credential.status !== 201) throw new Error(`create credential failed: ${credential.status} ${credential.text}`);
  return { agentId: created.body.agentId, orgId: created.body.orgId, clientSecret: credential.body.clientSecret, credentialId: credential.body.credentialId };
}

export interface Tenant {
  readonly orgId: string;
  /** A token of its first admin. */
  readonly admin: string;
  readonly adminAgentId: string;
}

/** A new organization, made by a platform admin, with its first admin (these scopes) and a token of it. */
export async function createTenant(
  server: { url: string },
  platformAdmin: string,
  fields: { slug: string; adminScopes: readonly string[]; limits?: Record<string, number> },
): Promise<Tenant> {
  const { slug, adminScopes, limits } = fields;
  const created = await send(server, '/api/v1/orgs', json('POST', { slug, name: `Org ${slug}`, ...(limits && { limits }), admin: { name: `${slug}-admin`, scopes: adminScopes } }, platformAdmin));
  if (created.status !== 201) throw new Error(`create organization failed: ${created.status} ${created.text}`);
  const { clientId, clientSecret } = created.body.admin.credential;
  return { orgId: created.body.orgId, admin: await getToken(server, clientId, clientSecret), adminAgentId: created.body.admin.agentId };
}

/** The id of the platform organization of a test server's database (the bootstrap admin's). */
export function platformOrgIdOf(server: TestServer): Promise<string> {
  return platformOrgId(server.deps.knex);
}
