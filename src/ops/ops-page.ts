/*
 * The ops page served at GET /ops: one HTML document with its style and script inline, kept as
 * strings in a .ts file so it ships in dist/ and in the Docker image (tsc copies no .html).
 * The page holds no data of its own: it reads the admin API with the bearer token the operator
 * enters once (kept in sessionStorage, so it dies with the tab). Everything the server sends is
 * written with textContent, never innerHTML, so a queue name or an error text cannot inject markup.
 * The script avoids template literals so that this file's own template string stays plain.
 */

export const OPS_PAGE_STYLE = `
  :root { --fg: #1d2330; --muted: #5c6577; --line: #d9dee7; --bg: #f5f7fa; --panel: #fff; --accent: #2457c5; --bad: #b42318; --warn: #b54708; --good: #067647; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 24px; padding: 12px 20px; background: var(--panel); border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  form { display: flex; gap: 8px; align-items: center; margin: 0; }
  input[type=password] { width: 260px; padding: 5px 8px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
  button { padding: 4px 10px; border: 1px solid var(--line); border-radius: 4px; background: #fff; font: inherit; cursor: pointer; }
  button:hover { border-color: var(--accent); }
  button:disabled { opacity: .5; cursor: default; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button.danger { color: var(--bad); }
  #refresh-status { color: var(--muted); margin-left: auto; }
  #refresh-status.error, .error { color: var(--bad); }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 16px 20px; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  .hint { color: var(--muted); font-size: 12px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.wrap { max-width: 360px; overflow-wrap: anywhere; }
  .status-PAID { color: var(--good); } .status-PENDING { color: var(--accent); } .status-FAILED, .status-PAID_AFTER_CLOSE { color: var(--bad); } .status-CLOSED { color: var(--muted); }
  .bar-row { display: grid; grid-template-columns: 80px 1fr 60px; gap: 8px; align-items: center; margin: 3px 0; }
  .bar-track { background: #eef1f6; border-radius: 3px; height: 14px; }
  .bar { background: var(--accent); height: 14px; border-radius: 3px; min-width: 1px; }
  .bar.over { background: var(--bad); }
  .facts { display: flex; flex-wrap: wrap; gap: 6px 20px; margin: 8px 0 0; }
  .facts b { font-variant-numeric: tabular-nums; }
  .alert { color: var(--warn); font-weight: 600; }
  .empty { color: var(--muted); padding: 6px 0; }
  .hidden { display: none; }
  .nowrap { white-space: nowrap; }
  details { margin-top: 10px; }
  summary { cursor: pointer; color: var(--muted); }
  summary b { color: var(--fg); font-variant-numeric: tabular-nums; }
  a { color: var(--accent); }
`;

