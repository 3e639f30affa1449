// What the dashboard's browser tests share: a real all-in-one on a fresh
// data directory (fake compute driver, started as tests/clients starts
// it), the stock `openstack` CLI against it, and Debian's chromium driven
// by playwright-core, with every console error and page error recorded.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, rmSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DASHBOARD = 'http://127.0.0.1:9999';
export const PASSWORD = 'admin_pass';
export const OUT = process.env.DASHBOARD_TEST_OUT || join(REPO, 'tests', 'dashboard', 'output');
const BIN = process.env.FERROSTACK_BIN || join(REPO, 'target', 'debug', 'ferrostack');
const CLI = process.env.FERROSTACK_OPENSTACK || join(process.env.FERROSTACK_VENV || join(REPO, '.venv'), 'bin', 'openstack');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Cloud {
  async start() {
    mkdirSync(OUT, { recursive: true });
    this.tmp = mkdtempSync(join(tmpdir(), 'ferrostack-dashboard-'));
    this.data = join(this.tmp, 'data');
    mkdirSync(this.data);
    this.log = join(this.tmp, 'server.log');
    const env = { ...process.env, FERROSTACK__IDENTITY__BCRYPT_COST: '4', FERROSTACK__COMPUTE__DRIVER: 'fake', ...(this.env || {}) };
    const fd = openSync(this.log, 'a');
    this.proc = spawn(BIN, ['all-in-one', '--data-dir', this.data], { env, stdio: ['ignore', fd, fd], detached: true });
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`ferrostack exited during start; log in ${this.log}`);
      try {
        const r = await fetch(DASHBOARD + '/');
        if (r.ok && existsSync(join(this.data, 'clouds.yaml'))) return;
      } catch (_) { /* not up yet */ }
      await sleep(250);
    }
    throw new Error(`the dashboard did not answer in 90 s; log in ${this.log}`);
  }

  /** The stock CLI as `cloud` (clouds.yaml the all-in-one wrote, or `file`); its JSON output, or text with `json: false`. */
  openstack(args, { cloud = 'ferrostack', file = join(this.data, 'clouds.yaml'), extra = [], json = true } = {}) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OS_')));
    env.OS_CLIENT_CONFIG_FILE = file;
    env.PYTHONWARNINGS = 'ignore';
    const out = execFileSync(CLI, ['--os-cloud', cloud, ...extra, ...args, ...(json ? ['-f', 'json'] : [])], { env, encoding: 'utf8', timeout: 120_000 });
    return json ? JSON.parse(out) : out;
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      const done = new Promise((r) => this.proc.once('exit', r));
      process.kill(this.proc.pid, 'SIGTERM');
      await Promise.race([done, sleep(20_000)]);
      if (this.proc.exitCode === null) process.kill(this.proc.pid, 'SIGKILL');
    }
    this.killGuests();
    try { execFileSync(BIN, ['netns-cleanup', '--data-dir', this.data], { stdio: 'ignore', timeout: 120_000 }); } catch (_) { /* best effort */ }
    if (process.env.FERROSTACK_KEEP_DATA !== '1') rmSync(this.tmp, { recursive: true, force: true });
  }
}

/**
 * QEMU guests outlive the all-in-one by design (the agent re-attaches
 * after a restart); a test cloud's guests go with it, by their pid files.
 */
Cloud.prototype.killGuests = function killGuests() {
  const dir = join(this.data, 'compute', 'instances');
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const pidFile = join(dir, name, 'qemu.pid');
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    try { if (pid > 0) process.kill(pid, 'SIGKILL'); } catch (_) { /* already gone */ }
  }
};

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** A fresh browser context (its own cookies) with its console watched. */
export async function newPage(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    // A failed API call logs "Failed to load resource" for its 4xx: those are
    // the answers the page shows in words, not script errors.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.problems.push(m.text());
  });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  return page;
}

export async function login(page, user, password = PASSWORD) {
  await page.goto(DASHBOARD + '/');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

export async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}
