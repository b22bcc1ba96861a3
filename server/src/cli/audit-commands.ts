/** audit verify: the whole hash chain, recomputed in order. */
import { EXIT, type Command } from './command.js';

export const auditCommands: Command[] = [
  {
    name: 'audit verify',
    summary: 'verify the audit hash chain (exit 1 when it is broken)',
    readsOnly: true,
    run: async ({ services, caller, output }) => {
      const verification = await services.audit.verify(caller);
      output.result(verification, () =>
        verification.valid
          ? `audit chain intact: ${verification.checked} events verified`
          : `audit chain BROKEN at event ${verification.firstInvalidId}: it was edited, deleted or inserted out of order ` +
            `(${verification.checked} events before it verified)`,
      );
      return verification.valid ? EXIT.ok : EXIT.failure;
    },
  },
];