export const OPS_PAGE_SCRIPT = `
(function () {
  'use strict';
  var TOKEN_KEY = 'paymentCompensator.adminToken';
  var REFRESH_MS = 3000;
  var STATUSES = ['PENDING', 'PAID', 'FAILED', 'CLOSED', 'PAID_AFTER_CLOSE'];
  var timer = null;
  var generation = 0;

  function $(id) { return document.getElementById(id); }
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  /** Builds an element; text is always set with textContent. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') node.textContent = String(attrs[k]);
      else if (k === 'class') node.className = attrs[k];
      else node.setAttribute(k, String(attrs[k]));
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function num(n) { return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '-'; }
  function rate(n) { return typeof n === 'number' && isFinite(n) ? n.toFixed(1) + '/s' : '-'; }
  function ms(le) { return le >= 1000 ? (le / 1000) + ' s' : le + ' ms'; }
  /** Only http(s) links from the server become hrefs (never javascript: or data:). */
  function safeUrl(u) { return typeof u === 'string' && /^https?:\\/\\//i.test(u) ? u : null; }

  function ApiError(status, message) { this.status = status; this.message = message; }

  function api(method, path) {
    return fetch(path, { method: method, headers: { authorization: 'Bearer ' + token() }, cache: 'no-store' }).then(function (res) {
      if (res.status === 204) return null;
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!res.ok) {
          var msg = body && body.error && body.error.message ? body.error.message : ('HTTP ' + res.status);
          throw new ApiError(res.status, msg);
        }
        return body;
      });
    });
  }

  function renderStats(s) {
    var body = $('status-rows');
    clear(body);
    var names = STATUSES.slice();
    Object.keys(s.byStatus || {}).forEach(function (k) { if (names.indexOf(k) < 0) names.push(k); });
    names.forEach(function (name) {
      body.appendChild(el('tr', { 'data-testid': 'status-row-' + name }, [
        el('td', { class: 'status-' + name, text: name }),
        el('td', { class: 'num', 'data-testid': 'status-count-' + name, text: String((s.byStatus || {})[name] || 0) }),
      ]));
    });
    $('stats-window').textContent = num(s.window);
    var overdue = $('stats-overdue');
    overdue.textContent = num(s.overdueOver60s);
    overdue.className = s.overdueOver60s > 0 ? 'alert' : '';

    var hist = $('lateness');
    clear(hist);
    var lat = s.closedLatenessMs || { buckets: [], over: 0 };
    var rows = (lat.buckets || []).map(function (b) { return { label: '\\u2264 ' + ms(b.le), count: b.count, key: String(b.le), over: false }; });
    var lastLe = lat.buckets && lat.buckets.length ? lat.buckets[lat.buckets.length - 1].le : 0;
    rows.push({ label: '> ' + ms(lastLe), count: lat.over || 0, key: 'over', over: true });
    var max = rows.reduce(function (m, r) { return Math.max(m, r.count); }, 0);
    rows.forEach(function (r) {
      var bar = el('div', { class: r.over ? 'bar over' : 'bar' });
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
      bar.style.width = (max > 0 ? (100 * r.count / max) : 0) + '%';
      hist.appendChild(el('div', { class: 'bar-row', 'data-testid': 'lateness-bucket-' + r.key }, [
        el('span', { text: r.label }),
        el('div', { class: 'bar-track' }, [bar]),
        el('span', { class: 'num', 'data-testid': 'lateness-count-' + r.key, text: num(r.count) }),
      ]));
    });
  }

  function renderBacklog(b) {
    $('backlog-error').textContent = '';
    $('backlog-error').classList.add('hidden');
    $('backlog-body').classList.remove('hidden');
    var rows = $('backlog-rows');
    var delayRows = $('delay-rows');
    clear(rows);
    clear(delayRows);
    // The work queues first; the 20-odd delay levels go in a collapsed list under their sums.
    (b.queues || []).forEach(function (q) {
      var href = safeUrl(q.consoleUrl);
      var name = href ? el('a', { href: href, target: '_blank', rel: 'noopener noreferrer', text: q.name }) : document.createTextNode(q.name);
      var target = /:delay:/.test(q.name) ? delayRows : rows;
      target.appendChild(el('tr', { 'data-testid': 'backlog-queue', 'data-queue': q.name }, [
        el('td', { class: 'wrap' }, [name]),
        el('td', { class: 'num', text: num(q.ready) }),
        el('td', { class: 'num', text: num(q.unacked) }),
        el('td', { class: q.deadLetterPending > 0 ? 'num alert' : 'num', text: num(q.deadLetterPending) }),
        el('td', { class: 'num', text: rate(q.publishRate) }),
        el('td', { class: 'num', text: rate(q.deliverRate) }),
        el('td', { class: 'num', text: num(q.consumers) }),
      ]));
    });
    if (!rows.firstChild) rows.appendChild(el('tr', {}, [el('td', { colspan: 7, class: 'empty', text: 'No queues found for this service.' })]));
    $('timers-32').textContent = num(b.timersDueWithin32s);
    $('timers-64').textContent = num(b.timersDueWithin64s);
    $('delay-messages').textContent = b.delayLevels ? num(b.delayLevels.messages) + ' messages in ' + num(b.delayLevels.queues) + ' queues' : '-';
    $('delay-dlx').textContent = b.delayLevels ? num(b.delayLevels.deadLetterPending) : '-';
    var all = $('console-link');
    var consoleHref = safeUrl(b.consoleUrl);
    if (consoleHref) { all.setAttribute('href', consoleHref); all.classList.remove('hidden'); } else all.classList.add('hidden');
  }

  function renderBacklogError(message) {
    var box = $('backlog-error');
    box.textContent = 'Backlog unavailable: ' + message;
    box.classList.remove('hidden');
    $('backlog-body').classList.add('hidden');
  }

  function renderParked(p) {
    var rows = $('parked-rows');
    clear(rows);
    var items = p.items || [];
    $('parked-count').textContent = items.length + (p.nextBefore ? '+' : '');
    items.forEach(function (it) {
      var replay = el('button', { type: 'button', class: 'primary', 'data-testid': 'replay-' + it.id, text: 'Replay' });
      replay.addEventListener('click', function () { act(replay, 'POST', '/v1/admin/parked/' + encodeURIComponent(it.id) + '/replay', 'Replayed item ' + it.id + '.'); });
      var del = el('button', { type: 'button', class: 'danger', 'data-testid': 'delete-' + it.id, text: 'Delete' });
      del.addEventListener('click', function () {
        if (!window.confirm('Delete parked item ' + it.id + '? Its message is lost.')) return;
        act(del, 'DELETE', '/v1/admin/parked/' + encodeURIComponent(it.id), 'Deleted item ' + it.id + '.');
      });
      rows.appendChild(el('tr', { 'data-testid': 'parked-item-' + it.id, 'data-payment-id': it.paymentId || '' }, [
        el('td', { class: 'num', text: it.id }),
        el('td', { text: it.purpose }),
        el('td', { text: it.reason }),
        el('td', { 'data-testid': 'parked-payment-' + it.id, text: it.paymentId || '-' }),
        el('td', { class: 'num', text: num(it.attempts) }),
        el('td', { class: 'wrap', text: it.lastError || '' }),
        el('td', { class: 'nowrap', text: typeof it.parkedAt === 'string' ? it.parkedAt.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z') : '' }),
        el('td', { class: 'nowrap' }, [replay, ' ', del]),
      ]));
    });
    if (items.length === 0) rows.appendChild(el('tr', {}, [el('td', { colspan: 8, class: 'empty', text: 'Nothing parked.' })]));
  }

  function act(button, method, path, done) {
    button.disabled = true;
    api(method, path).then(function () {
      $('parked-message').textContent = done;
      $('parked-message').className = 'hint';
    }, function (err) {
      $('parked-message').textContent = 'Failed: ' + err.message;
      $('parked-message').className = 'error';
      button.disabled = false;
    }).then(refresh);
  }

  function askForToken(message) {
    if (timer) { clearTimeout(timer); timer = null; }
    $('dashboard').classList.add('hidden');
    $('token-form').classList.remove('hidden');
    $('forget-token').classList.add('hidden');
    $('refresh-now').classList.add('hidden');
    setStatus(message || 'Enter the admin token to load the dashboard.', !!message);
    $('token').focus();
  }

  function setStatus(text, isError) {
    var s = $('refresh-status');
    s.textContent = text;
    s.className = isError ? 'error' : '';
  }

  /** One refresh: the three panels load independently, so one failing keeps the others current. */
  function refresh() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!token()) { askForToken(); return Promise.resolve(); }
    // A newer refresh (button, replay, delete) supersedes one in flight: only the newest renders
    // and schedules the next, so there is never more than one refresh loop.
    var mine = ++generation;
    function latest(render) { return function (value) { if (mine === generation) render(value); }; }
    var failures = [];
    var unauthorized = false;
    function fail(panel) {
      return function (err) {
        if (err && err.status === 401) unauthorized = true;
        failures.push(panel + ': ' + (err && err.message ? err.message : String(err)));
        return err;
      };
    }
    return Promise.all([
      api('GET', '/v1/admin/stats').then(latest(renderStats), fail('stats')),
      api('GET', '/v1/admin/backlog').then(latest(renderBacklog), function (err) {
        if (err && err.status === 401) unauthorized = true;
        latest(renderBacklogError)(err && err.message ? err.message : String(err));
      }),
      api('GET', '/v1/admin/parked?limit=50').then(latest(renderParked), fail('parked')),
    ]).then(function () {
      if (mine !== generation) return;
      if (unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY);
        askForToken('The admin token was refused. Enter it again.');
        return;
      }
      setStatus(failures.length ? 'Updated ' + new Date().toLocaleTimeString() + ' with errors: ' + failures.join('; ') : 'Updated ' + new Date().toLocaleTimeString(), failures.length > 0);
      $('dashboard').setAttribute('data-refreshed-at', String(Date.now()));
      timer = setTimeout(refresh, REFRESH_MS);
    }).catch(function (err) {
      // A rendering bug must not stop the loop: say so and try again on the next tick.
      if (mine !== generation) return;
      setStatus('Refresh failed: ' + (err && err.message ? err.message : String(err)), true);
      timer = setTimeout(refresh, REFRESH_MS);
    });
  }

  function showDashboard() {
    $('token-form').classList.add('hidden');
    $('forget-token').classList.remove('hidden');
    $('refresh-now').classList.remove('hidden');
    $('dashboard').classList.remove('hidden');
    setStatus('Loading\\u2026', false);
    refresh();
  }

  $('token-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var value = $('token').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token').value = '';
    showDashboard();
  });
  $('forget-token').addEventListener('click', function () { sessionStorage.removeItem(TOKEN_KEY); askForToken(); });
  $('refresh-now').addEventListener('click', function () { refresh(); });

  if (token()) showDashboard(); else askForToken();
})();
`;

