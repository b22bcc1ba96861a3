/**
 * Bounded concurrent load for the reliability tests: a fixed number of workers, each
 * sending one request after another, with every request's start and end recorded so a
 * test can ask what happened to the requests that started after some event.
 */
import { performance } from 'node:perf_hooks';
import type { TestServer } from './test-server.js';
import { bearer, send } from './api.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Sample<T> {
  readonly worker: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly value: T;
}

export interface Load<T> {
  /** Samples recorded so far. */
  readonly samples: readonly Sample<T>[];
  /** Stops the workers after their current request and returns every sample. */
  stop(): Promise<Sample<T>[]>;
}

/** `workers` loops of `task` until stop() or `maxRequests` in all (a hard bound on load). */
export function startLoad<T>(workers: number, task: (worker: number, index: number) => Promise<T>, maxRequests = 400): Load<T> {
  const samples: Sample<T>[] = [];
  let isStopped = false;
  let started = 0;
  const loops = Array.from({ length: workers }, async (_, worker) => {
    while (!isStopped && started < maxRequests) {
      const index = started++;
      const startedAt = performance.now();
      const value = await task(worker, index);
      samples.push({ worker, startedAt, finishedAt: performance.now(), value });
    }
  });
  return {
    samples,
    stop: async () => {
      isStopped = true;
      await Promise.all(loops);
      return samples;
    },
  };
}

/** Promise.all with at most `limit` tasks in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const loops = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  });
  await Promise.all(loops);
  return results;
}

export function claimsOfJwt(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

export interface AuditEventView {
  readonly id: string;
  readonly type: string;
  readonly agentId: string | null;
  readonly orgId: string;
  readonly actor: string;
  readonly data: Record<string, any>;
  readonly createdAt: string;
  readonly hash: string | null;
}

/** The whole audit log through the API, page by page (newest first). */
export async function readWholeAuditLog(server: { url: string }, token: string, query = ''): Promise<AuditEventView[]> {
  const events: AuditEventView[] = [];
  let cursor: string | null = null;
  do {
    const page = await send(server, `/api/v1/audit?limit=100${query}${cursor ? `&cursor=${cursor}` : ''}`, bearer(token));
    if (page.status !== 200) throw new Error(`audit read failed: ${page.status} ${page.text}`);
    events.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor);
  return events;
}

export type Instance = Pick<TestServer, 'url'>;
