// The Ferrostack dashboard: a single-page app without a build step. This
// file holds the session (login, project switch, logout) and the router;
// core.js the API client and widgets, panels.js and usage.js the panels.

import { app, api, h, toast, errorBox, clearEtags } from './core.js';
import { PANELS, NAV } from './panels.js';

// ---------------------------------------------------------------- session

function loginView(message) {
  const err = h('div', { role: 'alert', id: 'login-error' }, message ? h('div', { class: 'error-box' }, message) : null);
  const form = h('form', { class: 'stack login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in to Ferrostack'), err,
    h('label', { for: 'l-domain' }, 'Domain'), h('input', { id: 'l-domain', name: 'domain', value: 'Default', autocomplete: 'off' }),
    h('label', { for: 'l-user' }, 'User name'), h('input', { id: 'l-user', name: 'username', autocomplete: 'username' }),
    h('label', { for: 'l-pass' }, 'Password'), h('input', { id: 'l-pass', name: 'password', type: 'password', autocomplete: 'current-password' }),
    h('details', {}, h('summary', {}, 'Use an application credential'),
      h('label', { for: 'l-acid' }, 'Application credential ID'), h('input', { id: 'l-acid', name: 'application_credential_id' }),
      h('label', { for: 'l-acsecret' }, 'Secret'), h('input', { id: 'l-acsecret', name: 'application_credential_secret', type: 'password' })),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Log in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(form).entries());
    try {
      app.session = await api('POST', '/auth/login', body);
      render();
    } catch (e) {
      err.replaceChildren(h('div', { class: 'error-box' }, e.message));
      form.elements.password.select();
    }
  });
  return h('main', { id: 'main' }, form);
}

async function switchProject(id) {
  try {
    app.session = await api('POST', '/auth/project', { project_id: id });
    clearEtags();
    toast(`Now working in project ${app.session.project.name}.`);
    render();
  } catch (e) { toast(e.describe ? e.describe() : e.message, true); }
}

async function logout() {
  try { await api('POST', '/auth/logout'); } catch (_) { /* gone already */ }
  app.session = null;
  clearEtags();
  location.hash = '#/overview';
  render();
}

function header() {
  const s = app.session;
  const picker = h('select', { id: 'project', 'aria-label': 'Project', disabled: s.projects.length < 2, onchange: (e) => switchProject(e.target.value) },
    s.projects.map((p) => h('option', { value: p.id, selected: p.id === s.project.id }, p.name)));
  return h('header', { class: 'top' },
    h('span', { class: 'brand' }, 'Ferrostack'),
    h('label', { for: 'project' }, 'Project'), picker,
    h('span', {}, `${s.user_name} (${s.user_domain_name})`),
    h('button', { type: 'button', onclick: logout }, 'Log out'));
}

function sideNav(current) {
  const groups = NAV.filter((g) => !g.admin || app.session.is_admin);
  return h('nav', { class: 'side', 'aria-label': 'Panels' }, groups.map((g) => [
    h('h2', {}, g.title),
    g.items.map(([route, label]) => h('a', { href: '#/' + route, 'aria-current': current === route ? 'page' : undefined }, label)),
  ]));
}

/** Draw the page for the current hash. */
async function render() {
  app.timers.forEach(clearInterval);
  app.timers = [];
  const root = document.getElementById('app');
  root.removeAttribute('aria-busy');
  if (!app.session) {
    root.replaceChildren(loginView());
    document.getElementById('l-user').focus();
    return;
  }
  const [route, ...args] = (location.hash.replace(/^#\/?/, '') || 'overview').split('/');
  const key = route === 'admin' ? `admin/${args.shift()}` : route;
  const panel = PANELS[key] || PANELS.overview;
  const main = h('main', { id: 'main', tabindex: '-1' });
  root.replaceChildren(header(), h('div', { class: 'shell' }, sideNav(key), main));
  const view = {};
  app.view = view;
  try {
    await panel(main, args.map(decodeURIComponent));
  } catch (e) {
    if (app.view === view) main.append(errorBox(e));
  }
}

app.onSessionEnd = () => render();

async function start() {
  try {
    app.session = await api('GET', '/auth/session');
  } catch (_) {
    app.session = null;
  }
  window.addEventListener('hashchange', render);
  render();
}

start();
