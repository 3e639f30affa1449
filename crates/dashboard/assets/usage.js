// Usage charts from metering: the metric service's (Gnocchi's)
// `/v1/aggregates` through the proxy, drawn as small SVG line charts —
// no chart library: a polyline per series, the range and the latest value
// as text. The figures are the derived meters the telemetry service makes
// from the compute hosts' counters: `cpu_util` (%), `memory.usage` (MB),
// `disk.{read,write}.bytes.rate` and `network.{incoming,outgoing}.bytes.rate`
// (B/s).

import { app, api, h, errorBox } from './core.js';

const METRIC = '/api/metric/v1';
const HOURS = 6;

/** Whether the cloud has metering at all (the `metric` service). */
export function meteringAvailable() {
  return (app.session.services || []).includes('metric');
}

function since(hours) {
  return new Date(Date.now() - hours * 3600_000).toISOString();
}

/** The finest-granularity points of a Gnocchi series: [[ms, value], …]. */
function finest(points) {
  if (!points || !points.length) return [];
  const g = Math.min(...points.map((p) => p[1]));
  return points.filter((p) => p[1] === g).map(([t, , v]) => [Date.parse(t), v]);
}

/** POST /v1/aggregates; null when the search found nothing to read. */
async function aggregates(operations, search, resourceType, { hours = HOURS, groupby } = {}) {
  const q = new URLSearchParams({ start: since(hours), needed_overlap: '0' });
  if (groupby) q.set('groupby', groupby);
  return api('POST', `${METRIC}/aggregates?${q}`, { operations, search, resource_type: resourceType });
}

/** A number as people read it: 1.2 k, 3.4 M, with the unit. */
export function human(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (unit === '%') return `${v.toFixed(1)} %`;
  if (unit === 'MB') return v >= 1024 ? `${(v / 1024).toFixed(2)} GB` : `${Math.round(v)} MB`;
  const steps = [['G', 1e9], ['M', 1e6], ['k', 1e3]];
  for (const [p, n] of steps) if (Math.abs(v) >= n) return `${(v / n).toFixed(1)} ${p}${unit}`;
  return `${v.toFixed(v < 10 ? 1 : 0)} ${unit}`;
}

const W = 320;
const H = 110;
const PAD = 4;
const COLORS = ['#c2410c', '#2563eb'];

/**
 * A line chart: `series` is [{label, points: [[ms, v], …]}]; the latest
 * value of each is written under the title (what a test and a screen
 * reader read), the lines are the picture.
 */
