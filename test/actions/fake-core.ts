/**
 * A stand-in for `@actions/core`, for `jest.unstable_mockModule('@actions/core', () => fake.module)`.
 * It keeps inputs and state in maps and records every call in order, so tests can assert
 * what was masked before what was printed.
 */
import { jest } from '@jest/globals';

export interface CoreCall {
  readonly fn: string;
  readonly args: unknown[];
}

export interface FakeCore {
  readonly module: Record<string, (...args: never[]) => unknown>;
  inputs: Record<string, string>;
  /** What the runner would export as STATE_* (set it to simulate a post step). */
  state: Record<string, string>;
  readonly calls: CoreCall[];
  /** ID tokens handed out by getIDToken, in order; audiences alongside. */
  readonly idTokens: string[];
  readonly audiences: (string | undefined)[];
  /** When set, getIDToken rejects with it. */
  idTokenError?: Error;
  callsOf(fn: string): unknown[][];
  /** Every string printed to the log (info, warning, error, debug, setFailed). */
  logged(): string[];
  /** Lines of those strings that the runner would obey as workflow commands (`::name::…`). */
  workflowCommandLines(): string[];
  reset(): void;
}

export function createFakeCore(): FakeCore {
  const fake: FakeCore = {
    module: {},
    inputs: {},
    state: {},
    calls: [],
    idTokens: [],
    audiences: [],
    callsOf: (fn) => fake.calls.filter((call) => call.fn === fn).map((call) => call.args),
    logged: () =>
      fake.calls
        .filter((call) => ['info', 'warning', 'error', 'debug', 'setFailed', 'notice'].includes(call.fn))
        .map((call) => String(call.args[0])),
    // The runner splits output at any line break and trims a line's start before looking for `::`.
    workflowCommandLines: () =>
      fake
        .logged()
        .flatMap((text) => text.split(/\r\n|[\n\r\v\f\x85\u2028\u2029]/))
        .filter((line) => line.trimStart().startsWith('::')),
    reset: () => {
      fake.inputs = {};
      fake.state = {};
      fake.calls.length = 0;
      fake.idTokens.length = 0;
      fake.audiences.length = 0;
      fake.idTokenError = undefined;
    },
  };
  const record =
    (fn: string, implementation: (...args: never[]) => unknown = () => undefined) =>
    (...args: never[]) => {
      fake.calls.push({ fn, args });
      return implementation(...args);
    };
  Object.assign(fake.module, {
    getInput: jest.fn(record('getInput', (name: string) => (fake.inputs[name] ?? '').trim())),
    getState: jest.fn(record('getState', (name: string) => fake.state[name] ?? '')),
    getIDToken: jest.fn(
      record('getIDToken', async (audience: string | undefined) => {
        if (fake.idTokenError) throw fake.idTokenError;
        fake.audiences.push(audience);
        const token = `eyJ.id-token-${fake.idTokens.length + 1}.sig`;
        fake.idTokens.push(token);
        return token;
      }),
    ),
    saveState: jest.fn(record('saveState')),
    setOutput: jest.fn(record('setOutput')),
    setSecret: jest.fn(record('setSecret')),
    exportVariable: jest.fn(record('exportVariable')),
    setFailed: jest.fn(record('setFailed')),
    info: jest.fn(record('info')),
    warning: jest.fn(record('warning')),
    error: jest.fn(record('error')),
    notice: jest.fn(record('notice')),
    debug: jest.fn(record('debug')),
  });
  return fake;
}
