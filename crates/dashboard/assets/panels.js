// The dashboard's panels. Each is `async (main, args)`: it fetches what
// its view needs once, concurrently, draws it, and polls (with ETags) what
// changes by itself — server status, volume status — while it is shown.

import { app, api, listAll, watch, errorMessage, h, table, status, dialog, confirmThen, toast, errorBox, every, download, ApiError } from './core.js';
import { instanceUsage, projectUsage, adminUsage } from './usage.js';

const NOVA = '/api/compute';
const NEUTRON = '/api/network/v2.0';
const GLANCE = '/api/image/v2';
const CINDER = '/api/volumev3';
const KEYSTONE = '/api/identity/v3';
const PAGE = 50;
const POLL_MS = 2000;
const USAGE_MS = 30000;

export const NAV = [
  { title: 'Project', items: [['overview', 'Overview'], ['instances', 'Instances'], ['images', 'Images'], ['volumes', 'Volumes'],
    ['networks', 'Networks'], ['routers', 'Routers'], ['topology', 'Network topology'], ['security-groups', 'Security groups'],
    ['floating-ips', 'Floating IPs'], ['key-pairs', 'Key pairs'], ['api-access', 'API access']] },
  { title: 'Admin', admin: true, items: [['admin/projects', 'Projects'], ['admin/users', 'Users'], ['admin/roles', 'Roles'], ['admin/flavors', 'Flavors'],
    ['admin/hypervisors', 'Hypervisors'], ['admin/services', 'Services'], ['admin/instances', 'All instances'], ['admin/agents', 'Network agents'], ['admin/usage', 'Usage']] },
];

// ------------------------------------------------------------ helpers

/** The form field an API message is about, by the words it uses. */
function fieldOf(message, map) {
  const m = (message || '').toLowerCase();
  for (const [word, field] of map) if (m.includes(word)) return field;
  return null;
}

/** Run `fn` and report its failure as a toast in plain words. */
async function act(label, fn) {
  try {
    await fn();
    toast(label);
  } catch (e) {
    toast(e instanceof ApiError ? e.describe() : e.message, true);
  }
}

function button(label, onclick, cls) {
  return h('button', { type: 'button', class: cls, onclick }, label);
}

function heading(main, title, ...tools) {
  main.append(h('h1', {}, title), h('div', { class: 'toolbar' }, tools));
}

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function addresses(server) {
  return Object.entries(server.addresses || {}).map(([net, list]) =>
    `${net}: ${list.map((a) => a.addr + (a['OS-EXT-IPS:type'] === 'floating' ? ' (floating)' : '')).join(', ')}`).join('; ');
}

const POWER = { 0: 'No state', 1: 'Running', 3: 'Paused', 4: 'Shut down', 6: 'Crashed', 7: 'Suspended' };

/**
 * Server-side paging by `limit` and `marker` (Nova, Neutron, Glance and
 * Cinder all take them): `url(base)` is the current page's URL, `update`
 * draws the pager after a page of `items` arrived.
 */
function pages(reload) {
  const markers = [null];
  let page = 0;
  const el = h('div', { class: 'pager' });
  return {
    el,
    url(base) {
      const m = markers[page];
      return `${base}${base.includes('?') ? '&' : '?'}limit=${PAGE}${m ? `&marker=${encodeURIComponent(m)}` : ''}`;
    },
    update(items) {
      markers[page + 1] = items.length === PAGE ? items[items.length - 1].id : undefined;
      el.replaceChildren(
        button('Previous page', () => { page -= 1; reload(); }), h('span', {}, `Page ${page + 1}`),
        button('Next page', () => { page += 1; reload(); }));
      el.firstChild.disabled = page === 0;
      el.lastChild.disabled = !markers[page + 1];
    },
  };
}

/** A list panel: fetch (a page at a time when `paged`), draw, optionally poll. */
function listPanel({ title, path, key, cols, poll, tools = () => [], all = false, paged = false }) {
  return async (main) => {
    const body = h('div');
    heading(main, title, ...tools(() => load(false)));
    const pager = paged ? pages(() => load(false)) : null;
    main.append(body);
    if (pager) main.append(pager.el);
    const load = async (polling) => {
      const url = pager ? pager.url(path) : path;
      const doc = all ? { [key]: await listAll(path, key) } : await api('GET', url, undefined, { poll: polling });
      if (!doc) return;
      body.replaceChildren(table(cols(() => load(false)), doc[key] || []));
      if (pager) pager.update(doc[key] || []);
    };
    await load(false);
    if (poll) every(POLL_MS, () => load(true).catch(() => {}));
  };
}

// ------------------------------------------------------------ overview

async function overview(main) {
  const pid = app.session.project.id;
  heading(main, `Overview of ${app.session.project.name}`);
  const cards = h('div', { class: 'cards' });
  const usage = h('div');
  main.append(cards, usage);
  const charts = projectUsage(pid).then((u) => usage.replaceChildren(u));
  const [limits, net, vol] = await Promise.allSettled([
    api('GET', `${NOVA}/limits`),
    api('GET', `${NEUTRON}/quotas/${pid}/details`),
    api('GET', `${CINDER}/os-quota-sets/${pid}?usage=true`),
  ]);
  const card = (label, used, limit) => {
    const pct = limit > 0 ? Math.min(100, Math.round((100 * used) / limit)) : 0;
    return h('div', { class: 'card' }, h('h3', {}, label),
      h('div', { class: 'bar', role: 'img', 'aria-label': `${label}: ${used} of ${limit < 0 ? 'unlimited' : limit} used` }, h('span', { style: `width:${pct}%` })),
      h('div', { class: 'muted' }, `${used} of ${limit < 0 ? 'unlimited' : limit} used`));
  };
  if (limits.status === 'fulfilled') {
    const a = limits.value.limits.absolute;
    cards.append(card('Instances', a.totalInstancesUsed, a.maxTotalInstances), card('vCPUs', a.totalCoresUsed, a.maxTotalCores),
      card('RAM (MB)', a.totalRAMUsed, a.maxTotalRAMSize));
  } else main.append(errorBox(limits.reason));
  if (vol.status === 'fulfilled') {
    const q = vol.value.quota_set;
    cards.append(card('Volumes', q.volumes.in_use, q.volumes.limit), card('Volume storage (GB)', q.gigabytes.in_use, q.gigabytes.limit));
  } else main.append(errorBox(vol.reason));
  if (net.status === 'fulfilled') {
    const q = net.value.quota;
    for (const [k, label] of [['floatingip', 'Floating IPs'], ['security_group', 'Security groups'], ['network', 'Networks'], ['router', 'Routers']]) {
      if (q[k]) cards.append(card(label, q[k].used, q[k].limit));
    }
  } else main.append(errorBox(net.reason));
  await charts;
}