const BODY = `
<header>
  <h1>Payment Compensator &middot; ops</h1>
  <form id="token-form" class="hidden" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" data-testid="token-input" autocomplete="off" spellcheck="false">
    <button type="submit" class="primary" data-testid="token-submit">Open</button>
  </form>
  <button type="button" id="refresh-now" class="hidden" data-testid="refresh-now">Refresh now</button>
  <button type="button" id="forget-token" class="hidden" data-testid="forget-token">Forget token</button>
  <span id="refresh-status" data-testid="refresh-status" role="status"></span>
</header>
<main id="dashboard" class="hidden" data-testid="dashboard">
  <section data-testid="stats-panel">
    <h2>Payments by status</h2>
    <table>
      <thead><tr><th>Status</th><th class="num">Count</th></tr></thead>
      <tbody id="status-rows"></tbody>
    </table>
    <div class="facts">
      <span>Window: <b id="stats-window" data-testid="stats-window">-</b> most recent payments</span>
      <span>PENDING overdue by more than 60 s: <b id="stats-overdue" data-testid="stats-overdue">-</b></span>
    </div>
  </section>
  <section data-testid="lateness-panel">
    <h2>Timer lateness of closed payments</h2>
    <p class="hint">Settlement time minus deadline, over the same window. Bars are scaled to the largest bucket.</p>
    <div id="lateness" data-testid="lateness"></div>
  </section>
  <section class="wide" data-testid="backlog-panel">
    <h2>Backlog per queue <a id="console-link" class="hidden hint" target="_blank" rel="noopener noreferrer">management console</a></h2>
    <p id="backlog-error" class="error hidden" data-testid="backlog-error"></p>
    <div id="backlog-body">
      <table>
        <thead><tr><th>Queue</th><th class="num">Ready</th><th class="num">Unacked</th><th class="num">Dead-letter pending</th><th class="num">Publish</th><th class="num">Deliver</th><th class="num">Consumers</th></tr></thead>
        <tbody id="backlog-rows"></tbody>
      </table>
      <div class="facts">
        <span>Timers due within 32 s: <b id="timers-32" data-testid="timers-due-32s">-</b></span>
        <span>within 64 s: <b id="timers-64" data-testid="timers-due-64s">-</b></span>
      </div>
      <details data-testid="delay-details">
        <summary>Delay levels: <b id="delay-messages" data-testid="delay-levels">-</b>, dead-letter pending <b id="delay-dlx" data-testid="delay-dead-letter-pending">-</b></summary>
        <table>
          <thead><tr><th>Queue</th><th class="num">Ready</th><th class="num">Unacked</th><th class="num">Dead-letter pending</th><th class="num">Publish</th><th class="num">Deliver</th><th class="num">Consumers</th></tr></thead>
          <tbody id="delay-rows"></tbody>
        </table>
      </details>
    </div>
  </section>
  <section class="wide" data-testid="parked-panel">
    <h2>Parked items (<span id="parked-count" data-testid="parked-count">0</span>)</h2>
    <p class="hint">Replay publishes the message again at attempt 1, due now; fix the cause first. Delete drops it for good.</p>
    <p id="parked-message" class="hint" data-testid="parked-message" role="status"></p>
    <table>
      <thead><tr><th class="num">Id</th><th>Purpose</th><th>Reason</th><th>Payment</th><th class="num">Attempts</th><th>Last error</th><th>Parked at</th><th></th></tr></thead>
      <tbody id="parked-rows"></tbody>
    </table>
  </section>
</main>
`;

/** The whole document, as served. */
export const OPS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Payment Compensator · ops</title>
<style>${OPS_PAGE_STYLE}</style>
</head>
<body>${BODY}<script>${OPS_PAGE_SCRIPT}</script>
</body>
</html>
`;
