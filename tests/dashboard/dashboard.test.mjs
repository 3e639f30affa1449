// The dashboard in a real browser against a real all-in-one: the issue's
// "must show" list, one test per step, in the order a user would go.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cloud, launchBrowser, newPage, login, shot, DASHBOARD, PASSWORD } from './harness.mjs';

const cloud = new Cloud();
let browser;
let demo;
const pages = [];
const T = { timeout: 60_000 };

before(async () => {
  await cloud.start();
  // The operator's part, as in the seed: an external network to route to.
  cloud.openstack(['network', 'create', '--external', '--share', 'public']);
  cloud.openstack(['subnet', 'create', '--network', 'public', '--no-dhcp', '--subnet-range', '172.24.4.0/24', 'public-subnet']);
  browser = await launchBrowser();
  demo = await newPage(browser);
  pages.push(demo);
});

after(async () => {
  if (browser) await browser.close();
  await cloud.stop();
});

test('a wrong password gives a clear message', T, async () => {
  const page = await newPage(browser);
  pages.push(page);
  await login(page, 'demo', 'not-the-password');
  await page.getByRole('alert').filter({ hasText: 'user name or password is wrong' }).waitFor();
  await shot(page, '01-wrong-password');
});

test('admin logs in with the keyboard and sees the admin panels', T, async () => {
  const page = await newPage(browser);
  pages.push(page);
  await page.goto(DASHBOARD + '/');
  // The user name field has the focus; Tab and Enter do the rest.
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'l-user');
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('link', { name: 'Hypervisors' }).click();
  await page.getByRole('cell', { name: 'fake' }).first().waitFor();
  await page.getByRole('link', { name: 'All instances' }).waitFor();
  await shot(page, '02-admin-hypervisors');
  await page.getByRole('link', { name: 'Roles' }).click();
  await page.getByRole('cell', { name: 'member', exact: true }).waitFor();
  // The project switcher rescopes the session: demo's overview, still admin.
  await page.getByLabel('Project').selectOption({ label: 'demo' });
  await page.getByText('Now working in project demo.').waitFor();
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Overview of demo' }).waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
});

test('demo logs in, sees no admin panels and is refused one in plain words', T, async () => {
  await login(demo, 'demo');
  await demo.getByRole('heading', { name: 'Overview of demo' }).waitFor();
  await demo.locator('.card h3', { hasText: 'Instances' }).waitFor();
  assert.equal(await demo.getByRole('link', { name: 'Hypervisors' }).count(), 0);
  await shot(demo, '03-demo-overview');
  await demo.goto(DASHBOARD + '/#/admin/hypervisors');
  const refusal = demo.getByRole('alert').filter({ hasText: 'Not authorized' });
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /request id req-[0-9a-f-]+/);
  await shot(demo, '04-demo-not-authorized');
});