// ------------------------------------------------------------ instances

async function launchDialog(done) {
  const [images, flavors, networks, keys, groups] = await Promise.all([
    listAll(`${GLANCE}/images?status=active`, 'images'),
    api('GET', `${NOVA}/flavors/detail`).then((d) => d.flavors),
    api('GET', `${NEUTRON}/networks`).then((d) => d.networks.filter((n) => !n['router:external'])),
    api('GET', `${NOVA}/os-keypairs`).then((d) => d.keypairs.map((k) => k.keypair)),
    api('GET', `${NEUTRON}/security-groups?project_id=${app.session.project.id}`).then((d) => d.security_groups),
  ]);
  flavors.sort((a, b) => a.ram - b.ram);
  dialog('Launch instance', [
    { name: 'name', label: 'Instance name' },
    { name: 'image', label: 'Image', type: 'select', options: images.map((i) => [i.id, i.name || i.id]) },
    { name: 'flavor', label: 'Flavor', type: 'select', options: flavors.map((f) => [f.id, `${f.name} (${f.vcpus} vCPU, ${f.ram} MB RAM, ${f.disk} GB)`]) },
    { name: 'networks', label: 'Networks', type: 'checks', options: networks.map((n, i) => [n.id, n.name || n.id, i === 0]) },
    { name: 'key_name', label: 'Key pair', type: 'select', options: [['', '(none)'], ...keys.map((k) => [k.name, k.name])] },
    { name: 'security_groups', label: 'Security groups', type: 'checks', options: groups.map((g) => [g.name, g.name, g.name === 'default']) },
    { name: 'user_data', label: 'User data (cloud-init)', type: 'textarea' },
  ], async (v, fail) => {
    const server = { name: v.name, imageRef: v.image, flavorRef: v.flavor, networks: v.networks.map((uuid) => ({ uuid })) };
    if (!v.networks.length) server.networks = 'none';
    if (v.key_name) server.key_name = v.key_name;
    if (v.security_groups.length) server.security_groups = v.security_groups.map((name) => ({ name }));
    if (v.user_data) server.user_data = b64(v.user_data);
    try {
      await api('POST', `${NOVA}/servers`, { server });
    } catch (e) {
      fail(fieldOf(e.message, [['name', 'name'], ['image', 'image'], ['flavor', 'flavor'], ['network', 'networks'], ['key', 'key_name'], ['security group', 'security_groups'], ['user_data', 'user_data']]), e);
      return false;
    }
    toast(`Launching ${v.name}.`);
    done();
  }, { submitLabel: 'Launch' });
}

async function instances(main) {
  const body = h('div');
  const pager = h('div', { class: 'pager' });
  heading(main, 'Instances', button('Launch instance', () => launchDialog(() => load(false)), 'primary'));
  main.append(body, pager);
  const [flavors, images] = await Promise.all([
    api('GET', `${NOVA}/flavors/detail`).then((d) => new Map(d.flavors.map((f) => [f.id, f.name]))),
    listAll(`${GLANCE}/images`, 'images').then((l) => new Map(l.map((i) => [i.id, i.name]))),
  ]);
  const markers = [null];
  let page = 0;
  const cols = [
    ['Name', (s) => h('a', { href: `#/instances/${s.id}` }, s.name || s.id)],
    ['Image', (s) => (s.image && images.get(s.image.id)) || (s.image && s.image.id) || '(volume)'],
    ['IP addresses', addresses],
    ['Flavor', (s) => flavors.get(s.flavor.id) || s.flavor.original_name || s.flavor.id],
    ['Key pair', (s) => s.key_name || ''],
    ['Status', (s) => status(s.status)],
    ['Task', (s) => s['OS-EXT-STS:task_state'] || ''],
    ['Power', (s) => POWER[s['OS-EXT-STS:power_state']] || ''],
    ['Actions', (s) => h('div', { class: 'actions' }, serverButtons(s, () => load(false)).slice(0, 3))],
  ];
  const load = async (polling) => {
    const marker = markers[page];
    const path = `${NOVA}/servers/detail?limit=${PAGE}` + (marker ? `&marker=${marker}` : '');
    const doc = await api('GET', path, undefined, { poll: polling });
    if (!doc) return;
    const servers = doc.servers;
    body.replaceChildren(table(cols, servers, 'No instances yet: launch one.'));
    markers[page + 1] = servers.length === PAGE ? servers[servers.length - 1].id : undefined;
    pager.replaceChildren(
      button('Previous page', () => { page -= 1; load(false); }), h('span', {}, `Page ${page + 1}`),
      button('Next page', () => { page += 1; load(false); }));
    pager.firstChild.disabled = page === 0;
    pager.lastChild.disabled = !markers[page + 1];
  };
  await load(false);
  every(POLL_MS, () => load(true).catch(() => {}));
}

function serverAction(s, body, label, done) {
  return act(label, async () => { await api('POST', `${NOVA}/servers/${s.id}/action`, body); done(); });
}

/** Start/stop, reboot, delete: the actions a row offers. */
function serverButtons(s, done) {
  const list = [];
  if (s.status === 'SHUTOFF') list.push(button('Start', () => serverAction(s, { 'os-start': null }, `Starting ${s.name}.`, done)));
  if (s.status === 'ACTIVE') list.push(button('Stop', () => serverAction(s, { 'os-stop': null }, `Stopping ${s.name}.`, done)));
  list.push(button('Reboot', () => serverAction(s, { reboot: { type: 'SOFT' } }, `Rebooting ${s.name}.`, done)));
  list.push(button('Delete', () => confirmThen(`Delete instance ${s.name}?`, async () => {
    await api('DELETE', `${NOVA}/servers/${s.id}`);
    toast(`Deleting ${s.name}.`);
    done();
  }), 'danger'));
  return list;
}

