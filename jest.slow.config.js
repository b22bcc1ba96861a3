/** `npm run test:slow`: the suites that jest.config.js leaves out of `npm test` (see SLOW there). */
import config, { SLOW } from './jest.config.js';

export default {
  ...config,
  testMatch: SLOW.map((path) => (path.endsWith('/') ? `<rootDir>/${path}**/*.test.ts` : `<rootDir>/${path}`)),
  testPathIgnorePatterns: ['/node_modules/'],
};
