import { describe, expect, it } from '@jest/globals';
import { Batcher } from '../../server/src/storage/batcher.js';

/** A run that records its batches and answers when released. */
function controlledRun() {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const run = (inputs: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      batches.push(inputs);
      pending.push(() => (inputs.includes(13) ? reject(new Error('unlucky')) : resolve(inputs.map((n) => n * 10))));
    });
  const releaseAll = async () => {
    while (pending.length > 0) {
      pending.splice(0).forEach((release) => release());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { batches, run, releaseAll };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('sends a lone call at once, alone', async () => {
    const { batches, run, releaseAll } = controlledRun();
    const batcher = new Batcher(run);
    const answer = batcher.submit(1);
    await tick();
    expect(batches).toEqual([[1]]);
    await releaseAll();
    await expect(answer).resolves.toBe(10);
  });

  it('keeps at most maxInFlight batches running and sends the waiting calls together after', async () => {
    const { batches, run, releaseAll } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 2 });
    const first = batcher.submit(1);
    await tick();
    const second = batcher.submit(2);
    await tick();
    const rest = [3, 4, 5, 6].map((n) => batcher.submit(n));
    await tick();
    expect(batches).toEqual([[1], [2]]);
    await releaseAll();
    expect(batches).toEqual([[1], [2], [3, 4, 5, 6]]);
    expect(await Promise.all([first, second, ...rest])).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('splits at maxBatch', async () => {
    const { batches, run, releaseAll } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1, maxBatch: 3 });
    const answers = [1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n));
    await tick();
    await releaseAll();
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(await Promise.all(answers)).toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  it('fails every call of a failed batch unless retryAlone accepts the error', async () => {
    const { run, releaseAll } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1 });
    const answers = [12, 13, 14].map((n) => batcher.submit(n).catch((error: Error) => error.message));
    await tick();
    await releaseAll();
    expect(await Promise.all(answers)).toEqual(['unlucky', 'unlucky', 'unlucky']);
  });

  it('with retryAlone, runs each call of a failed batch alone, so only the bad one fails', async () => {
    const { batches, run, releaseAll } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1, retryAlone: (error) => (error as Error).message === 'unlucky' });
    const answers = [12, 13, 14].map((n) => batcher.submit(n).catch((error: Error) => error.message));
    await tick();
    await releaseAll();
    expect(await Promise.all(answers)).toEqual([120, 'unlucky', 140]);
    expect(batches).toEqual([[12, 13, 14], [12], [13], [14]]);
  });

  it('goes on after a failed batch', async () => {
    const { run, releaseAll } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1 });
    const failed = batcher.submit(13).catch(() => 'failed');
    await tick();
    const later = batcher.submit(2);
    await releaseAll();
    expect(await failed).toBe('failed');
    expect(await later).toBe(20);
  });
});