async function serverPorts(id) {
  return (await api('GET', `${NEUTRON}/ports?device_id=${id}`)).ports;
}

async function associateDialog(s, done) {
  const [fips, nets, ports] = await Promise.all([
    api('GET', `${NEUTRON}/floatingips?project_id=${app.session.project.id}`).then((d) => d.floatingips.filter((f) => !f.port_id)),
    api('GET', `${NEUTRON}/networks?router:external=true`).then((d) => d.networks),
    serverPorts(s.id),
  ]);
  dialog(`Associate a floating IP with ${s.name}`, [
    { name: 'ip', label: 'Floating IP', type: 'select', options: [...fips.map((f) => [f.id, f.floating_ip_address]), ...nets.map((n) => ['new:' + n.id, `Allocate a new one from ${n.name}`])] },
    { name: 'port', label: 'Port', type: 'select', options: ports.map((p) => [p.id, `${(p.fixed_ips[0] || {}).ip_address || p.id}`]) },
  ], async (v, fail) => {
    let id = v.ip;
    let created = null;
    try {
      if (!id) throw new Error('There is no floating IP and no external network to allocate one from.');
      if (id.startsWith('new:')) {
        created = (await api('POST', `${NEUTRON}/floatingips`, { floatingip: { floating_network_id: id.slice(4) } })).floatingip;
        id = created.id;
      }
      await api('PUT', `${NEUTRON}/floatingips/${id}`, { floatingip: { port_id: v.port } });
    } catch (e) {
      // Nothing half-done is left: a new address that could not be bound goes back.
      if (created) await api('DELETE', `${NEUTRON}/floatingips/${created.id}`).catch(() => {});
      fail(created || !v.ip ? 'port' : 'ip', e);
      return false;
    }
    toast('Floating IP associated.');
    done();
  }, { submitLabel: 'Associate' });
}

async function attachDialog(s, done) {
  const vols = (await api('GET', `${CINDER}/volumes/detail?status=available`)).volumes;
  dialog(`Attach a volume to ${s.name}`, [
    { name: 'volume', label: 'Volume', type: 'select', options: vols.map((v) => [v.id, `${v.name || v.id} (${v.size} GB)`]) },
  ], async (v) => {
    await api('POST', `${NOVA}/servers/${s.id}/os-volume_attachments`, { volumeAttachment: { volumeId: v.volume } });
    toast('Attaching the volume.');
    done();
  }, { submitLabel: 'Attach' });
}

async function resizeDialog(s, done) {
  const flavors = (await api('GET', `${NOVA}/flavors/detail`)).flavors.filter((f) => f.id !== s.flavor.id);
  dialog(`Resize ${s.name}`, [
    { name: 'flavor', label: 'New flavor', type: 'select', options: flavors.map((f) => [f.id, `${f.name} (${f.vcpus} vCPU, ${f.ram} MB RAM, ${f.disk} GB)`]) },
  ], async (v, fail) => {
    try { await api('POST', `${NOVA}/servers/${s.id}/action`, { resize: { flavorRef: v.flavor } }); } catch (e) { fail('flavor', e); return false; }
    toast(`Resizing ${s.name}; confirm once it is VERIFY_RESIZE.`);
    done();
  }, { submitLabel: 'Resize' });
}

