/**
 * Coalesces concurrent calls into batches, one round trip each. A call goes out at once
 * (on the next microtask) while fewer than `maxInFlight` batches are running; otherwise
 * it waits and goes with the next batch. So an idle server adds no latency and a busy
 * one pays one round trip, one parse and one commit per batch instead of per call, and
 * every call's work still starts after the call was made.
 */
export type RunBatch<I, O> = (inputs: I[]) => Promise<(O | Promise<O>)[]>;

interface Waiting<I, O> {
  readonly input: I;
  resolve(output: O | Promise<O>): void;
  reject(error: unknown): void;
}

export class Batcher<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: RunBatch<I, O>,
    private readonly maxInFlight = 2,
    private readonly maxBatch = 100,
  ) {}

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
      this.run(batch.map((call) => call.input))
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
}
