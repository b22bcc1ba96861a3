/** What a client may send to create or change a webhook endpoint, rotate its secret or recover it: one schema for the API and the CLI. */
import { z } from 'zod';
import { displayText, exactText, isStorableInstant } from '../http/validation.js';
import { WEBHOOK_EVENT_TYPES } from './event-types.js';

/**
 * An absolute http(s) URL without credentials or fragment, RFC 3986 characters only. Whether
 * it may be reached (https, or http to an allowed range; no private address) is the egress
 * guard's to say, when it is saved and again at each delivery.
 */
const endpointUrl = exactText(2048)
  .regex(/^(?:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=[\]]|%[0-9A-Fa-f]{2})+$/, 'must be a URI (RFC 3986 characters only)')
  .refine((raw) => {
    try {
      const url = new URL(raw);
      return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password && !url.hash;
    } catch {
      return false;
    }
  }, 'must be an absolute https URL without credentials or fragment');

/** `"*"`: every type but `token.issued`, which is delivered only when named. */
const eventTypes = z
  .array(z.enum(['*', ...WEBHOOK_EVENT_TYPES]))
  .min(1)
  .max(WEBHOOK_EVENT_TYPES.length + 1)
  .transform((types) => [...new Set(types)]);

export const createWebhookInput = z.strictObject({
  url: endpointUrl,
  eventTypes,
  description: displayText(512).optional(),
  enabled: z.boolean().optional(),
  /** A platform caller's choice of organization; others create in their own. */
  orgId: z.uuid().transform((id) => id.toLowerCase()).optional(),
});
export type CreateWebhookInput = z.infer<typeof createWebhookInput>;

export const webhookPatchInput = z
  .strictObject({ url: endpointUrl, eventTypes, description: displayText(512).nullable(), enabled: z.boolean() })
  .partial()
  .refine((patch) => Object.keys(patch).length > 0, 'must change at least one field');
export type WebhookPatchInput = z.infer<typeof webhookPatchInput>;

export const MAX_GRACE_PERIOD_SECONDS = 86_400;
export const rotateSecretInput = z.strictObject({ gracePeriodSeconds: z.number().int().min(0).max(MAX_GRACE_PERIOD_SECONDS).default(0) });

export const recoverInput = z.strictObject({ since: z.iso.datetime({ offset: true }).refine(isStorableInstant, 'must be between the years 0001 and 9999') });
