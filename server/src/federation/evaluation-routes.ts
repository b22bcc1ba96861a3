/**
 * POST /api/v1/federation/partners/{partnerId}/evaluate and /api/v1/oidc/trust-policies/evaluate
 * (agents:read): why a token would be granted or refused, without granting. Parse, call the
 * evaluation service, render.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { readJson } from '../http/body.js';
import { answeringOnly } from '../http/fixed-path.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { parseWith, requireUuid } from '../http/validation.js';
import type { EvaluationService } from './evaluation-service.js';

const evaluationInput = z.strictObject({
  token: z.string().min(1).max(16_384).optional(),
  claims: z.record(z.string(), z.unknown()).optional(),
  agentId: z.uuid().transform((id) => id.toLowerCase()).optional(),
});

const TRUST_POLICY_EVALUATION = '/api/v1/oidc/trust-policies/evaluate';

/** `…/trust-policies/evaluate` also matches the trust policies' `/:id`: it answers POST alone, as documented. */
export const onlyPostToEvaluate = answeringOnly(TRUST_POLICY_EVALUATION, ['POST']);

export function evaluationRoutes(evaluations: EvaluationService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router();
  const canRead = requireScope(authenticate, 'agents:read');

  router.post('/api/v1/federation/partners/:partnerId/evaluate', canRead, async (ctx) => {
    const partnerId = requireUuid(ctx.params.partnerId, 'partnerId');
    const input = parseWith(evaluationInput, await readJson(ctx), 'The evaluation');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await evaluations.evaluatePartner(callerOf<AgentCaller>(ctx), partnerId, input);
  });

  router.post(TRUST_POLICY_EVALUATION, canRead, async (ctx) => {
    const input = parseWith(evaluationInput, await readJson(ctx), 'The evaluation');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await evaluations.evaluateTrustPolicies(callerOf<AgentCaller>(ctx), input);
  });

  return router;
}