async function instanceDetail(main, id) {
  const info = h('div');
  const tools = h('div', { class: 'toolbar' });
  const extra = h('div');
  const usage = h('div');
  const title = h('h1', {}, 'Instance');
  main.append(h('p', {}, h('a', { href: '#/instances' }, '← Instances')), title, tools, info, extra, usage);
  const charts = () => instanceUsage(id).then((u) => usage.replaceChildren(u));
  charts();
  every(USAGE_MS, charts);
  let server = null;
  const draw = (s) => {
    server = s;
    title.textContent = `Instance ${s.name}`;
    info.replaceChildren(h('dl', { class: 'details' },
      [['ID', s.id], ['Status', status(s.status)], ['Task state', s['OS-EXT-STS:task_state'] || 'none'], ['Power state', POWER[s['OS-EXT-STS:power_state']] || ''],
        ['IP addresses', addresses(s)], ['Key pair', s.key_name || ''], ['Volumes', (s['os-extended-volumes:volumes_attached'] || []).map((v) => v.id).join(', ') || 'none'],
        ['Created', s.created], ['Fault', s.fault ? s.fault.message : '']].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  };
  const load = async (polling) => {
    const doc = await api('GET', `${NOVA}/servers/${id}`, undefined, { poll: polling });
    if (doc) draw(doc.server);
  };
  await load(false);
  const again = () => load(false);
  tools.append(...serverButtons(server, again),
    button('Console log', async () => {
      try {
        const out = await api('POST', `${NOVA}/servers/${id}/action`, { 'os-getConsoleOutput': { length: 200 } });
        extra.replaceChildren(h('h2', {}, 'Console log'), h('pre', { class: 'console', id: 'console-log', tabindex: 0 }, out.output || '(empty)'));
      } catch (e) { extra.replaceChildren(errorBox(e)); }
    }),
    button('Console', async () => {
      try {
        const out = await api('POST', `${NOVA}/servers/${id}/remote-consoles`, { remote_console: { protocol: 'vnc', type: 'novnc' } },
          { headers: { 'openstack-api-version': 'compute 2.6', 'x-openstack-nova-api-version': '2.6' } });
        extra.replaceChildren(h('h2', {}, 'Console'), h('iframe', { class: 'vnc', title: 'Graphical console', src: out.remote_console.url }));
      } catch (e) { extra.replaceChildren(errorBox(e)); }
    }),
    button('Associate floating IP', () => associateDialog(server, again).catch((e) => toast(e.message, true))),
    button('Disassociate floating IP', () => act('Floating IP disassociated.', async () => {
      const ports = await serverPorts(id);
      for (const p of ports) {
        const fips = (await api('GET', `${NEUTRON}/floatingips?port_id=${p.id}`)).floatingips;
        for (const f of fips) await api('PUT', `${NEUTRON}/floatingips/${f.id}`, { floatingip: { port_id: null } });
      }
      again();
    })),
    button('Attach volume', () => attachDialog(server, again).catch((e) => toast(e.message, true))),
    button('Detach volume', () => act('Detaching the volume.', async () => {
      const v = (server['os-extended-volumes:volumes_attached'] || [])[0];
      if (!v) throw new Error('No volume is attached.');
      await api('DELETE', `${NOVA}/servers/${id}/os-volume_attachments/${v.id}`);
      again();
    })),
    button('Resize', () => resizeDialog(server, again).catch((e) => toast(e.message, true))),
    button('Confirm resize', () => serverAction(server, { confirmResize: null }, 'Resize confirmed.', again)),
    button('Snapshot', () => dialog(`Snapshot ${server.name}`, [{ name: 'name', label: 'Snapshot name', value: `${server.name}-snapshot` }], async (v) => {
      await api('POST', `${NOVA}/servers/${id}/action`, { createImage: { name: v.name } });
      toast('Snapshot requested; it appears under Images.');
    })));
  every(POLL_MS, () => load(true).catch(() => {}));
}

// ------------------------------------------------------------ images

function uploadDialog(main, done) {
  const formats = ['qcow2', 'raw', 'iso', 'vmdk', 'vdi', 'vhd', 'ami', 'ari', 'aki'];
  const vis = app.session.is_admin ? ['private', 'shared', 'community', 'public'] : ['private', 'shared', 'community'];
  dialog('Upload image', [
    { name: 'name', label: 'Image name' },
    { name: 'file', label: 'File', type: 'file' },
    { name: 'disk_format', label: 'Disk format', type: 'select', options: formats.map((f) => [f, f]) },
    { name: 'visibility', label: 'Visibility', type: 'select', options: vis.map((f) => [f, f]) },
  ], async (v, fail) => {
    if (!v.file) { fail('file', new Error('Choose a file to upload.')); return false; }
    let image;
    try {
      image = await api('POST', `${GLANCE}/images`, { name: v.name, disk_format: v.disk_format, container_format: 'bare', visibility: v.visibility });
    } catch (e) { fail(fieldOf(e.message, [['visibility', 'visibility'], ['format', 'disk_format']]) || 'name', e); return false; }
    upload(main, image, v.file, done);
  }, { submitLabel: 'Upload' });
}

/** Stream `file` to the image service with a progress bar on the page. */
function upload(main, image, file, done) {
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': `Upload of ${image.name}` });
  const label = h('span', { id: 'upload-percent' }, '0%');
  const box = h('div', { class: 'card', id: 'upload-status' }, h('h3', {}, `Uploading ${image.name || file.name}`), bar, label);
  main.querySelector('.toolbar').after(box);
  const xhr = new XMLHttpRequest();
  xhr.open('PUT', `${GLANCE}/images/${image.id}/file`);
  xhr.setRequestHeader('content-type', 'application/octet-stream');
  xhr.setRequestHeader('x-csrf-token', app.session.csrf_token);
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    const pct = Math.floor((100 * e.loaded) / e.total);
    bar.value = pct;
    label.textContent = `${pct}%`;
  };
  xhr.onload = async () => {
    if (xhr.status >= 200 && xhr.status < 300) {
      bar.value = 100;
      label.textContent = '100% — uploaded';
      toast(`Image ${image.name} uploaded.`);
    } else {
      const id = xhr.getResponseHeader('x-openstack-request-id');
      label.textContent = `Failed: ${errorMessage(xhr.status, xhr.responseText)} (HTTP ${xhr.status}${id ? `, request id ${id}` : ''}); the image was removed.`;
      label.setAttribute('role', 'alert');
      // Nothing half-created: an image record without its data goes too.
      await api('DELETE', `${GLANCE}/images/${image.id}`).catch(() => {});
    }
    done();
  };
  xhr.onerror = async () => {
    label.textContent = 'Failed: the upload broke off.';
    await api('DELETE', `${GLANCE}/images/${image.id}`).catch(() => {});
    done();
  };
  xhr.send(file);
}

async function images(main) {
  const body = h('div');
  const pager = pages(() => load(false));
  const load = async (polling) => {
    const doc = await api('GET', pager.url(`${GLANCE}/images`), undefined, { poll: polling });
    if (!doc) return;
    pager.update(doc.images);
    body.replaceChildren(table([
      ['Name', (i) => i.name || i.id], ['Status', (i) => status(i.status)], ['Visibility', (i) => i.visibility],
      ['Disk format', (i) => i.disk_format || ''], ['Size', (i) => (i.size == null ? '' : `${(i.size / 1048576).toFixed(1)} MB`)],
      ['Actions', (i) => (i.owner === app.session.project.id ? button('Delete', () => confirmThen(`Delete image ${i.name}?`, async () => {
        await api('DELETE', `${GLANCE}/images/${i.id}`); load(false);
      }), 'danger') : '')],
    ], doc.images));
  };
  heading(main, 'Images', button('Upload image', () => uploadDialog(main, () => load(false)), 'primary'));
  main.append(body, pager.el);
  await load(false);
  every(POLL_MS, () => load(true).catch(() => {}));
}

// ------------------------------------------------------------ volumes

const volumeList = listPanel({
  title: 'Volumes', path: `${CINDER}/volumes/detail`, key: 'volumes', poll: true, paged: true,
  tools: (reload) => [button('Create volume', () => dialog('Create volume', [
    { name: 'name', label: 'Volume name' }, { name: 'size', label: 'Size (GB)', type: 'number', value: '1', min: 1 },
  ], async (v, fail) => {
    try { await api('POST', `${CINDER}/volumes`, { volume: { name: v.name, size: Number(v.size) } }); } catch (e) {
      fail(fieldOf(e.message, [['size', 'size'], ['gigabytes', 'size'], ['name', 'name']]), e); return false;
    }
    reload();
  }), 'primary')],
  cols: (reload) => [['Name', (v) => v.name || v.id], ['Size', (v) => `${v.size} GB`], ['Status', (v) => status(v.status)],
    ['Attached to', (v) => (v.attachments || []).map((a) => a.server_id).join(', ')],
    ['Actions', (v) => h('div', { class: 'actions' },
      button('Snapshot', () => dialog(`Snapshot volume ${v.name || v.id}`, [{ name: 'name', label: 'Snapshot name', value: `${v.name || 'volume'}-snap` }], async (x, fail) => {
        try { await api('POST', `${CINDER}/snapshots`, { snapshot: { volume_id: v.id, name: x.name } }); } catch (e) { fail('name', e); return false; }
        toast('Snapshot requested.');
      })),
      button('Delete', () => confirmThen(`Delete volume ${v.name}?`, async () => { await api('DELETE', `${CINDER}/volumes/${v.id}`); reload(); }), 'danger'))]],
});

const snapshotList = listPanel({
  title: 'Volume snapshots', path: `${CINDER}/snapshots/detail`, key: 'snapshots', poll: true, paged: true,
  cols: (reload) => [['Name', (x) => x.name || x.id], ['Volume', (x) => x.volume_id], ['Size', (x) => `${x.size} GB`], ['Status', (x) => status(x.status)],
    ['Actions', (x) => button('Delete', () => confirmThen(`Delete snapshot ${x.name}?`, async () => { await api('DELETE', `${CINDER}/snapshots/${x.id}`); reload(); }), 'danger')]],
});

/** Volumes and their snapshots, one above the other. */
async function volumes(main) {
  const top = h('section');
  const bottom = h('section');
  main.append(top, bottom);
  await Promise.all([volumeList(top), snapshotList(bottom)]);
}

// ------------------------------------------------------------ networks

function networkDialog(done) {
  dialog('Create network', [
    { name: 'name', label: 'Network name' },
    { name: 'subnet_name', label: 'Subnet name' },
    { name: 'cidr', label: 'Subnet address (CIDR)', placeholder: '192.168.10.0/24' },
    { name: 'gateway', label: 'Gateway IP (empty: the first address)' },
  ], async (v, fail) => {
    if (!v.name.trim()) { fail('name', new Error('Enter a name for the network.')); return false; }
    let net;
    try {
      net = (await api('POST', `${NEUTRON}/networks`, { network: { name: v.name } })).network;
    } catch (e) { fail('name', e); return false; }
    if (v.cidr || v.subnet_name) {
      const subnet = { network_id: net.id, name: v.subnet_name, cidr: v.cidr, ip_version: 4 };
      if (v.gateway) subnet.gateway_ip = v.gateway;
      try {
        await api('POST', `${NEUTRON}/subnets`, { subnet });
      } catch (e) {
        // Nothing half-created: the network goes with its failed subnet.
        await api('DELETE', `${NEUTRON}/networks/${net.id}`).catch(() => {});
        fail(fieldOf(e.message, [['gateway', 'gateway'], ['cidr', 'cidr'], ['address', 'cidr'], ['name', 'subnet_name']]) || 'cidr', e);
        return false;
      }
    }
    toast(`Network ${v.name} created.`);
    done();
  });
}

async function networks(main) {
  const body = h('div');
  const pager = pages(() => load(false));
  let last = [];
  const load = async (polling) => {
    const fetched = await Promise.all([api('GET', pager.url(`${NEUTRON}/networks`), undefined, { poll: polling }),
      api('GET', `${NEUTRON}/subnets`, undefined, { poll: polling })]);
    if (polling && fetched.every((d) => d === null)) return;
    const docs = fetched.map((d, i) => (d === null ? last[i] : d));
    last = docs;
    const nets = docs[0].networks;
    pager.update(nets);
    const subnets = new Map(docs[1].subnets.map((s) => [s.id, s]));
    body.replaceChildren(table([
      ['Name', (n) => h('a', { href: `#/networks/${n.id}` }, n.name || n.id)],
      ['Subnets', (n) => n.subnets.map((s) => subnets.get(s)).filter(Boolean).map((s) => `${s.name || s.id} ${s.cidr}`).join(', ')],
      ['Shared', (n) => (n.shared ? 'yes' : 'no')], ['External', (n) => (n['router:external'] ? 'yes' : 'no')],
      ['Status', (n) => status(n.status)],
      ['Actions', (n) => (n.project_id === app.session.project.id ? button('Delete', () => confirmThen(`Delete network ${n.name}?`, async () => {
        await api('DELETE', `${NEUTRON}/networks/${n.id}`); load(false);
      }), 'danger') : '')],
    ], nets));
  };
  heading(main, 'Networks', button('Create network', () => networkDialog(() => load(false)), 'primary'));
  main.append(body, pager.el);
  await load(false);
  every(POLL_MS, () => load(true).catch(() => {}));
}

async function detailPanel(main, back, title, path, key) {
  const doc = await api('GET', path);
  const item = doc[key];
  main.append(h('p', {}, h('a', { href: `#/${back}` }, `← ${back}`)), h('h1', {}, `${title} ${item.name || item.id}`),
    h('dl', { class: 'details' }, Object.entries(item).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))])));
  return item;
}

