/**
 * Helpers for the egress guard's tests (test/egress/): loopback servers that count their
 * connections, stub resolvers, a spy that makes any connection fail, and the two error
 * assertions. Nothing here resolves a real name or reaches beyond 127.0.0.1.
 */
import type http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import { expect, jest } from '@jest/globals';
import { EgressFailed, EgressRefused, type ResolvedAddress } from '../../server/src/egress/egress-guard.js';

/** The range the tests allow when a request is meant to reach their servers. */
export const LOOPBACK = ['127.0.0.0/8'];

/** Listens on 127.0.0.1 (a free port), counting every connection in `seen.connections`. */
export async function listen(server: http.Server | https.Server, seen: { connections: number }): Promise<number> {
  server.on('connection', () => {
    seen.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** Closes a server and the connections it still holds. */
export async function close(server: http.Server | https.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** A resolver answering the given addresses in turn (the last one from then on), recording the names asked. */
export const stub = (...answers: Array<string | string[]>) => {
  const calls: string[] = [];
  const resolve = async (hostname: string): Promise<ResolvedAddress[]> => {
    calls.push(hostname);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
    return (Array.isArray(answer) ? answer : [answer]).map((address) => ({ address, family: net.isIP(address) }));
  };
  return { resolve, calls };
};

/** Makes any socket connection throw for the duration of `run`, and counts the attempts. */
export async function withoutConnections<T>(run: () => Promise<T>): Promise<{ result: PromiseSettledResult<T>; attempts: number }> {
  const spy = jest.spyOn(net.Socket.prototype, 'connect').mockImplementation(() => {
    throw new Error('a connection was attempted');
  });
  try {
    const [result] = await Promise.allSettled([run()]);
    return { result, attempts: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
}

/** The EgressRefused the promise rejects with (the test fails on anything else). */
export async function refusal(promise: Promise<unknown>): Promise<EgressRefused> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(EgressRefused);
  return error as EgressRefused;
}

/** The EgressFailed the promise rejects with (the test fails on anything else). */
export async function failure(promise: Promise<unknown>): Promise<EgressFailed> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(EgressFailed);
  return error as EgressFailed;
}
