/*
 * The ops page's script: tsconfig.ops-page.json compiles it to dist/ops/page/ops-page.js and
 * src/ops/ops-page-routes.ts inlines that into ops.html. So it stays a classic script: no import
 * or export (tsc would emit module code, which an inline script cannot run), and all of it in one
 * function so that nothing lands on window.
 * The page holds no data of its own: it reads the admin API with the bearer token the operator
 * enters once (kept in sessionStorage, so it dies with the tab). Everything the server sends is
 * written with textContent, never innerHTML, so a queue name or an error text cannot inject markup.
 */
// tsconfig.json type-checks this file with the rest of src/, test/ and scripts/: this adds the DOM
// lib to that check. The node build (tsconfig.build.json) leaves src/ops/page/ out, so server code
// still compiles without it.

(function () {
  // The answers of the admin routes, as this page reads them. They mirror the server's types
  // (named on each) rather than import them: an import would make this a module, which an inline
  // script cannot run. The e2e test (test/e2e/ops-page.test.ts) catches a drift.
  /** GET /v1/admin/stats (src/ops/payment-stats.ts). */
  interface Stats {
    window: number;
    byStatus?: Record<string, number>;
    overdueOver60s: number;
    closedLatenessMs?: { buckets?: { le: number; count: number }[]; over?: number };
  }

  /** GET /v1/admin/backlog (src/ops/backlog.ts). */
  interface Backlog {
    queues?: QueueBacklog[];
    delayLevels?: { queues: number; messages: number; deadLetterPending: number };
    timersDueWithin32s: number;
    timersDueWithin64s: number;
    consoleUrl?: string;
  }

  interface QueueBacklog {
    name: string;
    ready: number;
    unacked: number;
    deadLetterPending: number;
    publishRate: number;
    deliverRate: number;
    consumers: number;
    consoleUrl?: string;
  }

  /** GET /v1/admin/parked (src/parking/parking-service.ts). */
  interface ParkedPage {
    items?: ParkedItem[];
    nextBefore?: number;
  }

  interface ParkedItem {
    id: number;
    purpose: string;
    reason: string;
    paymentId: string | null;
    attempts: number;
    lastError: string | null;
    parkedAt: string;
  }

  /** GET /v1/admin/payments/:id and GET /v1/admin/payments?merchantId=&orderId= (src/admin/admin-payments-routes.ts). */
  interface PaymentAnswer {
    payment: Payment;
    events?: TimelineEvent[];
  }

  /** The payment resource (src/payments/payment-resource.ts). */
  interface Payment {
    id: string;
    merchantId: string;
    orderId: string;
    amount: number;
    currency: string;
    channel: string;
    status: string;
    createdAt: string;
    expiresAt: string;
    paidAt: string | null;
    closedAt: string | null;
    transactionId: string | null;
  }

  /** One entry of a payment's timeline, oldest first (src/payments/payment-timeline.ts). */
  interface TimelineEvent {
    at: string;
    from: string | null;
    to: string;
    cause: string;
    details: Record<string, unknown> | null;
  }

  /** The error body every admin route answers with. */
  interface ErrorBody {
    error?: { message?: string };
  }

  type Attrs = Record<string, string | number>;

  const TOKEN_KEY = 'paymentCompensator.adminToken';
  const REFRESH_MS = 3000;
  const STATUSES = ['PENDING', 'PAID', 'FAILED', 'CLOSED', 'PAID_AFTER_CLOSE'];
  // window.setTimeout: its id is a number here and in tsconfig.json's program, which has Node's types too.
  let timer: number | null = null;
  let generation = 0;
  let searchGeneration = 0;

  /** The page's elements are all in ops.html: a missing one is a bug, so it throws. */
  function $(id: string): HTMLElement {
    const node = document.getElementById(id);
    if (!node) throw new Error('the page has no #' + id);
    return node;
  }
  function inputOf(id: string): HTMLInputElement {
    const node = $(id);
    if (!(node instanceof HTMLInputElement)) throw new Error('#' + id + ' is not an input');
    return node;
  }
  function tokenInput(): HTMLInputElement {
    return inputOf('token');
  }
  function token(): string {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  /** Builds an element; text is always set with textContent. */
  function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, children?: (Node | string)[]): HTMLElementTagNameMap[K] {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (k === 'text') node.textContent = String(v);
        else if (k === 'class') node.className = String(v);
        else node.setAttribute(k, String(v));
      }
    }
    for (const c of children || []) if (c) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return node;
  }
  function clear(node: Node): void {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function num(n: unknown): string {
    return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '-';
  }
  function rate(n: unknown): string {
    return typeof n === 'number' && isFinite(n) ? n.toFixed(1) + '/s' : '-';
  }
  function ms(le: number): string {
    return le >= 1000 ? le / 1000 + ' s' : le + ' ms';
  }
  /** Only http(s) links from the server become hrefs (never javascript: or data:). */
  function safeUrl(u: unknown): string | null {
    return typeof u === 'string' && /^https?:\/\//i.test(u) ? u : null;
  }
  function messageOf(err: unknown): string {
    return err instanceof Error && err.message ? err.message : String(err);
  }

  class ApiError extends Error {
    constructor(
      readonly status: number,
      message: string,
    ) {
      super(message);
    }
  }
  const isUnauthorized = (err: unknown) => err instanceof ApiError && err.status === 401;

  /** The parsed JSON body (null for 204 or no body); a non-2xx answer rejects with its error message. */
  function api<T = unknown>(method: string, path: string): Promise<T | null> {
    return fetch(path, { method, headers: { authorization: 'Bearer ' + token() }, cache: 'no-store' }).then((res) => {
      if (res.status === 204) return null;
      return res.text().then((text) => {
        let body: unknown = null;
        try {
          body = text ? JSON.parse(text) : null;
        } catch {
          body = null;
        }
        if (!res.ok) {
          const message = (body as ErrorBody | null)?.error?.message;
          throw new ApiError(res.status, message ? message : 'HTTP ' + res.status);
        }
        return body as T | null;
      });
    });
  }

  function renderStats(s: Stats): void {
    const body = $('status-rows');
    clear(body);
    const byStatus = s.byStatus || {};
    const names = STATUSES.slice();
    for (const k of Object.keys(byStatus)) if (names.indexOf(k) < 0) names.push(k);
    for (const name of names) {
      body.appendChild(
        el('tr', { 'data-testid': 'status-row-' + name }, [
          el('td', { class: 'status-' + name, text: name }),
          el('td', { class: 'num', 'data-testid': 'status-count-' + name, text: String(byStatus[name] || 0) }),
        ]),
      );
    }
    $('stats-window').textContent = num(s.window);
    const overdue = $('stats-overdue');
    overdue.textContent = num(s.overdueOver60s);
    overdue.className = s.overdueOver60s > 0 ? 'alert' : '';

    const hist = $('lateness');
    clear(hist);
    const lat = s.closedLatenessMs || { buckets: [], over: 0 };
    const buckets = lat.buckets || [];
    const rows = buckets.map((b) => ({ label: '\u2264 ' + ms(b.le), count: b.count, key: String(b.le), over: false }));
    const lastLe = buckets.length ? (buckets[buckets.length - 1]?.le ?? 0) : 0;
    rows.push({ label: '> ' + ms(lastLe), count: lat.over || 0, key: 'over', over: true });
    const max = rows.reduce((m, r) => Math.max(m, r.count), 0);
    for (const r of rows) {
      const bar = el('div', { class: r.over ? 'bar over' : 'bar' });
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
      bar.style.width = (max > 0 ? (100 * r.count) / max : 0) + '%';
      hist.appendChild(
        el('div', { class: 'bar-row', 'data-testid': 'lateness-bucket-' + r.key }, [
          el('span', { text: r.label }),
          el('div', { class: 'bar-track' }, [bar]),
          el('span', { class: 'num', 'data-testid': 'lateness-count-' + r.key, text: num(r.count) }),
        ]),
      );
    }
  }

  function renderBacklog(b: Backlog): void {
    $('backlog-error').textContent = '';
    $('backlog-error').classList.add('hidden');
    $('backlog-body').classList.remove('hidden');
    const rows = $('backlog-rows');
    const delayRows = $('delay-rows');
    clear(rows);
    clear(delayRows);
    // The work queues first; the 20-odd delay levels go in a collapsed list under their sums.
    for (const q of b.queues || []) {
      const href = safeUrl(q.consoleUrl);
      const name = href ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', text: q.name }) : document.createTextNode(q.name);
      const target = /:delay:/.test(q.name) ? delayRows : rows;
      target.appendChild(
        el('tr', { 'data-testid': 'backlog-queue', 'data-queue': q.name }, [
          el('td', { class: 'wrap' }, [name]),
          el('td', { class: 'num', text: num(q.ready) }),
          el('td', { class: 'num', text: num(q.unacked) }),
          el('td', { class: q.deadLetterPending > 0 ? 'num alert' : 'num', text: num(q.deadLetterPending) }),
          el('td', { class: 'num', text: rate(q.publishRate) }),
          el('td', { class: 'num', text: rate(q.deliverRate) }),
          el('td', { class: 'num', text: num(q.consumers) }),
        ]),
      );
    }
    if (!rows.firstChild) rows.appendChild(el('tr', {}, [el('td', { colspan: 7, class: 'empty', text: 'No queues found for this service.' })]));
    $('timers-32').textContent = num(b.timersDueWithin32s);
    $('timers-64').textContent = num(b.timersDueWithin64s);
    $('delay-messages').textContent = b.delayLevels ? num(b.delayLevels.messages) + ' messages in ' + num(b.delayLevels.queues) + ' queues' : '-';
    $('delay-dlx').textContent = b.delayLevels ? num(b.delayLevels.deadLetterPending) : '-';
    const all = $('console-link');
    const consoleHref = safeUrl(b.consoleUrl);
    if (consoleHref) {
      all.setAttribute('href', consoleHref);
      all.classList.remove('hidden');
    } else all.classList.add('hidden');
  }

  function renderBacklogError(message: string): void {
    const box = $('backlog-error');
    box.textContent = 'Backlog unavailable: ' + message;
    box.classList.remove('hidden');
    $('backlog-body').classList.add('hidden');
  }

  function renderParked(p: ParkedPage): void {
    const rows = $('parked-rows');
    clear(rows);
    const items = p.items || [];
    $('parked-count').textContent = String(items.length) + (p.nextBefore ? '+' : '');
    for (const it of items) {
      const replay = el('button', { type: 'button', class: 'primary', 'data-testid': 'replay-' + it.id, text: 'Replay' });
      replay.addEventListener('click', () => act(replay, 'POST', '/v1/admin/parked/' + encodeURIComponent(it.id) + '/replay', 'Replayed item ' + it.id + '.'));
      const del = el('button', { type: 'button', class: 'danger', 'data-testid': 'delete-' + it.id, text: 'Delete' });
      del.addEventListener('click', () => {
        if (!window.confirm('Delete parked item ' + it.id + '? Its message is lost.')) return;
        act(del, 'DELETE', '/v1/admin/parked/' + encodeURIComponent(it.id), 'Deleted item ' + it.id + '.');
      });
      rows.appendChild(
        el('tr', { 'data-testid': 'parked-item-' + it.id, 'data-payment-id': it.paymentId || '' }, [
          el('td', { class: 'num', text: it.id }),
          el('td', { text: it.purpose }),
          el('td', { text: it.reason }),
          el('td', { 'data-testid': 'parked-payment-' + it.id, text: it.paymentId || '-' }),
          el('td', { class: 'num', text: num(it.attempts) }),
          el('td', { class: 'wrap', text: it.lastError || '' }),
          el('td', { class: 'nowrap', text: typeof it.parkedAt === 'string' ? it.parkedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '' }),
          el('td', { class: 'nowrap' }, [replay, ' ', del]),
        ]),
      );
    }
    if (items.length === 0) rows.appendChild(el('tr', {}, [el('td', { colspan: 8, class: 'empty', text: 'Nothing parked.' })]));
  }

  function act(button: HTMLButtonElement, method: string, path: string, done: string): void {
    button.disabled = true;
    // refresh() catches its own failures, so the chain never rejects.
    void api(method, path)
      .then(
        () => {
          $('parked-message').textContent = done;
          $('parked-message').className = 'hint';
        },
        (err: unknown) => {
          $('parked-message').textContent = 'Failed: ' + messageOf(err);
          $('parked-message').className = 'error';
          button.disabled = false;
        },
      )
      .then(refresh);
  }

  function setSearchMessage(text: string, isError: boolean): void {
    const m = $('search-message');
    m.textContent = text;
    m.className = isError ? 'error' : 'hint';
  }

  /** Hides the last answer; a search still in flight will not render. */
  function clearSearch(): void {
    searchGeneration++;
    setSearchMessage('', false);
    $('search-result').classList.add('hidden');
    clear($('timeline-rows'));
  }

  function renderPayment(answer: PaymentAnswer): void {
    const p = answer.payment;
    const events = answer.events || [];
    $('search-payment').textContent = p.id;
    const status = $('search-status');
    status.textContent = p.status;
    status.className = 'status-' + p.status;
    $('search-payment-merchant').textContent = p.merchantId;
    $('search-payment-order').textContent = p.orderId;
    $('search-amount').textContent = num(p.amount) + ' ' + p.currency;
    $('search-channel').textContent = p.channel;
    $('search-expires').textContent = typeof p.expiresAt === 'string' ? p.expiresAt.replace('T', ' ') : '-';
    $('search-transaction').textContent = p.transactionId || '-';
    const rows = $('timeline-rows');
    clear(rows);
    for (const e of events) {
      rows.appendChild(
        el('tr', { 'data-testid': 'timeline-row', 'data-cause': e.cause }, [
          el('td', { class: 'nowrap', 'data-testid': 'timeline-at', text: typeof e.at === 'string' ? e.at.replace('T', ' ') : '' }),
          el('td', { class: 'nowrap', 'data-testid': 'timeline-transition', text: (e.from || '\u2014') + ' \u2192 ' + e.to }),
          el('td', { 'data-testid': 'timeline-cause', text: e.cause }),
          // Compact JSON as text: a value in it is never markup.
          el('td', { class: 'json', 'data-testid': 'timeline-details', text: e.details == null ? '' : JSON.stringify(e.details) }),
        ]),
      );
    }
    if (events.length === 0) rows.appendChild(el('tr', {}, [el('td', { colspan: 4, class: 'empty', text: 'No events recorded.' })]));
    $('search-result').classList.remove('hidden');
  }

  /** One search: only the newest renders; a refused token is handled as the refresh does. */
  function search(label: string, path: string): void {
    const mine = ++searchGeneration;
    setSearchMessage(label + ': searching\u2026', false);
    void api<PaymentAnswer>('GET', path)
      .then(
        (answer) => {
          if (mine !== searchGeneration) return;
          renderPayment(answer as PaymentAnswer);
          const count = (answer as PaymentAnswer).events?.length ?? 0;
          setSearchMessage(label + ': ' + count + (count === 1 ? ' event' : ' events') + ', oldest first.', false);
        },
        (err: unknown) => {
          if (mine !== searchGeneration) return;
          $('search-result').classList.add('hidden');
          if (isUnauthorized(err)) {
            sessionStorage.removeItem(TOKEN_KEY);
            askForToken('The admin token was refused. Enter it again.');
            return;
          }
          setSearchMessage(label + ': ' + messageOf(err) + (err instanceof ApiError ? ' (HTTP ' + err.status + ')' : ''), true);
        },
      )
      .catch((err: unknown) => {
        if (mine === searchGeneration) setSearchMessage(label + ': the answer could not be shown: ' + messageOf(err), true);
      });
  }

  function askForToken(message?: string): void {
    if (timer) {
      window.clearTimeout(timer);
      timer = null;
    }
    // A refresh or a search in flight must not render once the token is gone.
    generation++;
    clearSearch();
    $('dashboard').classList.add('hidden');
    $('token-form').classList.remove('hidden');
    $('forget-token').classList.add('hidden');
    $('refresh-now').classList.add('hidden');
    setStatus(message || 'Enter the admin token to load the dashboard.', !!message);
    tokenInput().focus();
  }

  function setStatus(text: string, isError: boolean): void {
    const s = $('refresh-status');
    s.textContent = text;
    s.className = isError ? 'error' : '';
  }

  /** One refresh: the three panels load independently, so one failing keeps the others current. */
  function refresh(): Promise<void> {
    if (timer) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (!token()) {
      askForToken();
      return Promise.resolve();
    }
    // A newer refresh (button, replay, delete) supersedes one in flight: only the newest renders
    // and schedules the next, so there is never more than one refresh loop.
    const mine = ++generation;
    // The renderers take the body as its route answers it: a null (no body) throws in them like
    // any other rendering bug, and the catch below reports it.
    function latest<T>(render: (value: T) => void): (value: T | null) => void {
      return (value) => {
        if (mine === generation) render(value as T);
      };
    }
    const failures: string[] = [];
    let unauthorized = false;
    const fail = (panel: string) => (err: unknown) => {
      if (isUnauthorized(err)) unauthorized = true;
      failures.push(panel + ': ' + messageOf(err));
      return err;
    };
    return Promise.all([
      api<Stats>('GET', '/v1/admin/stats').then(latest(renderStats), fail('stats')),
      api<Backlog>('GET', '/v1/admin/backlog').then(latest(renderBacklog), (err: unknown) => {
        if (isUnauthorized(err)) unauthorized = true;
        latest(renderBacklogError)(messageOf(err));
      }),
      api<ParkedPage>('GET', '/v1/admin/parked?limit=50').then(latest(renderParked), fail('parked')),
    ])
      .then(() => {
        if (mine !== generation) return;
        if (unauthorized) {
          sessionStorage.removeItem(TOKEN_KEY);
          askForToken('The admin token was refused. Enter it again.');
          return;
        }
        const updated = 'Updated ' + new Date().toLocaleTimeString();
        setStatus(failures.length ? updated + ' with errors: ' + failures.join('; ') : updated, failures.length > 0);
        $('dashboard').setAttribute('data-refreshed-at', String(Date.now()));
        timer = window.setTimeout(refresh, REFRESH_MS);
      })
      .catch((err: unknown) => {
        // A rendering bug must not stop the loop: say so and try again on the next tick.
        if (mine !== generation) return;
        setStatus('Refresh failed: ' + messageOf(err), true);
        timer = window.setTimeout(refresh, REFRESH_MS);
      });
  }

  function showDashboard(): void {
    $('token-form').classList.add('hidden');
    $('forget-token').classList.remove('hidden');
    $('refresh-now').classList.remove('hidden');
    $('dashboard').classList.remove('hidden');
    setStatus('Loading\u2026', false);
    void refresh();
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = tokenInput().value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    tokenInput().value = '';
    showDashboard();
  });
  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
  });
  $('refresh-now').addEventListener('click', () => void refresh());
  // What the operator types goes to the server as typed (encoded): the server validates it.
  $('search-id-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = inputOf('search-id').value.trim();
    if (!id) {
      clearSearch();
      setSearchMessage('Enter a payment id.', true);
      return;
    }
    search('Payment ' + id, '/v1/admin/payments/' + encodeURIComponent(id));
  });
  $('search-order-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const merchantId = inputOf('search-merchant').value.trim();
    const orderId = inputOf('search-order').value.trim();
    if (!merchantId || !orderId) {
      clearSearch();
      setSearchMessage('Enter both a merchant id and an order id.', true);
      return;
    }
    search('Merchant ' + merchantId + ', order ' + orderId, '/v1/admin/payments?merchantId=' + encodeURIComponent(merchantId) + '&orderId=' + encodeURIComponent(orderId));
  });

  if (token()) showDashboard();
  else askForToken();
})();
