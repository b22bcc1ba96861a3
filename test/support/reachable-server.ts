/**
 * A test server whose PUBLIC_URL is its own real address, for clients that discover it:
 * RFC 8414 §3.3 makes them refuse metadata whose `issuer` is not the URL they asked. The
 * port must be known before the server starts (it is in PUBLIC_URL), so a free one is
 * picked first; should another process take it in between, another is tried.
 */
import net from 'node:net';
import { startTestServer, type TestServer } from './test-server.js';

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export async function startReachableTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await findFreePort();
    try {
      return await startTestServer({ env: { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ...env } });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 3) throw error;
    }
  }
}
