// What the browser scripts share: how a browser is started, and how checks are counted.
//
// Every script declares its checks, runs them in order, stops at the first failure (the
// checks after it depend on it), and ends with `browser: N passed, M failed`; it passes
// only if every declared check ran and passed (tests/browser.rs reads that line).

import puppeteer from 'puppeteer-core';

/// The bound on every wait in the scripts.
export const WAIT_MS = 10_000;

/// Starts `name` ('chromium' or 'firefox') headless: Debian's /usr/bin/chromium (or
/// CHROMIUM_PATH) over the DevTools protocol through a pipe, or /usr/bin/firefox-esr (or
/// FIREFOX_PATH) over WebDriver BiDi. `options` adds to what both get: `chromiumArgs`,
/// `userDataDir` (Chromium), `acceptInsecureCerts` and `firefoxPrefs` (Firefox),
/// `viewport`.
export function launchBrowser(name, options = {}) {
  const both = {
    headless: true,
    // Starting a browser is the slowest step: on a busy two-core machine (load 10, other
    // builds running) Chromium has taken more than 30 s.
    timeout: 6 * WAIT_MS,
    defaultViewport: options.viewport ?? { width: 1280, height: 900 },
  };
  if (name === 'firefox') {
    return puppeteer.launch({
      ...both,
      browser: 'firefox',
      executablePath: process.env.FIREFOX_PATH || '/usr/bin/firefox-esr',
      acceptInsecureCerts: Boolean(options.acceptInsecureCerts),
      extraPrefsFirefox: options.firefoxPrefs ?? {},
    });
  }
  return puppeteer.launch({
    ...both,
    browser: 'chrome',
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    // The DevTools protocol over a pipe rather than a port: no port to find, and nothing
    // to wait for in Chromium's output before talking to it.
    pipe: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(options.chromiumArgs ?? [])],
    userDataDir: options.userDataDir,
  });
}

/// The checks of one script, counted against how many it declares.
export class Checks {
  constructor(declared) {
    this.declared = declared;
    this.passed = 0;
    this.failed = 0;
  }

  /// Runs one check; a failure is reported and thrown on, so the rest do not run.
  async check(name, fn) {
    try {
      await fn();
      this.passed++;
      console.log(`ok   ${name}`);
    } catch (e) {
      this.fail(name, e);
      throw e;
    }
  }

  fail(name, e) {
    this.failed++;
    console.log(`FAIL ${name}\n     ${String(e && e.stack ? e.stack : e).split('\n').join('\n     ')}`);
  }

  /// Prints the verdict; true if every declared check ran and passed.
  summary() {
    const notRun = this.declared - this.passed - this.failed;
    console.log(`browser: checks declared: ${this.declared}`);
    if (notRun > 0) console.log(`browser: ${notRun} declared checks did not run`);
    console.log(`browser: ${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 && this.passed === this.declared;
  }

  /// Anything thrown outside a check is a failure too, never a quiet exit.
  failOnStrayErrors() {
    for (const event of ['unhandledRejection', 'uncaughtException']) {
      process.on(event, (e) => {
        this.fail(`no ${event}`, e);
        this.summary();
        process.exit(1);
      });
    }
  }
}
