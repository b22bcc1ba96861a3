/** Signing keys, read-only: kid, algorithm, dates and state (rotation and revocation are the operator's, in the CLI). */
import { badge, formatTime, h, table } from '../dom.js';
import { call, heading } from '../ui.js';

interface SigningKey {
  kid: string;
  alg: string;
  createdAt: string;
  retiredAt: string | null;
  revokedAt: string | null;
  state: 'active' | 'retired' | 'revoked';
}

const TONE = { active: 'good', retired: 'neutral', revoked: 'bad' } as const;

export async function keysPage(main: HTMLElement): Promise<void> {
  const keys = await call<{ data: SigningKey[] }>('GET', '/api/v1/keys');
  main.append(
    heading('Signing keys'),
    h('p', {}, 'Rotate, re-encrypt or revoke keys with ', h('code', {}, 'sentryagent-idp keys …'), ' on the server. Public keys are published at ', h('a', { href: '/.well-known/jwks.json' }, '/.well-known/jwks.json'), '.'),
    table('Signing keys', ['Key ID', 'Algorithm', 'State', 'Created', 'Retired', 'Revoked'], keys.data.map((key) => [
      h('code', {}, key.kid),
      key.alg,
      badge(key.state, TONE[key.state] ?? 'neutral'),
      formatTime(key.createdAt),
      formatTime(key.retiredAt),
      formatTime(key.revokedAt),
    ]), 'No signing keys yet.'),
  );
}
