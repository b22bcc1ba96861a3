/**
 * A fixed path that a router's `/:id` pattern also matches (`…/trust-policies/evaluate`,
 * `…/webhooks/event-types`): without this the router would add the `/:id` route's methods
 * to the path's Allow header and run them on it. The path answers its own methods only:
 * others get 405 with the right Allow, OPTIONS 200, as the router's allowedMethods answers.
 */
import type { Context, Next } from 'koa';

export function answeringOnly(path: string, methods: readonly string[]) {
  const allowed = methods.includes('GET') && !methods.includes('HEAD') ? [...methods, 'HEAD'] : [...methods];
  const allow = allowed.join(', ');
  return async function onlyItsMethods(ctx: Context, next: Next): Promise<void> {
    if (ctx.path !== path || allowed.includes(ctx.method)) return next();
    ctx.set('Allow', allow);
    ctx.status = ctx.method === 'OPTIONS' ? 200 : 405;
    // As the router's own allowedMethods answers: no body.
    if (ctx.method === 'OPTIONS') ctx.body = '';
  };
}
