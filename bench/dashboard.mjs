// On-demand benchmark (not a test): time-to-interactive of the dashboard's
// instances page with SERVERS (default 1000) fake servers in the project.
// Run by bench/dashboard.sh inside a private network namespace.

import { Cloud, launchBrowser, newPage, login, DASHBOARD, PASSWORD } from '../tests/dashboard/harness.mjs';

const SERVERS = Number(process.env.SERVERS || 1000);
const RUNS = Number(process.env.RUNS || 5);
const BATCH = 100;

async function call(method, url, token, body) {
  const r = await fetch(url, { method, headers: { 'x-auth-token': token, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json().catch(() => null);
}

async function fill(cloud) {
  const auth = await fetch('http://127.0.0.1:5000/v3/auth/tokens', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: PASSWORD } } },
      scope: { project: { name: 'admin', domain: { id: 'default' } } } } }) });
  const token = auth.headers.get('x-subject-token');
  const project = (await auth.json()).token.project.id;
  const nova = 'http://127.0.0.1:8774/v2.1';
  await call('PUT', `${nova}/os-quota-sets/${project}`, token, { quota_set: { instances: -1, cores: -1, ram: -1 } });
  const image = await call('POST', 'http://127.0.0.1:9292/v2/images', token, { name: 'bench', disk_format: 'raw', container_format: 'bare' });
  const put = await fetch(`http://127.0.0.1:9292/v2/images/${image.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(1024 * 1024) });
  if (!put.ok) throw new Error(`image upload: ${put.status}`);
  const flavor = (await call('GET', `${nova}/flavors`, token)).flavors.find((f) => f.name === 'm1.tiny').id;
  const t0 = Date.now();
  for (let made = 0; made < SERVERS; made += BATCH) {
    const n = Math.min(BATCH, SERVERS - made);
    await call('POST', `${nova}/servers`, token, { server: { name: `bench-${made}`, imageRef: image.id, flavorRef: flavor, networks: 'none', min_count: n, max_count: n } });
  }
  for (;;) {
    const doc = await call('GET', `${nova}/servers?status=BUILD&limit=1000`, token);
    if (!doc.servers.length) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log(`${SERVERS} fake servers ACTIVE in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const cloud = new Cloud();
cloud.env = { FERROSTACK__NETWORK_AGENT__ENABLED: 'false', FERROSTACK__COMPUTE__FAKE_VCPUS: '100000', FERROSTACK__COMPUTE__FAKE_MEMORY_MB: '100000000', FERROSTACK__COMPUTE__FAKE_LOCAL_GB: '1000000' };
let browser;
try {
  await cloud.start();
  await fill(cloud);
  browser = await launchBrowser();
  const page = await newPage(browser);
  await login(page, 'admin');
  await page.getByRole('heading', { name: /Overview/ }).waitFor();
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto('about:blank');
    const t0 = Date.now();
    // A cold load of the page straight onto the instances panel: the app's
    // files, the session, flavors and images, and the first page of servers.
    await page.goto(DASHBOARD + '/#/instances');
    await page.locator('tbody tr').nth(49).waitFor();
    await page.getByRole('button', { name: 'Next page' }).waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Launch instance' }).click({ trial: true });
    times.push(Date.now() - t0);
  }
  times.sort((a, b) => a - b);
  const total = await page.evaluate(async () => (await (await fetch('/api/compute/servers?limit=1000')).json()).servers.length);
  console.log(`instances page, ${total}+ servers in the project: time to interactive ${times.map((t) => t + ' ms').join(', ')} (median ${times[Math.floor(times.length / 2)]} ms; target < 1000 ms)`);
  if (page.problems.length) console.log('console errors:', page.problems);
} finally {
  if (browser) await browser.close();
  await cloud.stop();
}
