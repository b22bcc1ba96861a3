/**
 * Builds the server once, for the tests that run it as a real process (`npm start`, the
 * CLI). `npm run build` also marks the build fresh, so that bin/sentryagent-idp.js does not
 * compile again (and say so on stderr) in the middle of a test.
 */
import { execFileSync } from 'node:child_process';

export default function globalSetup(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
}
