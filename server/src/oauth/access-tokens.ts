/**
 * Issuing our access tokens and deciding whether one is active. A token is active when
 * its signature is ours, its iss is ours, it has not expired, its jti is recorded and
 * not revoked, its agent and the agent's organization are active, the agent still holds its scopes, what it was issued through
 * (credential, trust policies) still stands, and the key that signed it has not been
 * revoked: one indexed lookup per request (concurrent requests share one query, made after
 * each of them arrived), so a revocation, a suspension or a key withdrawal on any instance
 * holds on every instance at the next request. Only the signature check is cached (a
 * valid signature stays valid); token state never is.
 */
import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { isUuid } from '../config.js';
import { UnauthorizedClient } from '../errors.js';
import type { SigningKeys, VerifiedToken } from '../keys/signing-keys.js';
import type { JwtClaims } from '../keys/jwt.js';
import type { RunPrepared } from '../storage/prepared.js';
import type { AuditEventType } from '../audit/audit-log.js';
import { Batcher, RETRY_ALONE_UNLESS_UNAVAILABLE } from '../storage/batcher.js';
import { issueGrantBatch, type GrantOutcome, type GrantRow } from './grant-batches.js';
import { BoundedCache } from './bounded-cache.js';
import { currentWindow, isOverLimit, rateLimitExceeded, rateLimitHeaders, type RateLimitState } from './rate-limit.js';
import { lookUpTokenStates, type TokenOfKey, type TokenState } from './token-store.js';

export interface GrantRequest {
  readonly agentId: string;
  /** The agent's organization: the token's `org_id`. */
  readonly orgId: string;
  readonly credentialId: string | null;
  /** The trust policies a GitHub exchange went through: deleting one revokes the token. */
  readonly trustPolicyIds?: readonly string[];
  /** The federation binding a token-exchange or JWT-bearer grant went through: deleting it revokes the token. */
  readonly bindingId?: string;
  /** With `bindingId`: the revision of its partner the token was verified against (federation_partners.revision). */
  readonly partnerRevision?: number;
  /**
   * The single-use token the grant came through (a GitHub ID token, a partner's subject
   * token), by issuer and jti: issue_grants spends it, and refuses the grant (GrantReplayed)
   * when it was spent before.
   */
  readonly usedJti?: { readonly key: string; readonly exp: number };
  /** Shorter than TOKEN_TTL_SECONDS (a binding's maxTtlSeconds); never longer. */
  readonly ttlSeconds?: number;
  readonly grantType: GrantType;
  readonly scopes: readonly string[];
  /** `aud` (oauth/audiences.ts). */
  readonly audience: string;
  /** Extra claims, e.g. the workflow provenance of a GitHub exchange. */
  readonly extraClaims?: Record<string, unknown>;
  readonly audit: { readonly type: AuditEventType; readonly actor: string; readonly data: Record<string, unknown> };
}

/** `console`: the operator's sign-in link to the admin console (`sentryagent-idp console`). */
export type GrantType = 'client_credentials' | 'github_oidc' | 'token_exchange' | 'jwt_bearer' | 'console';

export interface IssuedToken {
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly expiresAt: Date;
  readonly scope: string;
  readonly jti: string;
  readonly rateLimit: RateLimitState | undefined;
}

export interface ActiveToken {
  readonly claims: JwtClaims;
  readonly agentId: string;
  readonly scope: string;
  /** The agent's organization (also for tokens issued before organizations, which carry no `org_id`). */
  readonly orgId: string;
  readonly isPlatform: boolean;
}

/** Why a grant the client was entitled to was refused, as `GET /orgs/{id}/usage` counts it. */
export type GrantRefusalReason =
  | 'rate_limited'
  | 'agent_monthly_limit'
  | 'org_monthly_limit'
  | 'agent_inactive'
  | 'org_inactive'
  | 'invalid_scope'
  | 'trust_policy_violation';

export interface AccessTokensObserver {
  readonly onIssued?: (grantType: string) => void;
  readonly onQuotaExceeded?: (grantType: string) => void;
  /** A grant refused for an agent of `orgId` (only once the client or workflow has proved who it is). */
  readonly onRefused?: (orgId: string, reason: GrantRefusalReason) => void;
}

/** The database refused what cached data allowed: the credential, agent or scopes changed. */
export class GrantGateClosed extends Error {
  constructor() {
    super('grant refused by the database gate');
    this.name = 'GrantGateClosed';
  }
}

