// Debian's Chromium driven by playwright-core, for tests that log in through a proxy in front of the gateway.
// TLS stays verified: Chromium trusts exactly the given certificates (by their SPKI hash), nothing else.
// With CI=true a missing Chromium fails the test; elsewhere the caller may skip.
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { IN_CI } from './redis.ts';
import { describeNeeding } from './requires.ts';

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  const ok = existsSync(CHROMIUM);
  if (!ok && IN_CI) throw new Error(`CI=true and no Chromium at ${CHROMIUM}: .ci/run installs it as root (apt-get install chromium)`);
  return ok;
}

/** A suite that drives Chromium (describeNeeding: fails under CI=true when Chromium is missing). */
export function describeWithChromium(title: string, body: () => void): void {
  describeNeeding(title, existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM}: .ci/run installs it as root (apt-get install chromium)`, body);
}

/** base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what --ignore-certificate-errors-spki-list takes. */
export function spkiHash(pem: string): string {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/**
 * Headless Chromium (with the flags every browser test uses) that trusts exactly `trusted` (PEM leaf
 * certificates) besides the system's roots; `extra` adds switches (e.g. --short-reporting-delay).
 */
export function launchChromium(trusted: readonly string[], extra: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      // No ignoreHTTPSErrors: any other certificate problem still fails.
      `--ignore-certificate-errors-spki-list=${trusted.map(spkiHash).join(',')}`,
      ...extra,
    ],
    timeout: 20_000,
  });
}

/** page.waitForURL, failing with where the browser is instead and what it shows there. */
export async function arrive(page: Page, where: string | RegExp | ((u: URL) => boolean), what: string, timeout = 10_000): Promise<void> {
  try {
    await page.waitForURL(where, { timeout });
  } catch (err) {
    const text = await page
      .locator('body')
      .innerText({ timeout: 1000 })
      .catch(() => '(no body)');
    throw new Error(`expected ${what}; the browser is at ${page.url()} showing:\n${text.slice(0, 800)}\n(${(err as Error).message.split('\n')[0]})`);
  }
}

/** On the demo IdP's login page (examples/demo/idp.js): types the account in and submits. */
export async function loginAtDemoIdp(page: Page, idpIssuer: string, login: string, password: string): Promise<void> {
  await arrive(page, (u) => u.origin === new URL(idpIssuer).origin && u.pathname.startsWith('/interaction/'), 'the demo IdP login page');
  await page.fill('#login', login);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
}
