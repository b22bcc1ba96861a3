/** Removes what global-setup.ts made (the template database, this run's temporary directory). */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { idpTestCleanup?: () => Promise<void> }).idpTestCleanup?.();
}
