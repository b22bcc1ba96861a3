/** audit verify: the whole hash chain, recomputed in order, and its signed digests. */
import fs from 'node:fs';
import { EXIT, usageError, type Command } from './command.js';

/** A digest file holds the compact JWS, or the server's JSON log line carrying it (`digest`). */
function readDigestFile(file: string): string {
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw usageError(`cannot read --digest ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  if (content.startsWith('{')) {
    try {
      const line = JSON.parse(content) as { digest?: unknown };
      if (typeof line.digest === 'string') return line.digest;
    } catch {
      // not a log line: reported below, like any file that holds no digest
    }
    throw usageError(`--digest ${file} holds neither a digest nor a log line with one`);
  }
  return content;
}

export const auditCommands: Command[] = [
  {
    name: 'audit verify',
    summary: 'verify the audit hash chain and its signed digests (exit 1 when either is broken)',
    synopsis: '[--digest <file>]',
    options: { digest: { type: 'string' } },
    optionHelp: { digest: 'a file holding a digest the server logged (the log line or the bare JWS), kept outside the database' },
    pathOptions: ['digest'],
    readsOnly: true,
    run: async ({ services, caller, output }, { options }) => {
      const digest = typeof options.digest === 'string' ? readDigestFile(options.digest) : undefined;
      const verification = await services.audit.verify(caller, digest);
      output.result(verification, () => {
        if (verification.valid) {
          const digests = digest === undefined ? `${verification.digestsChecked} digests` : 'the digest given and the stored ones';
          return `audit chain intact: ${verification.checked} events and ${digests} verified`;
        }
        const where = verification.firstInvalidId === undefined ? '' : ` (event ${verification.firstInvalidId})`;
        return (
          `audit chain BROKEN from sequence ${verification.firstInvalidSeq}${where}: events were edited, deleted or inserted, ` +
          `or a signed digest no longer matches (${verification.checked} events verified before it)`
        );
      });
      return verification.valid ? EXIT.ok : EXIT.failure;
    },
  },
];
