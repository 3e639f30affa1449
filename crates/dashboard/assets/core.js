// The dashboard's core: the API client (through the same-origin proxy)
// and the small widgets every panel uses. It imports nothing: app.js (the
// session and the router), panels.js and usage.js build on it. All text
// reaches the page through textContent (never innerHTML), so nothing an
// API returns can run.

/** `onSessionEnd` is the router's redraw, set by app.js. */
export const app = { session: null, view: null, timers: [], onSessionEnd: null };

/** An API's refusal, in words, with the request id to report. */
export class ApiError extends Error {
  constructor(status, message, requestId) {
    super(message);
    this.status = status;
    this.requestId = requestId;
  }
  describe() {
    const lead = this.status === 403 ? 'Not authorized: '
      : this.status === 404 ? 'Not found: '
      : this.status === 409 ? 'Conflict: '
      : this.status === 413 ? 'Over quota or too large: '
      : this.status >= 500 ? 'The cloud had a problem: ' : '';
    return lead + this.message + (this.requestId ? ` (request id ${this.requestId})` : '');
  }
}

/** The message of any OpenStack error dialect (Keystone, Nova, Neutron, Glance). */
export function errorMessage(status, text) {
  let doc = null;
  try { doc = JSON.parse(text); } catch (_) { /* Glance answers in plain text */ }
  if (doc && typeof doc === 'object') {
    if (doc.error && doc.error.message) return doc.error.message;
    if (doc.NeutronError) return doc.NeutronError.message || doc.NeutronError.type;
    for (const v of Object.values(doc)) {
      if (v && typeof v === 'object' && v.message) return v.message;
    }
    if (doc.message) return doc.message;
  }
  const plain = (text || '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return plain || `HTTP ${status}`;
}

const etags = new Map();

/** Forget every ETag (a new session or project sees other documents). */
export function clearEtags() {
  etags.clear();
}

/**
 * Call the dashboard's server. `opts.poll` sends the last ETag of this URL
 * and resolves to null when nothing changed (a 304).
 */
export async function api(method, path, body, opts = {}) {
  const headers = { accept: 'application/json', ...(opts.headers || {}) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && app.session) headers['x-csrf-token'] = app.session.csrf_token;
  if (opts.poll && etags.has(path)) headers['if-none-match'] = etags.get(path);
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'The dashboard cannot be reached; check the connection.', null);
  }
  const requestId = resp.headers.get('x-openstack-request-id');
  if (resp.status === 304) return null;
  const text = await resp.text();
  if (!resp.ok) {
    if (resp.status === 401 && path.startsWith('/api/')) {
      app.session = null;
      toast('Your session has ended; please log in again.', true);
      if (app.onSessionEnd) app.onSessionEnd();
    }
    throw new ApiError(resp.status, errorMessage(resp.status, text), requestId);
  }
  const etag = resp.headers.get('etag');
  if (method === 'GET' && etag) etags.set(path, etag);
  if (!text) return {};
  try { return JSON.parse(text); } catch (_) { return { text }; }
}

/**
 * A view's lists, fetched concurrently. The returned loader resolves to
 * every document, or — when `polling` — to null if none changed (ETags),
 * so a poll redraws (and moves the keyboard focus) only on a change.
 */
export function watch(paths) {
  const last = [];
  return async (polling) => {
    const docs = await Promise.all(paths.map((p) => api('GET', p, undefined, { poll: polling })));
    if (polling && docs.every((d) => d === null)) return null;
    return docs.map((d, i) => (d === null ? last[i] : (last[i] = d)));
  };
}

/** GET every page of a list (following `next` links / markers). */
export async function listAll(path, key, limit = 500) {
  const items = [];
  let url = path + (path.includes('?') ? '&' : '?') + `limit=${limit}`;
  for (let guard = 0; guard < 50 && url; guard++) {
    const doc = await api('GET', url);
    const page = doc[key] || [];
    items.push(...page);
    if (page.length < limit) break;
    const last = page[page.length - 1];
    url = path + (path.includes('?') ? '&' : '?') + `limit=${limit}&marker=${encodeURIComponent(last.id || last.name)}`;
  }
  return items;
}

