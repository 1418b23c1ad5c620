import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createCompensatorClient, type CompensatorClient } from '../../clients/typescript/src';
import { paymentBody, registerMerchant, request, sendCallback } from '../helpers/api';
import { startSimulator, type TestSimulator } from '../helpers/simulator';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/**
 * Issue 6, item 4: the ops page at /ops in a real browser. Debian's chromium, driven by
 * playwright-core through `executablePath` (no browser download); scripts/ensure-chromium.sh
 * installs it on a fresh machine. The flags keep Chromium off the network: on this closed
 * network its background connections are refused by the dozen and slow every start.
 */
const root = path.resolve(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT = path.join(root, 'test-artifacts', 'ops-page.png');
const SEARCH_SCREENSHOT = path.join(root, 'test-artifacts', 'ops-page-search.png');
const HOSTILE = '<img src=x onerror=alert(1)>';
const STATUSES = ['PENDING', 'PAID', 'FAILED', 'CLOSED', 'PAID_AFTER_CLOSE'];
const UNKNOWN_ID = 'pay_0000000000000000000000';

interface ParkedItem {
  id: number;
  paymentId: string;
  reason: string;
}

interface TimelineEvent {
  at: string;
  from: string | null;
  to: string;
  cause: string;
  details: Record<string, unknown> | null;
}

describe('ops page in headless Chromium', () => {
  let sim: TestSimulator | undefined;
  let config: ReturnType<typeof testConfig>;
  let t: TestApp | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let profileDir: string | undefined;
  let parkedPaymentId: string;
  let parkedItem: ParkedItem;
  let paidPaymentId: string;
  const browserProblems: string[] = [];
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  // The shop's payments are created and read with the typed client, with its key.
  let shop: Promise<CompensatorClient> | undefined;
  const client = () => (shop ??= registerMerchant(t!.baseUrl).then((m) => createCompensatorClient({ baseUrl: t!.baseUrl, apiKey: m.apiKey.key })));
  const untilStatus = (id: string, status: string, ms = 15000) =>
    waitFor(`${id} to be ${status}`, async () => (await (await client()).getPayment(id)).status === status, ms, 50);

  async function createScripted(timeoutSeconds: number, answers: unknown[]): Promise<string> {
    const body = paymentBody({ timeoutSeconds });
    await sim!.script(body.orderId, answers);
    const { payment, created } = await (await client()).createPayment(body);
    expect(created).toBe(true);
    return payment.id;
  }

  async function createPaid(): Promise<string> {
    const id = await createScripted(900, [{ kind: 'not_paid' }]);
    const res = await sendCallback(t!.baseUrl, id, { result: 'SUCCESS', transactionId: `wx-${id}`, paidAmount: 1999 });
    expect(res.status).toBe(200);
    await untilStatus(id, 'PAID');
    return id;
  }

  async function createClosed(): Promise<string> {
    const id = await createScripted(1, [{ kind: 'not_paid' }]);
    await untilStatus(id, 'CLOSED');
    return id;
  }

  /** A channel that always errors: the payment is parked after the test retry schedule [1, 1, 2] s. */
  async function createParked(): Promise<{ id: string; item: ParkedItem }> {
    const id = await createScripted(1, [{ kind: 'error' }]);
    const item = await waitFor('the payment to be parked', async () => {
      const res = await request(t!.baseUrl, 'GET', '/v1/admin/parked?limit=100&purpose=compensation', undefined, admin);
      return (res.body.items as ParkedItem[]).find((i) => i.paymentId === id);
    }, 30000, 200);
    return { id, item };
  }

  async function countsOnPage(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const status of STATUSES) counts[status] = Number(await page.getByTestId(`status-count-${status}`).textContent());
    return counts;
  }

  /** Asks the page to refresh now and waits until it has rendered the new answers. */
  async function refreshPage(): Promise<void> {
    const before = await page.getByTestId('dashboard').getAttribute('data-refreshed-at');
    await page.getByTestId('refresh-now').click();
    // A selector, not waitForFunction: its polling evals in the page, which the page's CSP refuses.
    const refreshed = before === null ? '[data-refreshed-at]' : `:not([data-refreshed-at="${before}"])`;
    await page.locator(`[data-testid="dashboard"]${refreshed}`).waitFor({ state: 'attached', timeout: 10000 });
  }

  beforeAll(async () => {
    // Bounded: on a fresh machine this is an apt-get update and install, minutes at most.
    execFileSync('bash', [path.join(root, 'scripts', 'ensure-chromium.sh')], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 10 * 60 * 1000 });

    sim = await startSimulator();
    const channel = { timeoutSeconds: 900, adapter: { type: 'simulator', baseUrl: sim.url, timeoutMs: 1000 } };
    config = testConfig({ channels: { wechat: channel } });
    t = await startTestApp(config);

    // A few payments in every state the page shows; the parked one takes the longest, so it runs alongside.
    const [parked, paid] = await Promise.all([createParked(), createPaid(), createPaid(), createClosed(), createClosed()]);
    parkedPaymentId = parked.id;
    paidPaymentId = paid;
    parkedItem = parked.item;

    profileDir = mkdtempSync(path.join(tmpdir(), 'pc-ops-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60000,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on('pageerror', (err) => browserProblems.push(`page error: ${err.message}`));
    // The page itself opens no dialog unless Delete is pressed (never here): an alert would be injected script.
    page.on('dialog', (dialog) => {
      browserProblems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
      void dialog.dismiss();
    });
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) browserProblems.push(`console: ${msg.text()}`);
    });
  }, 12 * 60 * 1000);

  afterAll(async () => {
    await context?.close();
    await t?.stop();
    await sim?.close();
    if (config) await deleteTestTopology(config);
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  });

  it('when the page is opened without a token, then it is served without auth and asks for the token before showing any data', async () => {
    const res = await request(t!.baseUrl, 'GET', '/ops');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);

    await page.goto(`${t!.baseUrl}/ops`);
    await page.getByTestId('token-input').waitFor({ state: 'visible' });
    expect(await page.getByTestId('dashboard').isVisible()).toBe(false);
  });

  it('when the admin token is entered, then the page shows the counts by status that the admin API reports', async () => {
    await page.getByTestId('token-input').fill(TEST_ADMIN_TOKEN);
    await page.getByTestId('token-submit').click();
    await page.getByTestId('status-count-PAID').waitFor({ state: 'visible' });
    expect(await page.evaluate<string[]>('Object.values(sessionStorage)')).toContain(TEST_ADMIN_TOKEN);

    // Other test files write payments too, so the counts move: compare a fresh page refresh with
    // the API right after it, until one pair agrees.
    const agreed = await waitFor('the page counts to equal GET /v1/admin/stats', async () => {
      await refreshPage();
      const shown = await countsOnPage();
      const api = (await request(t!.baseUrl, 'GET', '/v1/admin/stats', undefined, admin)).body as { byStatus: Record<string, number> };
      return STATUSES.every((s) => shown[s] === api.byStatus[s]) ? shown : undefined;
    }, 30000, 200);
    expect(agreed.PAID).toBeGreaterThanOrEqual(2);
    expect(agreed.CLOSED).toBeGreaterThanOrEqual(2);
    expect(Number((await page.getByTestId('stats-window').textContent())?.replace(/,/g, ''))).toBeGreaterThan(0);
    // The lateness histogram has a bar per bucket plus the overflow.
    expect(await page.locator('[data-testid^="lateness-bucket-"]').count()).toBe(9);
  });

  it('when the backlog is read, then the panel lists our queues with links to their management console pages', async () => {
    const names = [`${config.broker.prefix}:payment:compensate`, `${config.broker.prefix}:notification:deliver`];
    for (const name of names) {
      const row = page.locator(`[data-testid="backlog-queue"][data-queue="${name}"]`);
      await row.waitFor({ state: 'visible' });
      const href = await row.locator('a').getAttribute('href');
      expect(href).toContain(`/#/queues/${encodeURIComponent('/')}/${encodeURIComponent(name)}`);
    }
    expect(await page.getByTestId('timers-due-32s').textContent()).toMatch(/^\d[\d,]*$/);
  });

  it('when a payment is parked, then the page lists it with its payment id and reason, and a screenshot is kept as a test artifact', async () => {
    const row = page.getByTestId(`parked-item-${parkedItem.id}`);
    await row.waitFor({ state: 'visible' });
    expect(await page.getByTestId(`parked-payment-${parkedItem.id}`).textContent()).toBe(parkedPaymentId);
    expect(await row.textContent()).toContain('retries_exhausted');

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(0);
  });

  it('when the backlog answers 503, then its panel shows the message as text and the other panels keep working', async () => {
    const message = 'RabbitMQ management API at http://127.0.0.1:1 is unreachable: <b id="injected">boom</b>';
    await page.route('**/v1/admin/backlog', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAVAILABLE', message } }) }),
    );
    try {
      await refreshPage();
      const error = page.getByTestId('backlog-error');
      await error.waitFor({ state: 'visible' });
      expect(await error.textContent()).toContain(message);
      expect(await page.locator('#injected').count()).toBe(0);
      expect(await page.getByTestId('status-count-PAID').isVisible()).toBe(true);
      expect(await page.getByTestId(`parked-item-${parkedItem.id}`).isVisible()).toBe(true);
    } finally {
      await page.unroute('**/v1/admin/backlog');
    }
    await refreshPage();
    await page.getByTestId('backlog-error').waitFor({ state: 'hidden' });
  });

  it('when Replay is pressed after the channel recovers, then the item leaves the list and the payment settles as CLOSED', async () => {
    await sim!.script(parkedPaymentId, [{ kind: 'not_paid' }]);
    await page.getByTestId(`replay-${parkedItem.id}`).click();
    await page.getByTestId(`parked-item-${parkedItem.id}`).waitFor({ state: 'detached' });
    await untilStatus(parkedPaymentId, 'CLOSED');
    const after = await request(t!.baseUrl, 'GET', '/v1/admin/parked?limit=100', undefined, admin);
    expect((after.body.items as ParkedItem[]).find((i) => i.id === parkedItem.id)).toBeUndefined();
    expect(await page.getByTestId('parked-message').textContent()).toBe(`Replayed item ${parkedItem.id}.`);
  });

  /** The timeline rows as the page shows them, one array of cell texts per row. */
  async function timelineOnPage(): Promise<string[][]> {
    const rows = page.getByTestId('timeline-row');
    const out: string[][] = [];
    for (let i = 0; i < (await rows.count()); i++) {
      const row = rows.nth(i);
      out.push(await Promise.all(['timeline-at', 'timeline-transition', 'timeline-cause', 'timeline-details'].map(async (id) => (await row.getByTestId(id).textContent()) ?? '')));
    }
    return out;
  }
  /** The rows the page must show for these events: at, from → to, cause, compact JSON details. */
  const rowsOf = (events: TimelineEvent[]) => events.map((e) => [e.at.replace('T', ' '), `${e.from ?? '\u2014'} \u2192 ${e.to}`, e.cause, e.details === null ? '' : JSON.stringify(e.details)]);
  /** Waits until the search's message says it has answered: `text` is part of that message. */
  const searchAnswered = (text: string) => page.locator('[data-testid="search-message"]', { hasText: text }).waitFor({ state: 'visible' });

  async function searchById(id: string): Promise<void> {
    await page.getByTestId('search-id').fill(id);
    await page.getByTestId('search-id-submit').click();
  }
  async function searchByOrder(merchantId: string, orderId: string): Promise<void> {
    await page.getByTestId('search-merchant').fill(merchantId);
    await page.getByTestId('search-order').fill(orderId);
    await page.getByTestId('search-order-submit').click();
  }

  describe('the payment search', () => {
    let events: TimelineEvent[];
    let payment: { id: string; merchantId: string; orderId: string; status: string };

    beforeAll(async () => {
      // The merchant's notification is delivered after the callback: once it is in, the timeline is final.
      const answer = await waitFor('the paid payment\'s timeline to end with its delivery', async () => {
        const res = await request(t!.baseUrl, 'GET', `/v1/admin/payments/${paidPaymentId}`, undefined, admin);
        return res.status === 200 && (res.body.events as TimelineEvent[]).some((e) => e.cause === 'notification_delivered') ? res.body : undefined;
      }, 15000, 100);
      events = answer.events;
      payment = answer.payment;
    });

    it('when a payment id is searched, then the page shows its status and every timeline row the admin API answers, oldest first', async () => {
      await searchById(paidPaymentId);
      await searchAnswered(`Payment ${paidPaymentId}: ${events.length} events`);
      expect(await page.getByTestId('search-payment').textContent()).toBe(paidPaymentId);
      expect(await page.getByTestId('search-status').textContent()).toBe('PAID');
      expect(await page.getByTestId('search-payment-order').textContent()).toBe(payment.orderId);
      expect(await page.getByTestId('search-transaction').textContent()).toBe(`wx-${paidPaymentId}`);
      expect(await timelineOnPage()).toEqual(rowsOf(events));
      expect(events.map((e) => e.cause)).toEqual(['created', 'callback', 'notification_delivered']);
      expect((await timelineOnPage()).map((r) => r[1])).toEqual(['\u2014 \u2192 PENDING', 'PENDING \u2192 PAID', 'PAID \u2192 PAID']);

      mkdirSync(path.dirname(SEARCH_SCREENSHOT), { recursive: true });
      await page.getByTestId('search-panel').screenshot({ path: SEARCH_SCREENSHOT });
    });

    it('when a merchant id and an order id are searched, then the page shows the same payment and timeline', async () => {
      await searchById(UNKNOWN_ID); // another answer first, so the rows below are this search's
      await searchAnswered('(HTTP 404)');
      expect(await page.getByTestId('search-result').isVisible()).toBe(false);
      await searchByOrder(payment.merchantId, payment.orderId);
      await searchAnswered(`Merchant ${payment.merchantId}, order ${payment.orderId}: ${events.length} events`);
      expect(await page.getByTestId('search-payment').textContent()).toBe(paidPaymentId);
      expect(await page.getByTestId('search-status').textContent()).toBe('PAID');
      expect(await timelineOnPage()).toEqual(rowsOf(events));
    });

    it('when no payment matches, or nothing is typed, then the page says so as text', async () => {
      await searchById(UNKNOWN_ID);
      await searchAnswered(`payment ${UNKNOWN_ID} not found (HTTP 404)`);
      await searchByOrder(payment.merchantId, 'no-such-order');
      await searchAnswered(`Merchant ${payment.merchantId}, order no-such-order: no payment of merchant ${payment.merchantId} for order no-such-order (HTTP 404)`);
      expect(await page.getByTestId('search-message').getAttribute('class')).toBe('error');
      expect(await page.getByTestId('search-result').isVisible()).toBe(false);
      // Nothing typed: the page asks, without a request.
      await searchById('  ');
      await searchAnswered('Enter a payment id.');
    });

    it(`when markup (${HOSTILE}) is searched, then it is refused and shown as text, never as an element`, async () => {
      await searchById(HOSTILE);
      await searchAnswered('(HTTP 400)');
      expect(await page.getByTestId('search-message').textContent()).toBe(`Payment ${HOSTILE}: id: must be "pay_" and 22 base62 characters (HTTP 400)`);
      await searchByOrder(HOSTILE, HOSTILE);
      await searchAnswered(`Merchant ${HOSTILE}, order ${HOSTILE}: merchantId: `);
      expect(await page.getByTestId('search-message').textContent()).toMatch(/\(HTTP 400\)$/);
      expect(await page.locator('img').count()).toBe(0);
    });

    it('when an answer carries markup in its timeline, then the rows show it as text', async () => {
      const hostileEvents: TimelineEvent[] = [{ at: '2026-12-01T10:00:00.000Z', from: 'PENDING', to: 'PENDING', cause: HOSTILE, details: { reason: HOSTILE, lastError: '</td><script>alert(1)</script>' } }];
      await page.route('**/v1/admin/payments/**', (route) =>
        route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ payment: { ...payment, orderId: HOSTILE }, events: hostileEvents }) }),
      );
      try {
        await searchById(paidPaymentId);
        await searchAnswered(`Payment ${paidPaymentId}: 1 event,`);
        expect(await timelineOnPage()).toEqual(rowsOf(hostileEvents));
        expect(await page.getByTestId('search-payment-order').textContent()).toBe(HOSTILE);
        expect(await page.locator('img').count()).toBe(0);
        expect(await page.locator('[data-testid="timeline-rows"] script').count()).toBe(0);
      } finally {
        await page.unroute('**/v1/admin/payments/**');
      }
    });

    it('when a search is refused the admin token (401), then the page forgets the token and asks for it again, as a refresh does', async () => {
      await page.route('**/v1/admin/payments/**', (route) =>
        route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'a valid admin bearer token is required' } }) }),
      );
      try {
        await searchById(paidPaymentId);
        await page.getByTestId('token-input').waitFor({ state: 'visible' });
        expect(await page.getByTestId('refresh-status').textContent()).toBe('The admin token was refused. Enter it again.');
        expect(await page.getByTestId('dashboard').isVisible()).toBe(false);
        expect(await page.evaluate<string[]>('Object.values(sessionStorage)')).not.toContain(TEST_ADMIN_TOKEN);
      } finally {
        await page.unroute('**/v1/admin/payments/**');
      }
      await page.getByTestId('token-input').fill(TEST_ADMIN_TOKEN);
      await page.getByTestId('token-submit').click();
      await page.getByTestId('dashboard').waitFor({ state: 'visible' });
      // The last answer went with the token.
      expect(await page.getByTestId('search-result').isVisible()).toBe(false);
      expect(await page.getByTestId('search-message').textContent()).toBe('');
      await searchById(paidPaymentId);
      await searchAnswered(`Payment ${paidPaymentId}: ${events.length} events`);
    });
  });

  it('while all this ran, the browser reported no script error and no Content-Security-Policy violation', () => {
    expect(browserProblems).toEqual([]);
  });
});