async function networkDetail(main, id) {
  await detailPanel(main, 'networks', 'Network', `${NEUTRON}/networks/${id}`, 'network');
  const body = h('div');
  const pager = pages(() => load());
  main.append(h('h2', {}, 'Ports'), body, pager.el);
  const load = async () => {
    const ports = (await api('GET', pager.url(`${NEUTRON}/ports?network_id=${id}`))).ports;
    body.replaceChildren(table([['ID', (p) => p.id], ['Fixed IPs', (p) => p.fixed_ips.map((f) => f.ip_address).join(', ')],
      ['Device', (p) => p.device_owner], ['Status', (p) => status(p.status)]], ports));
    pager.update(ports);
  };
  await load();
}

// ------------------------------------------------------------ routers

async function routers(main) {
  const body = h('div');
  let externals = [];
  const lists = watch([`${NEUTRON}/routers`, `${NEUTRON}/networks`]);
  const load = async (polling) => {
    const docs = await lists(polling);
    if (!docs) return;
    const [list, nets] = [docs[0].routers, docs[1].networks];
    externals = nets.filter((n) => n['router:external']);
    const names = new Map(nets.map((n) => [n.id, n.name]));
    body.replaceChildren(table([
      ['Name', (r) => h('a', { href: `#/routers/${r.id}` }, r.name || r.id)], ['Status', (r) => status(r.status)],
      ['External network', (r) => (r.external_gateway_info ? names.get(r.external_gateway_info.network_id) || r.external_gateway_info.network_id : '')],
      ['Actions', (r) => h('div', { class: 'actions' }, button('Add interface', () => interfaceDialog(r, () => load(false))),
        button('Delete', () => confirmThen(`Delete router ${r.name}?`, async () => { await api('DELETE', `${NEUTRON}/routers/${r.id}`); load(false); }), 'danger'))],
    ], list));
  };
  heading(main, 'Routers', button('Create router', () => dialog('Create router', [
    { name: 'name', label: 'Router name' },
    { name: 'external', label: 'External network', type: 'select', options: [['', '(none)'], ...externals.map((n) => [n.id, n.name])] },
  ], async (v, fail) => {
    const router = { name: v.name };
    if (v.external) router.external_gateway_info = { network_id: v.external };
    try { await api('POST', `${NEUTRON}/routers`, { router }); } catch (e) { fail(fieldOf(e.message, [['gateway', 'external'], ['network', 'external']]) || 'name', e); return false; }
    load(false);
  }), 'primary'));
  main.append(body);
  await load(false);
  every(POLL_MS, () => load(true).catch(() => {}));
}