/** Build an element: h('td', {class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'rect', 'line', 'text', 'a', 'title', 'circle', 'polyline'].includes(tag) && attrs.svg;
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'svg' || v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k === 'value' && !svg) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function toast(message, error = false) {
  const t = h('div', { class: 'toast' + (error ? ' error' : '') }, message);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), error ? 9000 : 4000);
}

/** Show an API error in `where` (a panel) in plain words. */
export function errorBox(e) {
  return h('div', { class: 'error-box', role: 'alert' }, e instanceof ApiError ? e.describe() : String(e.message || e));
}

/** Run every `every` ms while the view is shown (and the tab visible). */
export function every(ms, fn) {
  const id = setInterval(() => { if (!document.hidden) fn(); }, ms);
  app.timers.push(id);
}

/** A table; `cols` are [heading, row => cell content]. */
export function table(cols, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map(([t]) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: { id: r.id || r.name || '' } },
      cols.map(([, f]) => h('td', {}, f(r))))))));
}

export function status(s) {
  return h('span', { class: 'status ' + (s || '') }, s || '—');
}

/**
 * A modal form. `fields`: [{name, label, type, options, value, required}];
 * `submit(values, fail)` runs the API calls and calls fail(field, error)
 * to show an error next to a field (or at the top when the field is null).
 */
export function dialog(title, fields, submit, { submitLabel = 'Create', extra = null } = {}) {
  const form = h('form', { class: 'stack', novalidate: true });
  const errors = {};
  const top = h('div', { role: 'alert' });
  form.append(h('h2', {}, title), top);
  for (const f of fields) {
    const id = 'f-' + f.name;
    let input;
    if (f.type === 'select') {
      input = h('select', { id, name: f.name }, (f.options || []).map(([v, t]) => h('option', { value: v }, t)));
      if (f.value !== undefined) input.value = f.value;
    } else if (f.type === 'checks') {
      input = h('div', { class: 'checks', id, role: 'group', 'aria-label': f.label },
        (f.options || []).map(([v, t, on]) => h('label', {}, h('input', { type: 'checkbox', name: f.name, value: v, checked: on }), t)));
    } else if (f.type === 'textarea') {
      input = h('textarea', { id, name: f.name, rows: 4 }, f.value || '');
    } else {
      input = h('input', { id, name: f.name, type: f.type || 'text', value: f.value, placeholder: f.placeholder, min: f.min });
    }
    errors[f.name] = h('div', { class: 'field-error', id: id + '-error', 'aria-live': 'polite' });
    if (f.type !== 'checks') input.setAttribute('aria-describedby', id + '-error');
    form.append(h('label', { for: f.type === 'checks' ? undefined : id }, f.label), input, errors[f.name]);
  }
  if (extra) form.append(extra);
  const ok = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const dlg = h('dialog', { 'aria-label': title }, form);
  form.append(h('div', { class: 'buttons' },
    h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), ok));
  const fail = (field, e) => {
    const text = e instanceof ApiError ? e.describe() : String(e.message || e);
    (field && errors[field] ? errors[field] : top).append(h('div', { class: 'field-error' }, text));
    if (field && form.elements[field] && form.elements[field].focus) form.elements[field].focus();
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    top.replaceChildren();
    Object.values(errors).forEach((el) => el.replaceChildren());
    const values = {};
    for (const f of fields) {
      if (f.type === 'checks') values[f.name] = [...form.querySelectorAll(`input[name="${f.name}"]:checked`)].map((i) => i.value);
      else if (f.type === 'file') values[f.name] = form.elements[f.name].files[0];
      else values[f.name] = form.elements[f.name].value;
    }
    ok.disabled = true;
    try {
      if (await submit(values, fail, dlg) !== false) dlg.close();
    } catch (e) {
      fail(null, e);
    } finally {
      ok.disabled = false;
    }
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

/** Ask before something that cannot be undone. */
export function confirmThen(question, action) {
  const dlg = dialog(question, [], async () => { await action(); }, { submitLabel: 'Yes' });
  return dlg;
}

/** Save `text` as a file the browser downloads. */
export function download(name, text, type = 'text/plain') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
