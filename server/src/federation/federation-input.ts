/** What a client may send to create or change a federation partner or binding: one schema for the API and the CLI. */
import { z } from 'zod';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { LOOPBACK_HOSTS } from '../config.js';
import { displayText, exactText } from '../http/validation.js';
import type { Condition } from './conditions.js';
import { ALLOWED_ALGORITHMS, PRESET_NAMES, PRESETS, type PresetName } from './presets.js';
import type { PartnerFields, PublicJwk } from './federation-store.js';

/**
 * An issuer or key URL: https, or http on a loopback host only (as GITHUB_OIDC_ISSUER);
 * RFC 3986 characters only (the issuer is matched exactly, and WHATWG URL parsing would
 * read a backslash as a slash).
 */
const URI_TEXT = /^(?:https?:\/\/\[[0-9A-Fa-f:.]+\])?(?:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const httpsUrl = exactText(2048)
  .regex(URI_TEXT, 'must be a URI (RFC 3986 characters only)')
  .refine((raw) => {
  try {
    const url = new URL(raw);
    return (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) && !url.search && !url.hash && !url.username;
  } catch {
    return false;
  }
}, 'must be an https URL (http only on a loopback host), without query, fragment or credentials');

const claimName = exactText(256).regex(/^(\/[^\s]*|[^/\s][^\s]*)$/, 'must be a claim name, or a JSON Pointer such as /kubernetes.io/namespace');
const conditionValue = exactText(1024);
export const conditionInput = z.discriminatedUnion('op', [
  z.strictObject({ claim: claimName, op: z.literal('eq'), value: conditionValue }),
  z.strictObject({ claim: claimName, op: z.literal('glob'), value: conditionValue }),
  z.strictObject({ claim: claimName, op: z.literal('in'), value: z.array(conditionValue).min(1).max(100) }),
]);
const conditions = z.array(conditionInput).max(20);

// A public key of an inline key set: no private part, an algorithm family we verify.
// Other members (n, e, crv, x, y, x5c, …) are text or lists of text that PostgreSQL's jsonb can hold.
const jwkMember = z.union([exactText(16_384), z.array(exactText(16_384)).max(10)]);
const publicJwk = z
  .object({ kty: z.enum(['RSA', 'EC', 'OKP']), kid: exactText(256).optional(), use: z.literal('sig').optional(), alg: z.enum(ALLOWED_ALGORITHMS).optional() })
  .catchall(jwkMember)
  .refine((jwk) => Object.keys(jwk).every((name) => /^[\x21-\x7e]{1,64}$/.test(name)), 'member names must be printable ASCII')
  .refine((jwk) => !['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((name) => name in jwk), 'must be a public key (no private or symmetric part)');
const keySet = z.strictObject({ keys: z.array(publicJwk).min(1).max(20) });

const partnerFields = {
  name: displayText(128),
  issuer: httpsUrl,
  jwksUri: httpsUrl,
  keys: keySet,
  audiences: z.array(exactText(1024).min(1)).min(1).max(10),
  algorithms: z.array(z.enum(ALLOWED_ALGORITHMS)).min(1).max(ALLOWED_ALGORITHMS.length),
  maxTokenAgeSeconds: z.number().int().min(60).max(86_400),
  singleUseJti: z.boolean(),
  requiredClaims: conditions,
  orgIds: z.array(z.uuid().transform((id) => id.toLowerCase())).max(1000),
};

export const createPartnerInput = z
  .strictObject({
    preset: z.enum(PRESET_NAMES),
    name: partnerFields.name,
    issuer: partnerFields.issuer.optional(),
    jwksUri: partnerFields.jwksUri.optional(),
    keys: partnerFields.keys.optional(),
    audiences: partnerFields.audiences,
    algorithms: partnerFields.algorithms.optional(),
    maxTokenAgeSeconds: partnerFields.maxTokenAgeSeconds.optional(),
    singleUseJti: partnerFields.singleUseJti.optional(),
    requiredClaims: partnerFields.requiredClaims.optional(),
    orgIds: partnerFields.orgIds.optional(),
  })
  .refine((input) => input.jwksUri === undefined || input.keys === undefined, { path: ['keys'], message: 'a partner takes jwksUri or keys, not both' })
  .refine((input) => input.issuer !== undefined || PRESETS[input.preset].issuer !== undefined, { path: ['issuer'], message: 'is required for this preset' });
export type CreatePartnerInput = z.infer<typeof createPartnerInput>;

export const partnerPatchInput = z
  .strictObject({
    name: partnerFields.name.optional(),
    issuer: partnerFields.issuer.optional(),
    jwksUri: partnerFields.jwksUri.nullable().optional(),
    keys: partnerFields.keys.nullable().optional(),
    audiences: partnerFields.audiences.optional(),
    algorithms: partnerFields.algorithms.optional(),
    maxTokenAgeSeconds: partnerFields.maxTokenAgeSeconds.optional(),
    singleUseJti: partnerFields.singleUseJti.optional(),
    requiredClaims: partnerFields.requiredClaims.optional(),
    orgIds: partnerFields.orgIds.optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'at least one field is required')
  .refine((patch) => !(patch.jwksUri && patch.keys), { path: ['keys'], message: 'a partner takes jwksUri or keys, not both' });
export type PartnerPatchInput = z.infer<typeof partnerPatchInput>;

/** The stored fields of a new partner: the preset's defaults for what the input leaves out. */
export function partnerFieldsOf(input: CreatePartnerInput): PartnerFields {
  const preset = PRESETS[input.preset as PresetName];
  return {
    name: input.name,
    preset: input.preset,
    issuer: input.issuer ?? (preset.issuer as string),
    jwksUri: input.jwksUri ?? null,
    keys: (input.keys as { keys: PublicJwk[] } | undefined) ?? null,
    audiences: input.audiences,
    algorithms: input.algorithms ?? preset.algorithms,
    maxTokenAgeSeconds: input.maxTokenAgeSeconds ?? preset.maxTokenAgeSeconds,
    singleUseJti: input.singleUseJti ?? preset.singleUseJti,
    requiredClaims: (input.requiredClaims ?? []) as Condition[],
    orgIds: input.orgIds ?? [],
  };
}

export const createBindingInput = z.strictObject({
  partnerId: z.uuid().transform((id) => id.toLowerCase()),
  agentId: z.uuid().transform((id) => id.toLowerCase()),
  conditions: conditions.min(1),
  scopes: z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length).transform((scopes) => [...new Set(scopes)]).optional(),
  maxTtlSeconds: z.number().int().min(60).max(86_400).optional(),
});
export type CreateBindingInput = z.infer<typeof createBindingInput>;
