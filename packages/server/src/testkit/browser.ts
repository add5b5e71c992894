/** Test and benchmark support: Debian's headless Chromium through playwright-core. */
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Debian's Chromium (/usr/bin/chromium, never a downloaded browser), headless, with a fresh
 * profile in `profileDir` (a persistent context is how playwright takes a --user-data-dir), and
 * everything that would reach the network on its own switched off.
 */
export async function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
}