/** The grant's single-use token (GrantRequest.usedJti) had been spent: nothing was issued or counted. */
export class GrantReplayed extends Error {
  constructor() {
    super('grant refused: its single-use token was spent before');
    this.name = 'GrantReplayed';
  }
}

/** What issue_grants decided, and the key it checked for revocation on the way. */
interface CheckedOutcome {
  readonly outcome: GrantOutcome;
  readonly checkedKid: string | null;
}

export class AccessTokens {
  private readonly verifiedSignatures = new BoundedCache<string, VerifiedToken>(20_000);
  private verifiedUnderRevision = 0;
  /** Concurrent grants share one call of issue_grants: one round trip and one commit. */
  private readonly grants = new Batcher<GrantRow, CheckedOutcome>(async (rows) => {
    // The statement also says whether the key about to sign has been revoked since this instance loaded it.
    const checkedKid = this.keys.activeKid ?? null;
    const outcomes = await issueGrantBatch(this.query, this.config, rows, checkedKid);
    return outcomes.map((outcome) => ({ outcome, checkedKid }));
  }, RETRY_ALONE_UNLESS_UNAVAILABLE);
  /**
   * Agents refused by their rate window or month in the window noted (agent id → window
   * start): their next grants are signed only once admitted, so that a client hammering
   * past its limit does not make the server sign tokens nobody receives. A hint about
   * when to sign, never about whether to issue: the database still decides every grant.
   */
  private readonly refusedInWindow = new BoundedCache<string, number>(10_000);
  /** Concurrent token-state lookups share one query. */
  private readonly states = new Batcher<TokenOfKey, TokenState | undefined>((tokens) => this.lookUpStates(tokens));

  constructor(
    private readonly query: RunPrepared,
    private readonly keys: SigningKeys,
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly observer: AccessTokensObserver = {},
  ) {}

  /** Throws GrantGateClosed when the database no longer allows the grant, GrantReplayed when its single-use token was spent. */
  async issue(request: GrantRequest): Promise<IssuedToken> {
    const nowMs = this.clock.now();
    const issuedAt = Math.floor(nowMs / 1000);
    const ttlSeconds = Math.min(request.ttlSeconds ?? this.config.tokenTtlSeconds, this.config.tokenTtlSeconds);
    const expiresAt = issuedAt + ttlSeconds;
    const jti = crypto.randomUUID();
    const scope = request.scopes.join(' ');
    const { windowStart, resetSeconds } = currentWindow(nowMs);
    const claims: JwtClaims = {
      ...request.extraClaims,
      iss: this.config.publicUrl,
      aud: request.audience,
      sub: request.agentId,
      client_id: request.agentId,
      org_id: request.orgId,
      scope,
      jti,
      iat: issuedAt,
      exp: expiresAt,
    };
    // Signed now, while earlier grants' round trip is in flight, and handed out only if the
    // database admits the grant: each request signs in its own turn of the event loop, instead
    // of a whole batch signing at once when its commit returns and holding every other request
    // that long (the tail of the open-loop benchmark, bench/README.md).
    const presigned = this.refusedInWindow.get(request.agentId) === windowStart ? undefined : this.keys.signWithKid(claims);
    const { outcome, checkedKid } = await this.grants.submit({
      agentId: request.agentId,
      credentialId: request.credentialId,
      trustPolicies: request.trustPolicyIds?.length ? request.trustPolicyIds.join(' ') : null,
      bindingId: request.bindingId ?? null,
      partnerRevision: request.partnerRevision ?? null,
      usedJti: request.usedJti?.key ?? null,
      usedJtiExp: request.usedJti?.exp ?? null,
      scope,
      windowStart,
      month: new Date(nowMs).toISOString().slice(0, 7),
      jti,
      grantType: request.grantType,
      issuedAt,
      expiresAt,
      auditType: request.audit.type,
      auditActor: request.audit.actor,
      auditData: JSON.stringify({ jti, scope, grantType: request.grantType, ...request.audit.data }),
    });
    if (outcome.refusal === 'replay') throw new GrantReplayed();
    if (outcome.refusal === 'gate') throw new GrantGateClosed();
    const rateLimit =
      outcome.rate_count === null ? undefined : { limit: this.config.rateLimitPerMinute, count: outcome.rate_count, resetSeconds };
    if (outcome.issued !== 1) this.refusedInWindow.set(request.agentId, windowStart);
    if (outcome.refusal === 'rate' && rateLimit) {
      this.observer.onRefused?.(request.orgId, 'rate_limited');
      throw rateLimitExceeded(rateLimit, nowMs);
    }
    if (outcome.issued !== 1) {
      const isOrganizationLimit = outcome.refusal === 'org_quota';
      this.observer.onQuotaExceeded?.(request.grantType);
      this.observer.onRefused?.(request.orgId, isOrganizationLimit ? 'org_monthly_limit' : 'agent_monthly_limit');
      // The refused request still counted in the minute's window: say so, as on any answer.
      const headers = rateLimit ? rateLimitHeaders(rateLimit) : {};
      throw isOrganizationLimit
        ? new UnauthorizedClient(`Organization monthly token limit of ${(outcome.org_limit ?? 0).toLocaleString('en-US')} has been reached.`, headers)
        : new UnauthorizedClient(`Free tier monthly token limit of ${this.config.monthlyTokenLimit.toLocaleString('en-US')} requests has been reached.`, headers);
    }
    // Revoked on another instance: reload, and sign with the key that replaced it.
    if (outcome.is_key_revoked) await this.keys.refresh();
    // The signature stands only if the database checked its key and found it not revoked.
    const accessToken =
      presigned && !outcome.is_key_revoked && presigned.kid === checkedKid ? presigned.token : this.keys.sign(claims);
    this.observer.onIssued?.(request.grantType);
    return { accessToken, expiresIn: ttlSeconds, expiresAt: new Date(expiresAt * 1000), scope, jti, rateLimit };
  }

