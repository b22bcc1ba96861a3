/**
 * The `aud` of the tokens we issue (RFC 9068 §2.2): PUBLIC_URL by default, or the resource
 * server a client asks for with RFC 8707's `resource`, when it is one of TOKEN_AUDIENCES.
 * This server's own Bearer endpoints accept only tokens made for it, so a token issued for
 * a downstream service cannot be replayed here.
 */
import type { Config } from '../config.js';
import { InvalidTarget } from '../errors.js';
import type { JwtClaims } from '../keys/jwt.js';

/** The audience of a token asked for with `resource` (undefined: this server). */
export function audienceFor(config: Pick<Config, 'publicUrl' | 'tokenAudiences'>, resource: string | undefined): string {
  if (resource === undefined || resource === config.publicUrl) return config.publicUrl;
  if (config.tokenAudiences.includes(resource)) return resource;
  throw new InvalidTarget("The 'resource' is not a service this server issues tokens for.");
}

/**
 * Whether a token of ours was made for this server: its `aud` is PUBLIC_URL. A token
 * without `aud` was issued before audiences existed and is accepted until it expires.
 */
export function isForThisServer(claims: JwtClaims, publicUrl: string): boolean {
  return claims.aud === undefined || claims.aud === publicUrl;
}