test('a bad CIDR shows the API message next to the field and leaves no network', T, async () => {
  await demo.goto(DASHBOARD + '/#/networks');
  await demo.getByRole('button', { name: 'Create network' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Network name').fill('half-made');
  await dlg.getByLabel('Subnet name').fill('bad');
  await dlg.getByLabel('Subnet address (CIDR)').fill('10.0.0.300/24');
  await dlg.getByRole('button', { name: 'Create' }).click();
  const err = dlg.locator('#f-cidr-error');
  await err.getByText(/cidr|address/i).waitFor();
  await shot(demo, '05-bad-cidr');
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  const nets = cloud.openstack(['network', 'list', '--name', 'half-made'], { cloud: 'ferrostack-demo' });
  assert.equal(nets.length, 0, 'the network of the failed subnet is gone');
});

test('demo creates a network, subnet and router', T, async () => {
  await demo.getByRole('button', { name: 'Create network' }).click();
  let dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Network name').fill('web');
  await dlg.getByLabel('Subnet name').fill('web-subnet');
  await dlg.getByLabel('Subnet address (CIDR)').fill('10.10.0.0/24');
  await dlg.getByRole('button', { name: 'Create' }).click();
  await demo.getByRole('cell', { name: 'web-subnet 10.10.0.0/24' }).waitFor();
  await demo.goto(DASHBOARD + '/#/routers');
  await demo.getByRole('button', { name: 'Create router' }).click();
  dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Router name').fill('gw');
  await dlg.getByLabel('External network').selectOption({ label: 'public' });
  await dlg.getByRole('button', { name: 'Create' }).click();
  const row = demo.getByRole('row', { name: /gw/ });
  await row.getByRole('cell', { name: 'public' }).waitFor();
  await row.getByRole('button', { name: 'Add interface' }).click();
  dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Subnet').selectOption({ label: 'web-subnet (10.10.0.0/24)' });
  await dlg.getByRole('button', { name: 'Add' }).click();
  await demo.getByText('Interface added.').waitFor();
  const ports = cloud.openstack(['port', 'list', '--router', 'gw'], { cloud: 'ferrostack-demo' });
  assert.ok(ports.some((p) => JSON.stringify(p).includes('10.10.0.1')), JSON.stringify(ports));
  await shot(demo, '06-router');
});

test('a network made elsewhere appears and goes without a reload', T, async () => {
  await demo.goto(DASHBOARD + '/#/networks');
  await demo.getByRole('link', { name: 'web' }).waitFor();
  await demo.evaluate(() => { window.notReloaded = true; });
  cloud.openstack(['network', 'create', 'from-cli'], { cloud: 'ferrostack-demo' });
  await demo.getByRole('link', { name: 'from-cli' }).waitFor({ timeout: 10_000 });
  await shot(demo, '06b-live-network');
  cloud.openstack(['network', 'delete', 'from-cli'], { cloud: 'ferrostack-demo', json: false });
  await demo.getByRole('link', { name: 'from-cli' }).waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal(await demo.evaluate(() => window.notReloaded), true);
});

test('demo uploads an image with the progress bar reaching 100%', T, async () => {
  const file = join(cloud.tmp, 'tiny.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
  await demo.goto(DASHBOARD + '/#/images');
  await demo.getByRole('button', { name: 'Upload image' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Image name').fill('tiny');
  await dlg.getByLabel('File').setInputFiles(file);
  await dlg.getByRole('button', { name: 'Upload' }).click();
  await demo.locator('#upload-percent', { hasText: '100% — uploaded' }).waitFor();
  assert.equal(await demo.locator('#upload-progress').evaluate((p) => p.value), 100);
  await demo.getByRole('row', { name: /tiny.*active/ }).waitFor();
  await shot(demo, '07-image-uploaded');
});

test('an image whose data is not its declared format is refused in words and removed', T, async () => {
  const file = join(cloud.tmp, 'not-really.qcow2');
  writeFileSync(file, Buffer.alloc(65536, 7));
  await demo.getByRole('button', { name: 'Upload image' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Image name').fill('liar');
  await dlg.getByLabel('File').setInputFiles(file);
  await dlg.getByLabel('Disk format').selectOption('qcow2');
  await dlg.getByRole('button', { name: 'Upload' }).click();
  const refusal = demo.getByRole('alert').filter({ hasText: 'the image was removed' });
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /qcow2/);
  await shot(demo, '07b-image-refused');
  await demo.getByRole('row', { name: /liar/ }).waitFor({ state: 'detached' });
  assert.equal(cloud.openstack(['image', 'list', '--name', 'liar'], { cloud: 'ferrostack-demo' }).length, 0);
});

test('demo creates a key pair and downloads its private key', T, async () => {
  await demo.goto(DASHBOARD + '/#/key-pairs');
  await demo.getByRole('button', { name: 'Create key pair' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Key pair name').fill('mykey');
  const downloading = demo.waitForEvent('download');
  await dlg.getByRole('button', { name: 'Create' }).click();
  const file = await downloading;
  assert.equal(file.suggestedFilename(), 'mykey.pem');
  const saved = join(cloud.tmp, 'mykey.pem');
  await file.saveAs(saved);
  assert.match(readFileSync(saved, 'utf8'), /BEGIN (RSA |OPENSSH )?PRIVATE KEY/);
  await demo.getByRole('cell', { name: 'mykey' }).waitFor();
  await shot(demo, '08-key-pair');
});

test('an empty instance name shows the API message next to the field', T, async () => {
  await demo.goto(DASHBOARD + '/#/instances');
  await demo.getByRole('button', { name: 'Launch instance' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Launch' }).click();
  await dlg.locator('#f-name-error .field-error').waitFor();
  assert.ok((await dlg.locator('#f-name-error').textContent()).length > 5);
  await shot(demo, '09-empty-name');
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(cloud.openstack(['server', 'list'], { cloud: 'ferrostack-demo' }).length, 0);
});

test('demo launches an instance and sees it reach ACTIVE without reloading', T, async () => {
  await demo.evaluate(() => { window.notReloaded = true; });
  await demo.getByRole('button', { name: 'Launch instance' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Instance name').fill('vm1');
  await dlg.getByLabel('Image').selectOption({ label: 'tiny' });
  await dlg.getByLabel('Flavor').selectOption({ index: 0 });
  await dlg.getByRole('checkbox', { name: 'web' }).check();
  await dlg.getByLabel('Key pair').selectOption('mykey');
  await dlg.getByLabel('User data (cloud-init)').fill('#cloud-config\nhostname: vm1\n');
  await dlg.getByRole('button', { name: 'Launch' }).click();
  const row = demo.getByRole('row', { name: /vm1/ });
  await row.waitFor();
  await row.locator('.status', { hasText: 'ACTIVE' }).waitFor({ timeout: 45_000 });
  assert.equal(await demo.evaluate(() => window.notReloaded), true);
  await shot(demo, '10-instance-active');
});

test('console log and floating IP from the instance page', T, async () => {
  await demo.getByRole('link', { name: 'vm1' }).click();
  await demo.getByRole('heading', { name: 'Instance vm1' }).waitFor();
  await demo.getByRole('button', { name: 'Console log' }).click();
  const log = demo.locator('#console-log');
  await log.waitFor();
  assert.ok((await log.textContent()).trim().length > 0);
  await demo.getByRole('button', { name: 'Associate floating IP', exact: true }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Floating IP').selectOption({ label: 'Allocate a new one from public' });
  await dlg.getByRole('button', { name: 'Associate' }).click();
  await demo.getByText('Floating IP associated.').waitFor();
  await demo.getByText(/172\.24\.4\.\d+ \(floating\)/).waitFor({ timeout: 20_000 });
  await shot(demo, '11-instance-console-log-floating-ip');
  // The fake driver has no graphical console: the API's refusal, in words.
  await demo.getByRole('button', { name: 'Console', exact: true }).click();
  const refusal = demo.getByRole('alert').filter({ hasText: 'no graphical console' });
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /request id req-/);
});

test('demo resizes the instance and confirms it, live', T, async () => {
  await demo.getByRole('button', { name: 'Resize', exact: true }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('New flavor').selectOption({ index: 0 });
  await dlg.getByRole('button', { name: 'Resize' }).click();
  await demo.locator('dl.details .status', { hasText: 'VERIFY_RESIZE' }).waitFor({ timeout: 45_000 });
  await shot(demo, '11b-verify-resize');
  await demo.getByRole('button', { name: 'Confirm resize' }).click();
  await demo.locator('dl.details .status', { hasText: 'ACTIVE' }).waitFor({ timeout: 45_000 });
});

test('a volume over the quota shows the API message next to the size and leaves nothing', T, async () => {
  await demo.goto(DASHBOARD + '/#/volumes');
  await demo.getByRole('button', { name: 'Create volume' }).click();
  const dlg = demo.getByRole('dialog');
  await dlg.getByLabel('Volume name').fill('huge');
  await dlg.getByLabel('Size (GB)').fill('100000');
  await dlg.getByRole('button', { name: 'Create' }).click();
  await dlg.locator('#f-size-error').getByText(/quota/i).waitFor();
  await shot(demo, '12-volume-over-quota');
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(cloud.openstack(['volume', 'list'], { cloud: 'ferrostack-demo' }).length, 0);
});

test('the topology picture shows the network, the router and the instance', T, async () => {
  await demo.goto(DASHBOARD + '/#/topology');
  const svg = demo.locator('svg#topology');
  await svg.waitFor();
  for (const name of ['network web', 'network public', 'router gw', 'instance vm1']) {
    await svg.getByRole('link', { name }).waitFor();
  }
  await shot(demo, '13-topology');
  await svg.getByRole('link', { name: 'instance vm1' }).click();
  await demo.getByRole('heading', { name: 'Instance vm1' }).waitFor();
});

test('the downloaded clouds.yaml works with the openstack CLI', T, async () => {
  await demo.goto(DASHBOARD + '/#/api-access');
  const downloading = demo.waitForEvent('download');
  await demo.getByRole('link', { name: 'Download clouds.yaml' }).click();
  const file = await downloading;
  const saved = join(cloud.tmp, 'downloaded-clouds.yaml');
  await file.saveAs(saved);
  const servers = cloud.openstack(['server', 'list'], { file: saved, extra: ['--os-password', PASSWORD] });
  assert.deepEqual(servers.map((s) => s.Name), ['vm1']);
  await shot(demo, '14-api-access');
});

test('the instances page is usable at phone width', T, async () => {
  const page = await newPage(browser, { width: 390, height: 844 });
  pages.push(page);
  await login(page, 'demo');
  await page.goto(DASHBOARD + '/#/instances');
  await page.getByRole('link', { name: 'vm1' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await shot(page, '15-phone');
});

test('every panel opens for admin without an error', T, async () => {
  const page = await newPage(browser);
  pages.push(page);
  await login(page, 'admin');
  await page.getByRole('heading', { name: /Overview/ }).waitFor();
  const routes = await page.locator('nav.side a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
  assert.ok(routes.length >= 18, routes.join(' '));
  for (const route of routes) {
    await page.goto(DASHBOARD + '/' + route);
    await page.locator('main h1').first().waitFor();
    await page.waitForLoadState('networkidle');
    const errors = await page.locator('main .error-box').allTextContents();
    assert.deepEqual(errors, [], `${route}: ${errors.join('; ')}`);
  }
  await shot(page, '16-admin-network-agents');
});

test('no page logged a script or console error', () => {
  const problems = pages.flatMap((p) => p.problems);
  writeFileSync(join(cloud.tmp, 'console.txt'), problems.join('\n'));
  assert.deepEqual(problems, []);
});