async function interfaceDialog(r, done) {
  const subnets = (await api('GET', `${NEUTRON}/subnets?project_id=${app.session.project.id}`)).subnets;
  dialog(`Add an interface to ${r.name}`, [
    { name: 'subnet', label: 'Subnet', type: 'select', options: subnets.map((s) => [s.id, `${s.name || s.id} (${s.cidr})`]) },
  ], async (v) => {
    await api('PUT', `${NEUTRON}/routers/${r.id}/add_router_interface`, { subnet_id: v.subnet });
    toast('Interface added.');
    done();
  }, { submitLabel: 'Add' });
}

async function routerDetail(main, id) {
  await detailPanel(main, 'routers', 'Router', `${NEUTRON}/routers/${id}`, 'router');
  const ports = (await api('GET', `${NEUTRON}/ports?device_id=${id}`)).ports;
  const reload = () => { main.replaceChildren(); routerDetail(main, id); };
  main.append(h('h2', {}, 'Interfaces'), table([['Fixed IPs', (p) => p.fixed_ips.map((f) => f.ip_address).join(', ')], ['Kind', (p) => p.device_owner],
    ['Actions', (p) => (p.device_owner === 'network:router_interface' ? button('Remove', () => act('Interface removed.', async () => {
      await api('PUT', `${NEUTRON}/routers/${id}/remove_router_interface`, { port_id: p.id }); reload();
    }), 'danger') : '')]], ports));
}

// ------------------------------------------------------------ topology

