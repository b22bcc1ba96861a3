/**
 * Coalesces concurrent calls into batches, one round trip each. A call goes out at once
 * (on the next microtask) while fewer than `maxInFlight` batches are running; otherwise
 * it waits and goes with the next batch. So an idle server adds no latency and a busy
 * one pays one round trip, one parse and one commit per batch instead of per call, and
 * every call's work still starts after the call was made.
 */
import { isDatabaseUnavailable } from './database.js';

export type RunBatch<I, O> = (inputs: I[]) => Promise<(O | Promise<O>)[]>;

interface Waiting<I, O> {
  readonly input: I;
  resolve(output: O | Promise<O>): void;
  reject(error: unknown): void;
}

export interface BatcherOptions {
  readonly maxInFlight?: number;
  readonly maxBatch?: number;
  /**
   * When a batch of several fails with an error this accepts, each call is run alone, so
   * that one bad call fails only itself. Only for runs that commit nothing when they fail.
   */
  readonly retryAlone?: (error: unknown) => boolean;
}

/**
 * For a run that is one statement: if it fails, nothing of it was committed, so unless the
 * database is out of reach each call can be retried alone.
 */
export const RETRY_ALONE_UNLESS_UNAVAILABLE: BatcherOptions = { retryAlone: (error) => !isDatabaseUnavailable(error) };

export class Batcher<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;

  constructor(
    private readonly run: RunBatch<I, O>,
    private readonly options: BatcherOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 2;
    this.maxBatch = options.maxBatch ?? 100;
  }

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      if (!this.scheduled && this.inFlight < this.maxInFlight) {
        this.scheduled = true;
        queueMicrotask(() => this.dispatch());
      }
    });
  }

  private dispatch(): void {
    this.scheduled = false;
    while (this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.inFlight += 1;
      this.runIsolated(batch.map((call) => call.input))
        .then(
          (outputs) => batch.forEach((call, index) => call.resolve(outputs[index] as O | Promise<O>)),
          (error: unknown) => batch.forEach((call) => call.reject(error)),
        )
        .finally(() => {
          this.inFlight -= 1;
          this.dispatch();
        });
    }
  }

  private async runIsolated(inputs: I[]): Promise<(O | Promise<O>)[]> {
    try {
      return await this.run(inputs);
    } catch (error) {
      if (inputs.length === 1 || !this.options.retryAlone?.(error)) throw error;
      return inputs.map(async (input) => (await this.run([input]))[0] as O);
    }
  }
}
