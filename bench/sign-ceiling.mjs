// The ceiling: jose signing JWTs of the same algorithm and claim size, 16 in flight, on
// whatever core this process is pinned to. Prints {"alg","opsPerSecond"} as JSON.
import { SignJWT, generateKeyPair } from 'jose';

const [alg = 'RS256', seconds = '5'] = process.argv.slice(2);
const { privateKey } = await generateKeyPair(alg);
const claims = {
  iss: 'http://127.0.0.1:3000',
  sub: '6f0c7c4e-9d7a-4a51-9a55-1f4a6f7f0a11',
  client_id: '6f0c7c4e-9d7a-4a51-9a55-1f4a6f7f0a11',
  scope: 'agents:read tokens:read',
  jti: 'a3f1a1f8-2f43-4c1e-8d6c-6e2b7c2c9d10',
};
const sign = () =>
  new SignJWT(claims).setProtectedHeader({ alg, typ: 'at+jwt', kid: 'x'.repeat(43) }).setIssuedAt().setExpirationTime('1h').sign(privateKey);

for (let i = 0; i < 200; i += 1) await sign(); // warm up
const deadline = Date.now() + Number(seconds) * 1000;
let done = 0;
const worker = async () => {
  while (Date.now() < deadline) {
    await sign();
    done += 1;
  }
};
const started = Date.now();
await Promise.all(Array.from({ length: 16 }, worker));
process.stdout.write(JSON.stringify({ alg, opsPerSecond: Math.round((done * 1000) / (Date.now() - started)) }) + '\n');