/** Networks as horizontal buses, routers and instances as boxes wired to them. */
async function topology(main) {
  heading(main, 'Network topology');
  const [nets, routersList, ports, servers] = await Promise.all([
    api('GET', `${NEUTRON}/networks`).then((d) => d.networks),
    api('GET', `${NEUTRON}/routers`).then((d) => d.routers),
    api('GET', `${NEUTRON}/ports`).then((d) => d.ports),
    api('GET', `${NOVA}/servers?limit=200`).then((d) => d.servers),
  ]);
  nets.sort((a, b) => (b['router:external'] ? 1 : 0) - (a['router:external'] ? 1 : 0));
  const netIndex = new Map(nets.map((n, i) => [n.id, i]));
  const devices = [
    ...routersList.map((r) => ({ kind: 'router', id: r.id, name: r.name || r.id, href: `#/routers/${r.id}`,
      nets: [r.external_gateway_info && r.external_gateway_info.network_id] })),
    ...servers.map((s) => ({ kind: 'instance', id: s.id, name: s.name || s.id, href: `#/instances/${s.id}`, nets: [] })),
  ];
  const byId = new Map(devices.map((d) => [d.id, d]));
  for (const p of ports) if (byId.has(p.device_id)) byId.get(p.device_id).nets.push(p.network_id);
  for (const d of devices) d.nets = [...new Set(d.nets.filter((n) => netIndex.has(n)))];
  if (!nets.length) { main.append(h('p', { class: 'muted' }, 'No networks yet.')); return; }
  const W = Math.max(640, 180 + devices.length * 150);
  const rowY = (i) => 110 + i * 130;
  const H = rowY(nets.length - 1) + 60;
  const s = (tag, attrs, ...kids) => h(tag, { svg: true, ...attrs }, ...kids);
  const svg = s('svg', { class: 'topology', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Network topology', id: 'topology' });
  svg.append(s('title', {}, 'Network topology'));
  nets.forEach((n, i) => {
    const ext = n['router:external'];
    svg.append(s('a', { href: `#/networks/${n.id}`, 'aria-label': `network ${n.name}` },
      s('rect', { x: 10, y: rowY(i), width: W - 20, height: 14, rx: 7, fill: ext ? '#0f766e' : '#2563eb', dataset: { kind: 'network' } }),
      s('text', { x: 16, y: rowY(i) + 32, 'data-kind': 'network' }, `${n.name || n.id}${ext ? ' (external)' : ''}`)));
  });
  devices.forEach((d, k) => {
    const x = 170 + k * 150;
    const first = d.nets.length ? Math.min(...d.nets.map((n) => netIndex.get(n))) : 0;
    const y = rowY(first) - 80;
    for (const n of d.nets) svg.append(s('line', { x1: x + 55, y1: y + 40, x2: x + 55, y2: rowY(netIndex.get(n)), stroke: '#6b7280', 'stroke-width': 2 }));
    svg.append(s('a', { href: d.href, 'aria-label': `${d.kind} ${d.name}` },
      s('rect', { x, y, width: 110, height: 40, rx: 6, fill: d.kind === 'router' ? '#fed7aa' : '#e0e7ff', stroke: '#374151' }),
      s('text', { x: x + 8, y: y + 16, 'data-kind': d.kind }, d.kind === 'router' ? 'Router' : 'Instance'),
      s('text', { x: x + 8, y: y + 32 }, d.name.length > 15 ? d.name.slice(0, 14) + '…' : d.name)));
  });
  main.append(h('div', { class: 'table-wrap' }, svg), h('p', { class: 'muted' }, 'Select a network, router or instance to open it.'));
}

// ------------------------------------------------------------ security groups, floating IPs, key pairs

const securityGroups = listPanel({
  title: 'Security groups', path: `${NEUTRON}/security-groups`, key: 'security_groups',
  tools: (reload) => [button('Create security group', () => dialog('Create security group', [
    { name: 'name', label: 'Name' }, { name: 'description', label: 'Description' },
  ], async (v, fail) => {
    try { await api('POST', `${NEUTRON}/security-groups`, { security_group: { name: v.name, description: v.description } }); } catch (e) { fail('name', e); return false; }
    reload();
  }), 'primary')],
  cols: (reload) => [['Name', (g) => g.name], ['Description', (g) => g.description || ''],
    ['Rules', (g) => g.security_group_rules.map((r) => `${r.direction} ${r.ethertype} ${r.protocol || 'any'}${r.port_range_min ? ' ' + r.port_range_min + '-' + r.port_range_max : ''}${r.remote_ip_prefix ? ' from ' + r.remote_ip_prefix : ''}`).join('; ')],
    ['Actions', (g) => h('div', { class: 'actions' }, button('Add rule', () => ruleDialog(g, reload)),
      g.name === 'default' ? '' : button('Delete', () => confirmThen(`Delete security group ${g.name}?`, async () => { await api('DELETE', `${NEUTRON}/security-groups/${g.id}`); reload(); }), 'danger'))]],
});

function ruleDialog(g, done) {
  dialog(`Add a rule to ${g.name}`, [
    { name: 'direction', label: 'Direction', type: 'select', options: [['ingress', 'Ingress'], ['egress', 'Egress']] },
    { name: 'protocol', label: 'Protocol', type: 'select', options: [['tcp', 'TCP'], ['udp', 'UDP'], ['icmp', 'ICMP'], ['', 'Any']] },
    { name: 'port', label: 'Port or range (22, 8000-8080)' },
    { name: 'cidr', label: 'Remote CIDR', value: '0.0.0.0/0' },
  ], async (v, fail) => {
    const rule = { security_group_id: g.id, direction: v.direction, ethertype: 'IPv4' };
    if (v.protocol) rule.protocol = v.protocol;
    if (v.port) { const [a, b] = v.port.split('-'); rule.port_range_min = Number(a); rule.port_range_max = Number(b || a); }
    if (v.cidr) rule.remote_ip_prefix = v.cidr;
    try { await api('POST', `${NEUTRON}/security-group-rules`, { security_group_rule: rule }); } catch (e) {
      fail(fieldOf(e.message, [['port', 'port'], ['prefix', 'cidr'], ['cidr', 'cidr'], ['protocol', 'protocol']]), e); return false;
    }
    done();
  }, { submitLabel: 'Add' });
}

async function floatingIps(main) {
  const body = h('div');
  let externals = [];
  const pager = pages(() => load(false));
  let last = [];
  const load = async (polling) => {
    const fetched = await Promise.all([api('GET', pager.url(`${NEUTRON}/floatingips`), undefined, { poll: polling }),
      api('GET', `${NEUTRON}/networks?router:external=true`, undefined, { poll: polling })]);
    if (polling && fetched.every((d) => d === null)) return;
    const docs = fetched.map((d, i) => (d === null ? last[i] : d));
    last = docs;
    const [fips, nets] = [docs[0].floatingips, docs[1].networks];
    pager.update(fips);
    externals = nets;
    body.replaceChildren(table([['IP address', (f) => f.floating_ip_address], ['Fixed IP', (f) => f.fixed_ip_address || ''], ['Status', (f) => status(f.status)],
      ['Actions', (f) => h('div', { class: 'actions' },
        f.port_id ? button('Disassociate', () => act('Disassociated.', async () => { await api('PUT', `${NEUTRON}/floatingips/${f.id}`, { floatingip: { port_id: null } }); load(false); })) : '',
        button('Release', () => confirmThen(`Release ${f.floating_ip_address}?`, async () => { await api('DELETE', `${NEUTRON}/floatingips/${f.id}`); load(false); }), 'danger'))]], fips));
  };
  heading(main, 'Floating IPs', button('Allocate IP', () => dialog('Allocate a floating IP', [
    { name: 'pool', label: 'Pool', type: 'select', options: externals.map((n) => [n.id, n.name]) },
  ], async (v, fail) => {
    try { await api('POST', `${NEUTRON}/floatingips`, { floatingip: { floating_network_id: v.pool } }); } catch (e) { fail('pool', e); return false; }
    load(false);
  }, { submitLabel: 'Allocate' }), 'primary'));
  main.append(body, pager.el);
  await load(false);
  every(POLL_MS, () => load(true).catch(() => {}));
}

const keyPairs = listPanel({
  title: 'Key pairs', path: `${NOVA}/os-keypairs`, key: 'keypairs',
  tools: (reload) => [
    button('Create key pair', () => dialog('Create key pair', [{ name: 'name', label: 'Key pair name' }], async (v, fail) => {
      let kp;
      try { kp = (await api('POST', `${NOVA}/os-keypairs`, { keypair: { name: v.name } })).keypair; } catch (e) { fail('name', e); return false; }
      // Shown once: the cloud keeps only the public half.
      download(`${kp.name}.pem`, kp.private_key, 'application/x-pem-file');
      toast(`Key pair ${kp.name} created; its private key was downloaded.`);
      reload();
    }), 'primary'),
    button('Import public key', () => dialog('Import public key', [{ name: 'name', label: 'Key pair name' }, { name: 'public_key', label: 'Public key', type: 'textarea' }], async (v, fail) => {
      try { await api('POST', `${NOVA}/os-keypairs`, { keypair: { name: v.name, public_key: v.public_key } }); } catch (e) {
        fail(fieldOf(e.message, [['public', 'public_key'], ['key', 'public_key']]) || 'name', e); return false;
      }
      reload();
    }, { submitLabel: 'Import' })),
  ],
  cols: (reload) => [['Name', (k) => k.keypair.name], ['Fingerprint', (k) => k.keypair.fingerprint], ['Type', (k) => k.keypair.type || 'ssh'],
    ['Actions', (k) => button('Delete', () => confirmThen(`Delete key pair ${k.keypair.name}?`, async () => {
      await api('DELETE', `${NOVA}/os-keypairs/${encodeURIComponent(k.keypair.name)}`); reload();
    }), 'danger')]],
});

async function apiAccess(main) {
  heading(main, 'API access',
    h('a', { class: 'button primary', href: '/auth/openrc', download: `${app.session.project.name}-openrc.sh` }, 'Download OpenStack RC file'),
    h('a', { class: 'button', href: '/auth/clouds.yaml', download: 'clouds.yaml' }, 'Download clouds.yaml'));
  main.append(h('p', {}, 'The files name your user and project; the password is asked for when the openrc is sourced, and given with --os-password or OS_PASSWORD with clouds.yaml.'),
    table([['Service type', (s) => s.name], ['Reached through the dashboard at', (s) => `/api/${s.name}/`]], app.session.services.map((name) => ({ name }))));
}

// ------------------------------------------------------------ admin

const adminPanels = {
  'admin/projects': listPanel({ title: 'Projects', path: `${KEYSTONE}/projects`, key: 'projects',
    tools: (reload) => [button('Create project', () => dialog('Create project', [{ name: 'name', label: 'Name' }, { name: 'description', label: 'Description' }], async (v, fail) => {
      try { await api('POST', `${KEYSTONE}/projects`, { project: { name: v.name, description: v.description, domain_id: 'default' } }); } catch (e) { fail('name', e); return false; }
      reload();
    }), 'primary')],
    cols: () => [['Name', (p) => p.name], ['ID', (p) => p.id], ['Domain', (p) => p.domain_id], ['Enabled', (p) => (p.enabled ? 'yes' : 'no')], ['Description', (p) => p.description || '']] }),
  'admin/users': listPanel({ title: 'Users', path: `${KEYSTONE}/users`, key: 'users',
    cols: () => [['Name', (u) => u.name], ['ID', (u) => u.id], ['Domain', (u) => u.domain_id], ['Enabled', (u) => (u.enabled ? 'yes' : 'no')], ['Email', (u) => u.email || '']] }),
  'admin/roles': listPanel({ title: 'Roles', path: `${KEYSTONE}/roles`, key: 'roles',
    cols: () => [['Name', (r) => r.name], ['ID', (r) => r.id], ['Domain', (r) => r.domain_id || '(global)']] }),
  'admin/flavors': listPanel({ title: 'Flavors', path: `${NOVA}/flavors/detail?is_public=None`, key: 'flavors',
    tools: (reload) => [button('Create flavor', () => dialog('Create flavor', [
      { name: 'name', label: 'Name' }, { name: 'vcpus', label: 'vCPUs', type: 'number', value: '1' },
      { name: 'ram', label: 'RAM (MB)', type: 'number', value: '512' }, { name: 'disk', label: 'Disk (GB)', type: 'number', value: '1' },
    ], async (v, fail) => {
      try { await api('POST', `${NOVA}/flavors`, { flavor: { name: v.name, vcpus: Number(v.vcpus), ram: Number(v.ram), disk: Number(v.disk) } }); } catch (e) {
        fail(fieldOf(e.message, [['vcpu', 'vcpus'], ['ram', 'ram'], ['disk', 'disk'], ['name', 'name']]), e); return false;
      }
      reload();
    }), 'primary')],
    cols: (reload) => [['Name', (f) => f.name], ['vCPUs', (f) => f.vcpus], ['RAM (MB)', (f) => f.ram], ['Disk (GB)', (f) => f.disk], ['Public', (f) => (f['os-flavor-access:is_public'] ? 'yes' : 'no')],
      ['Actions', (f) => button('Delete', () => confirmThen(`Delete flavor ${f.name}?`, async () => { await api('DELETE', `${NOVA}/flavors/${f.id}`); reload(); }), 'danger')]] }),
  'admin/hypervisors': listPanel({ title: 'Hypervisors', path: `${NOVA}/os-hypervisors/detail`, key: 'hypervisors', poll: true,
    cols: () => [['Host', (x) => x.hypervisor_hostname], ['Type', (x) => x.hypervisor_type], ['State', (x) => status(x.state)], ['Status', (x) => x.status],
      ['vCPUs used', (x) => `${x.vcpus_used} of ${x.vcpus}`], ['RAM used (MB)', (x) => `${x.memory_mb_used} of ${x.memory_mb}`], ['Instances', (x) => x.running_vms]] }),
  'admin/services': listPanel({ title: 'Compute services', path: `${NOVA}/os-services`, key: 'services', poll: true,
    cols: () => [['Binary', (x) => x.binary], ['Host', (x) => x.host], ['Zone', (x) => x.zone], ['Status', (x) => x.status], ['State', (x) => status(x.state)], ['Updated', (x) => x.updated_at]] }),
  'admin/instances': listPanel({ title: 'All instances', path: `${NOVA}/servers/detail?all_tenants=1&limit=${PAGE}`, key: 'servers', poll: true,
    cols: () => [['Name', (s) => h('a', { href: `#/instances/${s.id}` }, s.name)], ['Project', (s) => s.tenant_id], ['Host', (s) => s['OS-EXT-SRV-ATTR:host'] || ''],
      ['IP addresses', addresses], ['Status', (s) => status(s.status)], ['Task', (s) => s['OS-EXT-STS:task_state'] || '']] }),
  'admin/usage': adminUsage,
  'admin/agents': listPanel({ title: 'Network agents', path: `${NEUTRON}/agents`, key: 'agents', poll: true,
    cols: () => [['Type', (a) => a.agent_type], ['Host', (a) => a.host], ['Alive', (a) => status(a.alive ? 'UP' : 'DOWN')], ['Admin state', (a) => (a.admin_state_up ? 'up' : 'down')], ['Binary', (a) => a.binary]] }),
};

export const PANELS = {
  overview,
  instances: (main, [id]) => (id ? instanceDetail(main, id) : instances(main)),
  images, volumes,
  networks: (main, [id]) => (id ? networkDetail(main, id) : networks(main)),
  routers: (main, [id]) => (id ? routerDetail(main, id) : routers(main)),
  topology,
  'security-groups': securityGroups,
  'floating-ips': floatingIps,
  'key-pairs': keyPairs,
  'api-access': apiAccess,
  ...adminPanels,
};
