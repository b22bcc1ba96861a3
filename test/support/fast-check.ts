/**
 * The seed of every fast-check property in the suite: fixed, so that CI runs the same cases
 * on every run and a failure there is reproducible, and overridable to explore others
 * (FC_SEED=<integer> npm test -- <file>). fast-check prints the seed of any failure.
 * Pass it in every fc.assert's options: `fc.assert(property, { ...SEED, numRuns: 200 })`.
 */
export const SEED = { seed: Number(process.env.FC_SEED ?? 20261123) };
if (!Number.isSafeInteger(SEED.seed)) throw new Error(`FC_SEED must be an integer, not ${JSON.stringify(process.env.FC_SEED)}`);