export function chart(title, unit, series, meter) {
  const all = series.flatMap((s) => s.points);
  const fig = h('figure', { class: 'chart', dataset: { meter } });
  const latest = series.map((s, i) => h('span', { class: 'latest', dataset: { series: s.label } },
    h('span', { class: 'swatch', style: `background:${COLORS[i % COLORS.length]}` }),
    `${s.label ? s.label + ' ' : ''}${human(s.points.length ? s.points[s.points.length - 1][1] : null, unit)}`));
  fig.append(h('figcaption', {}, h('strong', {}, title), ' ', latest));
  if (!all.length) {
    fig.append(h('p', { class: 'muted' }, 'No samples in the last hours.'));
    return fig;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const vmax = Math.max(...all.map((p) => p[1]), unit === '%' ? 1 : 1e-9);
  const x = (t) => PAD + ((t - t0) / (t1 - t0)) * (W - 2 * PAD);
  const y = (v) => H - PAD - (Math.max(v, 0) / vmax) * (H - 2 * PAD);
  const svg = h('svg', { svg: true, class: 'spark', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: up to ${human(vmax, unit)}` },
    h('line', { svg: true, x1: PAD, x2: W - PAD, y1: H - PAD, y2: H - PAD, class: 'axis' }),
    series.map((s, i) => (s.points.length === 1
      ? h('circle', { svg: true, cx: x(s.points[0][0]), cy: y(s.points[0][1]), r: 3, fill: COLORS[i % COLORS.length] })
      : h('polyline', { svg: true, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2,
        points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }))));
  fig.append(svg, h('div', { class: 'muted range' },
    `${new Date(t0).toLocaleTimeString()} – ${new Date(t1).toLocaleTimeString()}, peak ${human(vmax, unit)}`));
  return fig;
}

/** The per-second series of a tree answer, by metric name. */
function byName(measures, name) {
  for (const metrics of Object.values(measures || {})) {
    if (metrics && metrics[name]) return finest(metrics[name].mean);
  }
  return [];
}

/** The charts of a set of series: CPU, memory, disk, network. */
function charts(s) {
  return h('div', { class: 'charts' },
    chart('CPU', '%', [{ label: '', points: s.cpu }], 'cpu_util'),
    chart('Memory', 'MB', [{ label: '', points: s.memory }], 'memory.usage'),
    chart('Disk I/O', 'B/s', [{ label: 'read', points: s.diskRead }, { label: 'write', points: s.diskWrite }], 'disk'),
    chart('Network', 'B/s', [{ label: 'in', points: s.netIn }, { label: 'out', points: s.netOut }], 'network'));
}

function empty(text) {
  return h('p', { class: 'muted usage-empty' }, text);
}

/** The usage section of an instance's page. */
export async function instanceUsage(id) {
  const box = h('section', { class: 'usage', 'aria-label': 'Usage' }, h('h2', {}, `Usage (last ${HOURS} hours)`));
  if (!meteringAvailable()) return box.append(empty('Metering is not available in this cloud.')), box;
  try {
    const [own, nics] = await Promise.all([
      aggregates('(metric ((cpu_util mean) (memory.usage mean) (disk.read.bytes.rate mean) (disk.write.bytes.rate mean)))',
        { '=': { original_resource_id: id } }, 'generic'),
      aggregates('(metric ((network.incoming.bytes.rate mean) (network.outgoing.bytes.rate mean)))',
        { '=': { instance_id: id } }, 'instance_network_interface'),
    ]);
    const sum = (name) => sumSeries(Object.values(nics.measures || {}).map((m) => finest((m[name] || {}).mean)));
    const s = {
      cpu: byName(own.measures, 'cpu_util'), memory: byName(own.measures, 'memory.usage'),
      diskRead: byName(own.measures, 'disk.read.bytes.rate'), diskWrite: byName(own.measures, 'disk.write.bytes.rate'),
      netIn: sum('network.incoming.bytes.rate'), netOut: sum('network.outgoing.bytes.rate'),
    };
    if (!Object.values(s).some((p) => p.length)) box.append(empty('No usage samples for this instance yet.'));
    else box.append(charts(s));
  } catch (e) {
    box.append(errorBox(e));
  }
  return box;
}

/** Point-wise sum of series sampled at the same times. */
function sumSeries(list) {
  const at = new Map();
  for (const pts of list) for (const [t, v] of pts) at.set(t, (at.get(t) || 0) + v);
  return [...at.entries()].sort((a, b) => a[0] - b[0]);
}

const PROJECT_OPS = {
  cpu: ['(aggregate mean (metric cpu_util mean))', 'instance'],
  memory: ['(aggregate sum (metric memory.usage mean))', 'instance'],
  diskRead: ['(aggregate sum (metric disk.read.bytes.rate mean))', 'instance'],
  diskWrite: ['(aggregate sum (metric disk.write.bytes.rate mean))', 'instance'],
  netIn: ['(aggregate sum (metric network.incoming.bytes.rate mean))', 'instance_network_interface'],
  netOut: ['(aggregate sum (metric network.outgoing.bytes.rate mean))', 'instance_network_interface'],
};

/** The project's usage over its instances, for the overview. */
export async function projectUsage(projectId) {
  const box = h('section', { class: 'usage', 'aria-label': 'Usage' }, h('h2', {}, `Usage of the project's instances (last ${HOURS} hours)`));
  if (!meteringAvailable()) return box.append(empty('Metering is not available in this cloud.')), box;
  try {
    const keys = Object.keys(PROJECT_OPS);
    const docs = await Promise.all(keys.map((k) => aggregates(PROJECT_OPS[k][0], { '=': { project_id: projectId } }, PROJECT_OPS[k][1])));
    const s = Object.fromEntries(keys.map((k, i) => [k, finest((docs[i].measures || {}).aggregated)]));
    if (!Object.values(s).some((p) => p.length)) box.append(empty('No usage samples for this project yet.'));
    else box.append(charts(s));
  } catch (e) {
    box.append(errorBox(e));
  }
  return box;
}

/** Admin: usage per project over the last day, one row each. */
export async function adminUsage(main) {
  main.append(h('h1', {}, 'Usage per project'));
  if (!meteringAvailable()) return main.append(empty('Metering is not available in this cloud.'));
  const keys = Object.keys(PROJECT_OPS);
  const [projects, ...docs] = await Promise.all([
    api('GET', '/api/identity/v3/projects'),
    ...keys.map((k) => aggregates(PROJECT_OPS[k][0], {}, PROJECT_OPS[k][1], { hours: 24, groupby: 'project_id' })),
  ]);
  const names = new Map((projects.projects || []).map((p) => [p.id, p.name]));
  const rows = new Map();
  keys.forEach((k, i) => {
    for (const g of docs[i] || []) {
      const pid = g.group.project_id || '(none)';
      if (!rows.has(pid)) rows.set(pid, {});
      rows.get(pid)[k] = finest(g.measures.measures.aggregated);
    }
  });
  if (!rows.size) return main.append(empty('No usage samples in the last day.'));
  const last = (pts) => (pts && pts.length ? pts[pts.length - 1][1] : null);
  const avg = (pts) => (pts && pts.length ? pts.reduce((a, p) => a + p[1], 0) / pts.length : null);
  const tableEl = h('table', { class: 'usage-table' },
    h('thead', {}, h('tr', {}, ['Project', 'CPU now', 'CPU (day average)', 'Memory now', 'Disk I/O now', 'Network now', 'CPU over the day']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, [...rows.entries()].map(([pid, r]) => h('tr', { dataset: { id: pid } },
      h('td', {}, names.get(pid) || pid), h('td', {}, human(last(r.cpu), '%')), h('td', {}, human(avg(r.cpu), '%')),
      h('td', {}, human(last(r.memory), 'MB')), h('td', {}, human((last(r.diskRead) || 0) + (last(r.diskWrite) || 0), 'B/s')),
      h('td', {}, human((last(r.netIn) || 0) + (last(r.netOut) || 0), 'B/s')),
      h('td', {}, chart('CPU', '%', [{ label: '', points: r.cpu || [] }], 'cpu_util'))))));
  main.append(h('div', { class: 'table-wrap' }, tableEl));
}
