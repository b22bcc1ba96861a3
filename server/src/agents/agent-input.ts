/** What a client may send to create or change an agent: one schema for the API and the CLI. */
import { z } from 'zod';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { displayText, freeText } from '../http/validation.js';

const scopeList = z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length).transform((scopes) => [...new Set(scopes)]);
const description = freeText(1024).nullable();

// orgId: the organization to create it in (a platform admin:orgs caller's choice); the caller's own by default.
export const createAgentInput = z.strictObject({ orgId: z.uuid().transform((id) => id.toLowerCase()).optional(), name: displayText(128), description: description.optional(), scopes: scopeList.optional() });

export const agentPatchInput = z
  .strictObject({ name: displayText(128).optional(), description: description.optional(), scopes: scopeList.optional() })
  .refine((patch) => Object.keys(patch).length > 0, 'at least one of name, description, scopes is required');
