// The noVNC console inside the dashboard's page, with a real QEMU guest:
// the canvas in the page receives frames from the guest's VNC server.
// The guest needs no operating system — QEMU's firmware draws its screen
// from the first instant — so a one-sector disk whose boot code only loops
// (`jmp $`) is enough, and boots at once even under TCG.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { Cloud, launchBrowser, newPage, login, shot, DASHBOARD } from './harness.mjs';

const cloud = new Cloud();
cloud.env = { FERROSTACK__COMPUTE__DRIVER: 'qemu' };
let browser;

before(async () => {
  await cloud.start();
  const disk = join(cloud.tmp, 'loop.raw');
  const sector = Buffer.alloc(1 << 20);
  sector.set([0xeb, 0xfe], 0); // jmp $
  sector.set([0x55, 0xaa], 510); // the BIOS boot signature
  writeFileSync(disk, sector);
  cloud.openstack(['image', 'create', '--file', disk, '--disk-format', 'raw', '--container-format', 'bare', 'blank'], { cloud: 'ferrostack-demo' });
  const demo = { cloud: 'ferrostack-demo' };
  cloud.openstack(['network', 'create', 'vncnet'], demo);
  cloud.openstack(['subnet', 'create', '--network', 'vncnet', '--subnet-range', '10.20.0.0/24', 'vncsub'], demo);
  cloud.openstack(['server', 'create', '--image', 'blank', '--flavor', 'm1.tiny', '--network', 'vncnet', '--wait', 'vncvm'], demo);
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await cloud.stop();
});

test('the noVNC console in the instance page receives frames', { timeout: 90_000 }, async () => {
  const page = await newPage(browser);
  await login(page, 'demo');
  await page.goto(DASHBOARD + '/#/instances');
  await page.getByRole('link', { name: 'vncvm' }).click();
  await page.getByRole('button', { name: 'Console', exact: true }).click();
  const frame = page.frameLocator('iframe.vnc');
  await frame.locator('canvas').waitFor();
  const vnc = page.frames().find((f) => f.url().includes('vnc_lite'));
  assert.ok(vnc, 'the console frame is there');
  // Some pixel of the canvas is not black: the guest's screen arrived.
  await vnc.waitForFunction(() => {
    const c = document.querySelector('canvas');
    if (!c || !c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) if (d[i] || d[i + 1] || d[i + 2]) return true;
    return false;
  }, null, { timeout: 60_000, polling: 500 });
  await shot(page, '20-novnc-console');
  assert.deepEqual(page.problems, []);
});
