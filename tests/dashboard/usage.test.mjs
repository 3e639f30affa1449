// Usage charts from metering: a server on the fake driver, polled every
// second by the compute host's pollster, gets Ceilometer's derived meters
// (cpu_util, memory.usage, disk and network rates) from the telemetry
// service; the instance page, the project overview and the admin usage
// view draw them with the real figures, and a project without samples
// says so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { Cloud, launchBrowser, newPage, login, shot, DASHBOARD } from './harness.mjs';

const cloud = new Cloud();
cloud.env = { FERROSTACK__TELEMETRY__POLLING_INTERVAL: '1' };
let browser;
let server;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await cloud.start();
  const disk = join(cloud.tmp, 'tiny.raw');
  writeFileSync(disk, Buffer.alloc(65536));
  const demo = { cloud: 'ferrostack-demo' };
  cloud.openstack(['image', 'create', '--file', disk, '--disk-format', 'raw', '--container-format', 'bare', 'tiny'], demo);
  cloud.openstack(['network', 'create', 'usagenet'], demo);
  cloud.openstack(['subnet', 'create', '--network', 'usagenet', '--subnet-range', '10.31.0.0/24', 'usagesub'], demo);
  server = cloud.openstack(['server', 'create', '--image', 'tiny', '--flavor', 'm1.tiny', '--network', 'usagenet', '--wait', 'busyvm'], demo).id;
  // Two polls make the first rates; wait until the metric store has them.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const m = cloud.openstack(['metric', 'measures', 'show', '--resource-id', server, 'disk.read.bytes.rate'], demo);
      const cpu = cloud.openstack(['metric', 'measures', 'show', '--resource-id', server, 'cpu_util'], demo);
      if (m.length && cpu.length) break;
    } catch (_) { /* no metric yet */ }
    if (Date.now() > deadline) throw new Error('the pollster never gave rates');
    await sleep(1000);
  }
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await cloud.stop();
});

/** The latest-value texts of the chart of `meter`. */
async function latest(page, meter) {
  const fig = page.locator(`figure.chart[data-meter="${meter}"]`).first();
  await fig.waitFor({ timeout: 30_000 });
  return fig.locator('.latest').allTextContents();
}

const NUMBER = /\d+(\.\d+)? /;

test('the instance page charts its CPU, memory, disk and network figures', { timeout: 90_000 }, async () => {
  const page = await newPage(browser);
  await login(page, 'demo');
  await page.goto(`${DASHBOARD}/#/instances/${server}`);
  await page.getByRole('heading', { name: /^Usage/ }).waitFor();
  const [cpu] = await latest(page, 'cpu_util');
  assert.match(cpu, /^\d+(\.\d)? %$/, cpu);
  assert.ok(Number.parseFloat(cpu) > 0, `the busy guest uses CPU: ${cpu}`);
  // m1.tiny has 512 MB; the fake driver reports half of it in use.
  assert.deepEqual(await latest(page, 'memory.usage'), ['256 MB']);
  const disk = await latest(page, 'disk');
  assert.match(disk[0], /^read \d/, disk.join());
  assert.match(disk[0], /B\/s$/, disk.join());
  const net = await latest(page, 'network');
  assert.match(net[0], /^in \d/, net.join());
  assert.ok(net.every((t) => NUMBER.test(t)), net.join());
  assert.ok(await page.locator('figure.chart svg.spark polyline, figure.chart svg.spark circle').count() >= 4);
  await shot(page, '30-instance-usage');
  assert.deepEqual(page.problems, []);
});

test('the overview charts the project; a project without samples says so', { timeout: 60_000 }, async () => {
  const page = await newPage(browser);
  await login(page, 'demo');
  await page.goto(`${DASHBOARD}/#/overview`);
  const [cpu] = await latest(page, 'cpu_util');
  assert.match(cpu, /^\d+(\.\d)? %$/, cpu);
  await shot(page, '31-overview-usage');
  assert.deepEqual(page.problems, []);

  const admin = await newPage(browser);
  await login(admin, 'admin');
  await admin.goto(`${DASHBOARD}/#/overview`);
  await admin.getByText('No usage samples for this project yet.').waitFor();
  assert.deepEqual(admin.problems, []);
});

test('admins see usage per project', { timeout: 60_000 }, async () => {
  const page = await newPage(browser);
  await login(page, 'admin');
  await page.goto(`${DASHBOARD}/#/admin/usage`);
  const row = page.locator('table.usage-table tbody tr', { hasText: 'demo' });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.match(cells[1], /^\d+(\.\d)? %$/, cells.join(' | '));
  assert.equal(cells[3], '256 MB');
  assert.match(cells[5], /B\/s$/);
  await shot(page, '32-admin-usage');

  const demo = await newPage(browser);
  await login(demo, 'demo');
  await demo.goto(`${DASHBOARD}/#/admin/usage`);
  assert.equal(await demo.getByRole('link', { name: 'Usage' }).count(), 0, 'no admin panels for demo');
});
