import os from 'node:os';

/**
 * Jest in ESM mode: `npm test` sets NODE_OPTIONS=--experimental-vm-modules.
 *
 * `npm test` is the quick, complete check of behaviour. The few suites that need real
 * processes, several concurrent instances or races (SLOW below) run with
 * `npm run test:slow` (jest.slow.config.js), which CI runs too.
 */
export const SLOW = [
  // Real server and CLI processes: `npm start`, the embedded DATA_DIR's lock and operator socket, cluster workers, a database missing at start.
  'test/process/',
  // The real process under SIGTERM while keep-alive clients race it.
  'test/reliability/sigterm.test.ts',
  // Two instances on one database under concurrent load; the link cut while requests flow.
  'test/reliability/multi-instance.test.ts',
  'test/reliability/database-outage.test.ts',
  // Organizations across two instances: suspension, and the monthly limit under 300 concurrent grants.
  'test/organizations/multi-instance.test.ts',
  // A webhook worker's process killed in the middle of a delivery; another takes over.
  'test/webhooks/crash.test.ts',
  // The bundled actions as runner processes (their sources are tested in process: *-run, lib-*).
  'test/actions/issue-token-dist.test.ts',
  'test/actions/issue-token-e2e.test.ts',
  'test/actions/register-agent-dist.test.ts',
  'test/actions/register-agent-e2e.test.ts',
  // The release trees, built outside the repository and run as the runner runs them.
  'test/actions/release-trees.test.ts',
];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/actions/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...SLOW.map((path) => `<rootDir>/${path}`)],
  testTimeout: 30000,
  // Jest's default, one worker fewer than cores, runs the files one at a time on 2 cores.
  // Each file has its own database and ports, and much of a file's time is waiting on HTTP,
  // the database and child processes: two files at once at least.
  maxWorkers: Math.max(2, os.availableParallelism() - 1),
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};
