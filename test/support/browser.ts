/**
 * A real browser for the console's tests: Debian's Chromium (`apt-get install -y chromium`;
 * .ci/run installs it), driven headless by playwright-core, which downloads nothing.
 * CHROMIUM_PATH names another binary. Screenshots go to CONSOLE_SCREENSHOTS_DIR, by
 * default test-results/console-screenshots, for a reviewer to look at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS_DIR = path.resolve(process.env.CONSOLE_SCREENSHOTS_DIR ?? 'test-results/console-screenshots');

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM_PATH)) throw new Error(`No browser at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH).`);
  // As root, Chromium's sandbox cannot start; the pages it loads here are our own.
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

/** A full-page screenshot, `<SCREENSHOTS_DIR>/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS_DIR, `${name}.png`), fullPage: true });
}
