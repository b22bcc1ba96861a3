/**
 * Introspection (RFC 7662) and revocation (RFC 7009): who may ask, and what the answer is.
 * Both take the caller's token rather than a resolved caller, so that the caller's token
 * and the subject token are looked up in one query.
 */
import { agentCaller, actorOf, requireScope, type AgentCaller } from '../authorization/caller.js';
import { assertMayManage } from '../authorization/escalation.js';
import { parseScopeParameter } from '../authorization/scopes.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { mayActIn } from '../authorization/tenancy.js';
import { Forbidden, Unauthenticated } from '../errors.js';
import type { RunPrepared } from '../storage/prepared.js';
import type { AccessTokens, ActiveToken } from './access-tokens.js';
import { isForThisServer } from './audiences.js';
import type { RateLimitState } from './rate-limit.js';
import { countRequest } from './rate-limit-store.js';
import { findTokenHolder, revokeTokenAudited } from './token-store.js';

export function callerOfToken(active: ActiveToken): AgentCaller {
  return agentCaller(active.agentId, parseScopeParameter(active.scope), active);
}

/** A Bearer token for this server's own endpoints: active, and made for this server. */
function authenticated(active: ActiveToken | undefined, publicUrl: string): AgentCaller {
  if (!active || !isForThisServer(active.claims, publicUrl)) throw new Unauthenticated('The access token is invalid, expired or revoked.', true);
  return callerOfToken(active);
}

export interface TokenServiceDeps {
  readonly config: Config;
  readonly query: RunPrepared;
  readonly tokens: AccessTokens;
  readonly clock: Clock;
}

export class TokenService {
  constructor(private readonly deps: TokenServiceDeps) {}

  /** The caller behind a Bearer token: an active token of ours, or undefined. */
  readonly authenticate = async (token: string): Promise<AgentCaller | undefined> => {
    const active = await this.deps.tokens.findActiveOne(token);
    return active && isForThisServer(active.claims, this.deps.config.publicUrl) ? callerOfToken(active) : undefined;
  };

  private count(caller: AgentCaller): Promise<RateLimitState | undefined> {
    const { query, config, clock } = this.deps;
    return countRequest(query, caller.agentId, config.rateLimitPerMinute, clock.now());
  }

  /**
   * `subjectToken` when it is active and of an organization the caller may act in, else
   * undefined (a foreign token is as inactive as an unknown one); the caller needs tokens:read.
   */
  async introspect(callerToken: string, subjectToken: string): Promise<{ subject: ActiveToken | undefined; rateLimit: RateLimitState | undefined }> {
    const [callerActive, subject] = await this.deps.tokens.findActive([callerToken, subjectToken]);
    const caller = authenticated(callerActive, this.deps.config.publicUrl);
    requireScope(caller, 'tokens:read');
    const rateLimit = await this.count(caller);
    return { subject: subject && mayActIn(caller, subject.orgId) ? subject : undefined, rateLimit };
  }

  /**
   * An agent revokes its own tokens; another agent's takes agents:write and holding every
   * scope that agent holds (no escalation). Tokens that are not ours, expired or unknown
   * are ignored (RFC 7009 §2.2), and so are those of an organization the caller may not act
   * in: a refusal would tell that the token exists.
   */
  async revoke(callerToken: string, subjectToken: string): Promise<{ rateLimit: RateLimitState | undefined }> {
    const caller = authenticated(await this.deps.tokens.findActiveOne(callerToken), this.deps.config.publicUrl);
    const rateLimit = await this.count(caller);
    const subject = await this.deps.tokens.verifySignature(subjectToken);
    if (!subject) return { rateLimit };
    if (subject.sub !== caller.agentId) {
      const holder = await findTokenHolder(this.deps.query, subject.jti);
      if (!holder || !mayActIn(caller, holder.orgId)) return { rateLimit };
      if (!caller.scopes.includes('agents:write')) throw new Forbidden('You do not have permission to revoke this token.');
      assertMayManage(caller, holder);
    }
    await revokeTokenAudited(this.deps.query, subject.jti, actorOf(caller), this.deps.clock.now());
    return { rateLimit };
  }
}
