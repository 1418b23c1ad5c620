import type { Knex } from 'knex';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { paymentBody, registerMerchant, request, sendCallback, txId, type TestMerchant } from '../helpers/api';
import { eventsOf, internalIdOf, openTestDatabase } from '../helpers/fixtures';
import { startSimulator, type TestSimulator } from '../helpers/simulator';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/** Cancel, lookup by order and the timeline (README.md, "HTTP API"), against the real stack. */
describe('checkout integration: cancel, find by order, timeline', () => {
  let sim: TestSimulator;
  let config: ReturnType<typeof testConfig>;
  let t: TestApp;
  let db: Knex;
  let merchantEndpoint: Server;
  const received: Array<{ id: string; type: string; paymentId: string }> = [];
  let shop: TestMerchant;
  let other: TestMerchant;

  beforeAll(async () => {
    merchantEndpoint = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { eventId: string; type: string; payment: { id: string } };
        received.push({ id: parsed.eventId, type: parsed.type, paymentId: parsed.payment.id });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => merchantEndpoint.listen(0, '127.0.0.1', resolve));
    sim = await startSimulator();
    config = testConfig({
      channels: { wechat: { timeoutSeconds: 900, adapter: { type: 'simulator', baseUrl: sim.url, timeoutMs: 1000 } } },
      retry: { remedy: [1] },
    });
    t = await startTestApp(config);
    db = openTestDatabase(config);
    const notifyUrl = `http://127.0.0.1:${(merchantEndpoint.address() as AddressInfo).port}/notify`;
    shop = await registerMerchant(t.baseUrl, { notifyUrl });
    other = await registerMerchant(t.baseUrl, { notifyUrl });
  });
  afterAll(async () => {
    await t.stop();
    await db.destroy();
    await sim.close();
    await new Promise((resolve) => merchantEndpoint.close(resolve));
    await deleteTestTopology(config);
  });

  async function create(merchant: TestMerchant, extra: Record<string, unknown> = {}, answers: unknown[] = [{ kind: 'not_paid' }]) {
    const body = paymentBody({ merchantId: merchant.merchantId, ...extra });
    await sim.script(body.orderId, answers);
    const res = await request(t.baseUrl, 'POST', '/v1/payments', body, merchant.auth);
    expect(res.status).toBe(201);
    return res.body as { id: string; orderId: string; amount: number; status: string };
  }
  const cancel = (merchant: TestMerchant, id: string) => request(t.baseUrl, 'POST', `/v1/payments/${id}/cancel`, undefined, merchant.auth);
  const timeline = async (merchant: TestMerchant, id: string) => (await request(t.baseUrl, 'GET', `/v1/payments/${id}/events`, undefined, merchant.auth)).body.events as Array<{ at: string; from: string | null; to: string; cause: string; details: Record<string, unknown> | null }>;

  it('when the channel says not paid, then a cancel closes it there and marks it CLOSED (merchant_cancel), a repeat answers the same, the merchant is notified once and the timer is a no-op', async () => {
    const p = await create(shop, { timeoutSeconds: 2 });
    const first = await cancel(shop, p.id);
    expect(first.status).toBe(200);
    expect(first.body.status).toBe('CLOSED');
    const repeat = await cancel(shop, p.id);
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(first.body);
    expect((await sim.calls(p.id)).map((c) => c.op)).toEqual(['query', 'close']);
    // The timer fires after 2 s and finds the payment settled.
    await waitFor('the timer to find the payment settled', () => t.logs.some((l) => l.includes('timer was a no-op') && l.includes(p.id)), 15000, 50);
    await waitFor('the notification', () => received.some((r) => r.paymentId === p.id), 10000, 50);
    const events = await timeline(shop, p.id);
    expect(events.filter((e) => e.from !== e.to).map((e) => [e.from, e.to, e.cause])).toEqual([
      [null, 'PENDING', 'created'],
      ['PENDING', 'CLOSED', 'merchant_cancel'],
    ]);
    await waitFor('the delivery in the timeline', async () => (await timeline(shop, p.id)).some((e) => e.cause === 'notification_delivered'), 10000, 50);
    expect(received.filter((r) => r.paymentId === p.id).map((r) => r.type)).toEqual(['payment.closed']);
  });

  it('when the channel says paid, then a cancel settles the payment PAID with its transaction id and never closes it', async () => {
    const p = await create(shop, {}, [{ kind: 'paid', transactionId: txId('cancel-paid') }]);
    const res = await cancel(shop, p.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'PAID', transactionId: txId('cancel-paid') });
    expect((await sim.calls(p.id)).map((c) => c.op)).toEqual(['query']);
    expect((await cancel(shop, p.id)).body.status).toBe('PAID');
  });

  it('when the customer pays between the cancel\'s query and its close, then the refused close is no CLOSED: the cancel answers 503, and the next finds it PAID', async () => {
    const p = await create(shop, {}, [{ kind: 'paid_during_close', transactionId: txId('paid-during-close') }]);
    const first = await cancel(shop, p.id);
    expect(first.status).toBe(503);
    expect((await request(t.baseUrl, 'GET', `/v1/payments/${p.id}`, undefined, shop.auth)).body.status).toBe('PENDING');
    const second = await cancel(shop, p.id);
    expect(second.body).toMatchObject({ status: 'PAID', transactionId: txId('paid-during-close') });
    expect((await sim.calls(p.id)).map((c) => [c.op, c.answered])).toEqual([['query', 'paid_during_close'], ['close', 'refused'], ['query', 'paid']]);
  });

  it('when many cancels of one payment arrive at once, then the channel is asked once and every one answers CLOSED', async () => {
    const p = await create(shop);
    const answers = await Promise.all(Array.from({ length: 20 }, () => cancel(shop, p.id)));
    expect(answers.map((a) => [a.status, a.body.status])).toEqual(Array.from({ length: 20 }, () => [200, 'CLOSED']));
    expect((await sim.calls(p.id)).map((c) => c.op)).toEqual(['query', 'close']);
  });

  it('when the channel cannot confirm, then a cancel answers 503 and changes nothing; a payment settled otherwise answers 409 with its status', async () => {
    const unsure = await create(shop, {}, [{ kind: 'unknown' }]);
    const res = await cancel(shop, unsure.id);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('UNAVAILABLE');
    expect((await request(t.baseUrl, 'GET', `/v1/payments/${unsure.id}`, undefined, shop.auth)).body.status).toBe('PENDING');

    const paid = await create(shop);
    expect((await sendCallback(t.baseUrl, paid.id, { result: 'SUCCESS', transactionId: txId('cb-before-cancel'), paidAmount: paid.amount })).status).toBe(200);
    const conflict = await cancel(shop, paid.id);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'CONFLICT', details: [{ path: 'status', message: 'PAID' }] });

    const failed = await create(shop);
    expect((await sendCallback(t.baseUrl, failed.id, { result: 'FAILED' })).status).toBe(200);
    expect((await cancel(shop, failed.id)).body.error.details).toEqual([{ path: 'status', message: 'FAILED' }]);
  });

  it('when a cancel carries fields, then it is 400 and nothing changes; an empty object is a cancel', async () => {
    const p = await create(shop);
    const bad = await request(t.baseUrl, 'POST', `/v1/payments/${p.id}/cancel`, { reason: 'x' }, shop.auth);
    expect(bad.status).toBe(400);
    expect(await sim.calls(p.id)).toEqual([]);
    expect((await request(t.baseUrl, 'POST', `/v1/payments/${p.id}/cancel`, {}, shop.auth)).body.status).toBe('CLOSED');
  });

  it("when another merchant cancels or reads a payment, then it is a 404 and nothing changes", async () => {
    const p = await create(shop);
    expect((await cancel(other, p.id)).status).toBe(404);
    expect((await request(t.baseUrl, 'GET', `/v1/payments/${p.id}/events`, undefined, other.auth)).status).toBe(404);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${p.orderId}`, undefined, other.auth)).status).toBe(404);
    expect((await request(t.baseUrl, 'GET', `/v1/payments/${p.id}`, undefined, shop.auth)).body.status).toBe('PENDING');
    expect(await sim.calls(p.id)).toEqual([]);
  });

  it('when a payment is looked up by its order id, then only the caller merchant\'s payment is found', async () => {
    const mine = await create(shop);
    // The other merchant uses the same order id for a payment of its own.
    const theirs = await create(other, { orderId: mine.orderId });
    const found = await request(t.baseUrl, 'GET', `/v1/payments?orderId=${encodeURIComponent(mine.orderId)}`, undefined, shop.auth);
    expect(found.status).toBe(200);
    expect(found.body.id).toBe(mine.id);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${encodeURIComponent(mine.orderId)}`, undefined, other.auth)).body.id).toBe(theirs.id);
    expect((await request(t.baseUrl, 'GET', '/v1/payments?orderId=nope-none', undefined, shop.auth)).status).toBe(404);
    expect((await request(t.baseUrl, 'GET', '/v1/payments', undefined, shop.auth)).status).toBe(400);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${mine.orderId}&merchantId=${other.merchantId}`, undefined, shop.auth)).status).toBe(403);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${mine.orderId}`)).status).toBe(401);
  });

  it('when a platform key looks up an order, then it names the merchant, and only one it may act for', async () => {
    const keyRes = await request(t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: [shop.merchantId] }, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
    expect(keyRes.status).toBe(201);
    const platform = { authorization: `Bearer ${keyRes.body.key}` };
    const p = await create(shop);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${p.orderId}&merchantId=${shop.merchantId}`, undefined, platform)).body.id).toBe(p.id);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${p.orderId}`, undefined, platform)).status).toBe(400);
    expect((await request(t.baseUrl, 'GET', `/v1/payments?orderId=${p.orderId}&merchantId=${other.merchantId}`, undefined, platform)).status).toBe(403);
  });

  it('when the channel gives no answer at the deadline, then the timeline lists the creation, each remedy retry and the settlement in order', async () => {
    const p = await create(shop, { timeoutSeconds: 1 }, [{ kind: 'error', status: 503 }, { kind: 'not_paid' }]);
    await waitFor('the retried remedy to close it', async () => (await request(t.baseUrl, 'GET', `/v1/payments/${p.id}`, undefined, shop.auth)).body.status === 'CLOSED', 20000, 100);
    const events = await timeline(shop, p.id);
    expect(events.slice(0, 3).map((e) => [e.from, e.to, e.cause])).toEqual([
      [null, 'PENDING', 'created'],
      ['PENDING', 'PENDING', 'remedy_retry'],
      ['PENDING', 'CLOSED', 'timeout'],
    ]);
    // A coarse reason, never the channel's own error text (it can name internal hosts).
    expect(events[1]!.details).toEqual({ attempt: 1, nextAttemptAt: expect.any(String), reason: 'channel_error' });
    const times = events.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('when a callback conflicts with another payment, then the timeline records it without the other payment\'s internal id', async () => {
    const holder = await create(shop);
    const p = await create(shop);
    expect((await sendCallback(t.baseUrl, holder.id, { result: 'SUCCESS', transactionId: txId('tl-held'), paidAmount: holder.amount })).status).toBe(200);
    expect((await sendCallback(t.baseUrl, p.id, { result: 'SUCCESS', transactionId: txId('tl-held'), paidAmount: p.amount })).status).toBe(409);
    const conflict = (await timeline(shop, p.id)).find((e) => e.cause === 'callback_conflict');
    expect(conflict).toBeDefined();
    expect(conflict!.details).not.toHaveProperty('otherPaymentId');
    expect(JSON.stringify(conflict!.details)).not.toContain(String(await internalIdOf(db, holder.id)));
  });

  it('when cancels race due timers and SUCCESS callbacks (100 payments, ±50 ms), then each ends in one final state that payment_events explains', async () => {
    const payments = await Promise.all(Array.from({ length: 100 }, () => create(shop, { timeoutSeconds: 1 })));
    const due = Date.now() + 1000;
    await Promise.all(
      payments.map(async (p, i) => {
        const jitter = () => new Promise((r) => setTimeout(r, Math.max(0, due - Date.now() + (Math.random() * 100 - 50))));
        await Promise.all([
          jitter().then(() => cancel(shop, p.id)),
          jitter().then(() => sendCallback(t.baseUrl, p.id, { result: 'SUCCESS', transactionId: txId(`race-${i}`), paidAmount: p.amount })),
        ]);
      }),
    );
    const ids = await Promise.all(payments.map((p) => internalIdOf(db, p.id)));
    // Every payment settles (a cancel that met 503 leaves it to its timer).
    await waitFor('every payment to settle', async () => (await db('payments').whereIn('id', ids).where('status', 'PENDING').count({ n: '*' }))[0]!.n === 0, 30000, 200);
    const rows: Array<{ id: number; status: string }> = await db('payments').whereIn('id', ids).select('id', 'status');
    const events = await eventsOf(db, ids);
    for (const row of rows) {
      const chain = events.filter((e) => Number(e.payment_id) === Number(row.id) && e.from_status !== e.to_status);
      // One path through the state machine: each transition starts where the last one ended.
      for (let k = 1; k < chain.length; k++) expect(chain[k]!.from_status).toBe(chain[k - 1]!.to_status);
      expect(chain.at(-1)!.to_status).toBe(row.status);
      expect([['PENDING', 'PAID'], ['PENDING', 'CLOSED'], ['PENDING', 'CLOSED', 'PAID_AFTER_CLOSE']]).toContainEqual(chain.map((e) => e.to_status));
    }
  });
});