  /** A refusal decided outside issue_grants, for the organization's usage. */
  noteRefusal(orgId: string, reason: GrantRefusalReason): void {
    this.observer.onRefused?.(orgId, reason);
  }

  private async lookUpStates(tokens: TokenOfKey[]): Promise<(TokenState | undefined)[]> {
    const keyOf = (token: TokenOfKey) => `${token.jti} ${token.kid}`;
    const distinct = [...new Map(tokens.map((token) => [keyOf(token), token])).values()];
    const rows = await lookUpTokenStates(this.query, distinct);
    const stateOf = new Map(rows.map((row) => [keyOf(row), row]));
    return tokens.map((token) => stateOf.get(keyOf(token)));
  }

  /** Signature, issuer and expiry; no database. Undefined for anything not ours or expired. */
  async verifySignature(token: string): Promise<JwtClaims | undefined> {
    return (await this.verifySigned(token))?.claims;
  }

  private async verifySigned(token: string): Promise<VerifiedToken | undefined> {
    if (this.verifiedUnderRevision !== this.keys.revision) {
      // A key was withdrawn: what it signed must not stay valid through this cache.
      this.verifiedSignatures.clear();
      this.verifiedUnderRevision = this.keys.revision;
    }
    let verified = this.verifiedSignatures.get(token);
    if (!verified) {
      verified = await this.keys.verify(token);
      if (!verified) return undefined;
      const { claims } = verified;
      if (claims.iss !== this.config.publicUrl) return undefined;
      if (typeof claims.jti !== 'string' || !isUuid(claims.jti) || typeof claims.sub !== 'string') return undefined;
      if (typeof claims.exp !== 'number') return undefined;
      this.verifiedSignatures.set(token, verified);
    }
    return verified.claims.exp > this.clock.now() / 1000 ? verified : undefined;
  }

  /** The active tokens among `tokens`, looked up in one query; inactive ones are undefined. */
  async findActive(tokens: readonly string[]): Promise<(ActiveToken | undefined)[]> {
    const verified = await Promise.all(tokens.map((token) => this.verifySigned(token)));
    return Promise.all(
      verified.map(async (signed) => {
        if (!signed) return undefined;
        const { claims, kid } = signed;
        const state = await this.states.submit({ jti: claims.jti, kid });
        if (state?.is_key_revoked) this.keys.noteRevokedKey();
        if (!state || state.is_revoked || state.is_key_revoked || state.status !== 'active' || state.org_status !== 'active') return undefined;
        // Agents never change organization: a token naming another than its agent's is not one we issued.
        if (state.agent_id !== claims.sub || (claims.org_id !== undefined && claims.org_id !== state.org_id)) return undefined;
        const scope = typeof claims.scope === 'string' ? claims.scope : '';
        return { claims, agentId: state.agent_id, scope, orgId: state.org_id, isPlatform: state.is_platform };
      }),
    );
  }

  async findActiveOne(token: string): Promise<ActiveToken | undefined> {
    return (await this.findActive([token]))[0];
  }
}
