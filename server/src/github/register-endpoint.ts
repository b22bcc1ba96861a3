/** POST /api/v1/oidc/register: parses `{token, name, description?, scopes?}` (JSON or form) and answers the registration. */
import type { Context } from 'koa';
import { z } from 'zod';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { InvalidRequest } from '../errors.js';
import { readJsonOrForm } from '../http/body.js';
import { displayText, freeText } from '../http/validation.js';
import type { GitHubRegistration } from './registration-service.js';

const scopeList = z
  .union([z.array(z.string()), z.string().transform((value) => value.split(/[\s,]+/).filter(Boolean))])
  .pipe(z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length));
const registerBody = z.object({
  token: z.string().min(1).max(16_384),
  name: displayText(128),
  description: freeText(1024).optional(),
  scopes: scopeList.optional(),
});

export function registerEndpoint(register: GitHubRegistration) {
  return async function registerAgentFromWorkflow(ctx: Context): Promise<void> {
    const parsed = registerBody.safeParse(await readJsonOrForm(ctx));
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join('.') || 'body';
      throw new InvalidRequest(`The '${field}' parameter is missing or malformed.`);
    }
    const { token, ...request } = parsed.data;
    const { agent, created } = await register(token, request);
    ctx.status = created ? 201 : 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...agent, created };
  };
}
