import type { Knex } from 'knex';
import { createPayment, getPayment, paymentBody, request, sendCallback, txId } from '../helpers/api';
import { eventsOf, internalIdOf, openTestDatabase } from '../helpers/fixtures';
import { startSimulator, type TestSimulator } from '../helpers/simulator';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { settledPayments } from '../helpers/logs';
import { waitFor } from '../helpers/wait';

describe('remedy: ask the channel before closing', () => {
  let sim: TestSimulator;
  let config: ReturnType<typeof testConfig>;
  let t: TestApp;
  let db: Knex;
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  beforeAll(async () => {
    sim = await startSimulator();
    config = testConfig({
      channels: {
        wechat: { timeoutSeconds: 900, adapter: { type: 'simulator', baseUrl: sim.url, timeoutMs: 1000 } },
        alipay: { timeoutSeconds: 900, adapter: { type: 'simulator', baseUrl: sim.url, timeoutMs: 1000 } },
        slowpay: { timeoutSeconds: 900, adapter: { type: 'simulator', baseUrl: sim.url, timeoutMs: 500 } },
      },
    });
    t = await startTestApp(config);
    db = openTestDatabase(config);
  });
  afterAll(async () => {
    await t.stop();
    await db.destroy();
    await sim.close();
    await deleteTestTopology(config);
  });

  async function createDue(seconds: number, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    const body = paymentBody({ timeoutSeconds: seconds, ...extra });
    await sim.script(body.orderId, (extra.answers as unknown[]) ?? [{ kind: 'not_paid' }]);
    delete (body as Record<string, unknown>).answers;
    const res = await createPayment(t.baseUrl, body, headers);
    expect(res.status).toBe(201);
    return res.body as { id: string; expiresAt: string; amount: number };
  }

  const statusOf = async (id: string) => (await getPayment(t.baseUrl, id)).body;
  const untilStatus = (id: string, status: string, ms = 15000) =>
    waitFor(`${id} to be ${status}`, async () => {
      const p = await statusOf(id);
      return p.status === status ? p : undefined;
    }, ms, 50);

  it('when the channel says PAID at the deadline, then the payment becomes PAID by remedy with the channel transaction id and no close call', async () => {
    const p = await createDue(1, { answers: [{ kind: 'paid', transactionId: txId('chan-tx-42') }] });
    const paid = await untilStatus(p.id, 'PAID');
    expect(paid.transactionId).toBe(txId('chan-tx-42'));
    const events = await eventsOf(db, [await internalIdOf(db, p.id)]);
    expect(events.filter((e) => e.to_status === 'PAID')).toEqual([expect.objectContaining({ from_status: 'PENDING', cause: 'remedy' })]);
    const calls = await sim.calls(p.id);
    expect(calls.map((c) => c.op)).toEqual(['query']);
    expect(calls[0]!.signed).toBe(true);
  });

  it('when the channel says PAID with a transaction id another payment holds, then the payment is parked as transaction_conflict and stays PENDING', async () => {
    const holder = await createDue(900);
    expect((await sendCallback(t.baseUrl, holder.id, { result: 'SUCCESS', transactionId: txId('chan-tx-held'), paidAmount: holder.amount })).status).toBe(200);
    const p = await createDue(1, { answers: [{ kind: 'paid', transactionId: txId('chan-tx-held') }] });
    const item = await waitFor('the conflicting remedy to be parked', async () => {
      const res = await request(t.baseUrl, 'GET', '/v1/admin/parked?purpose=compensation&limit=100', undefined, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
      return (res.body.items as Array<{ paymentId: string; reason: string }>).find((i) => i.paymentId === p.id);
    }, 15000, 100);
    expect(item.reason).toBe('transaction_conflict');
    expect((await statusOf(p.id)).status).toBe('PENDING');
    expect((await statusOf(holder.id)).transactionId).toBe(txId('chan-tx-held'));
  });

  it('when the channel says NOT_PAID, then the order is closed at the channel once and the payment becomes CLOSED, both calls carrying the create request id', async () => {
    const p = await createDue(1, {}, { 'x-request-id': 'req-remedy-close-1' });
    await untilStatus(p.id, 'CLOSED');
    const calls = await sim.calls(p.id);
    expect(calls.map((c) => [c.op, c.requestId])).toEqual([['query', 'req-remedy-close-1'], ['close', 'req-remedy-close-1']]);
  });

  it('when the channel errors twice and then says NOT_PAID, then it closes on the third attempt, each retry on schedule with attempts 1, 2, 3', async () => {
    const p = await createDue(1, { answers: [{ kind: 'error' }, { kind: 'error' }, { kind: 'not_paid' }] });
    await untilStatus(p.id, 'CLOSED');
    const queries = (await sim.calls(p.id)).filter((c) => c.op === 'query');
    expect(queries.map((q) => q.attempt)).toEqual([1, 2, 3]);
    const at = queries.map((q) => Date.parse(q.at));
    expect(at[0]!).toBeGreaterThanOrEqual(Date.parse(p.expiresAt));
    // The test schedule is [1, 1, 2] seconds: each retry is due no earlier than 1 s after the failure.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1000);
  });

  it('when the channel always errors, then the payment is parked after the last retry, and a replay settles it once the channel recovers', async () => {
    const p = await createDue(1, { answers: [{ kind: 'error' }] });
    const item = await waitFor('the payment to be parked', async () => {
      const res = await request(t.baseUrl, 'GET', '/v1/admin/parked?limit=100&purpose=compensation', undefined, admin);
      return (res.body.items as Array<{ id: number; paymentId: string; reason: string; attempts: number; lastError: string }>).find((i) => i.paymentId === p.id);
    }, 20000, 200);
    expect(item.reason).toBe('retries_exhausted');
    expect(item.attempts).toBe(config.retry.remedy.length + 1);
    expect(item.lastError).toMatch(/500/);
    expect((await statusOf(p.id)).status).toBe('PENDING');

    await sim.script(p.id, [{ kind: 'not_paid' }]);
    const replay = await request(t.baseUrl, 'POST', `/v1/admin/parked/${item.id}/replay`, undefined, admin);
    expect(replay.status).toBe(202);
    await untilStatus(p.id, 'CLOSED');
    const after = await request(t.baseUrl, 'GET', '/v1/admin/parked?limit=100', undefined, admin);
    expect(after.body.items.find((i: { id: number }) => i.id === item.id)).toBeUndefined();
    const lastQuery = (await sim.calls(p.id)).filter((c) => c.op === 'query').pop();
    expect(lastQuery!.attempt).toBe(1);
  });

  it('when a callback pays the payment while the channel is being asked, then the worker settles again with locked rows and leaves it PAID', async () => {
    // The worker read the payment PENDING before asking the channel; the callback lands in between.
    const p = await createDue(1, { answers: [{ kind: 'slow', ms: 800 }, { kind: 'not_paid' }] });
    await waitFor('the channel query', async () => (await sim.calls(p.id)).length > 0, 10000, 20);
    const callback = await sendCallback(t.baseUrl, p.id, { result: 'SUCCESS', transactionId: txId('wx-race-1'), paidAmount: p.amount });
    expect(callback.body.status).toBe('PAID');
    await waitFor('the stale settlement to be noticed', () => t.logs.some((l) => l.includes('"settling again with locked rows"') && l.includes(p.id)), 10000, 20);
    await waitFor('the timer to be acked', async () => (await t.app.broker.withChannel((ch) => ch.checkQueue(t.app.names.compensationQueue))).messageCount === 0, 5000, 50);
    expect((await statusOf(p.id)).status).toBe('PAID');
    const events = await eventsOf(db, [await internalIdOf(db, p.id)]);
    expect(events.map((e) => [e.from_status, e.to_status, e.cause])).toEqual([
      [null, 'PENDING', 'created'],
      ['PENDING', 'PAID', 'callback'],
    ]);
    expect(settledPayments(t.logs).filter((s) => s.paymentId === p.id)).toEqual([]);
  });

  it('when one channel is slower than its timeout, then another channel’s payments due at the same time settle without waiting for it', async () => {
    const slow = await createDue(2, { channel: 'slowpay', answers: [{ kind: 'slow', ms: 5000 }] });
    const fast = await createDue(2, { channel: 'wechat' });
    const closed = await untilStatus(fast.id, 'CLOSED', 10000);
    expect(Date.parse(closed.closedAt) - Date.parse(closed.expiresAt)).toBeLessThan(1000);
    expect((await statusOf(slow.id)).status).toBe('PENDING');
  });

  it('when admin endpoints are called without the token or with a wrong one, then they answer 401', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: TEST_ADMIN_TOKEN }]) {
      const list = await request(t.baseUrl, 'GET', '/v1/admin/parked', undefined, headers);
      expect(list.status).toBe(401);
      expect(list.body.error.code).toBe('UNAUTHORIZED');
      expect((await request(t.baseUrl, 'POST', '/v1/admin/parked/1/replay', undefined, headers)).status).toBe(401);
      expect((await request(t.baseUrl, 'DELETE', '/v1/admin/parked/1', undefined, headers)).status).toBe(401);
    }
  });

  it('when a parked item is deleted, then it is gone, and deleting it again is 404', async () => {
    const p = await createDue(1, { answers: [{ kind: 'error' }] });
    const item = await waitFor('parked', async () => {
      const res = await request(t.baseUrl, 'GET', '/v1/admin/parked?limit=100', undefined, admin);
      return (res.body.items as Array<{ id: number; paymentId: string }>).find((i) => i.paymentId === p.id);
    }, 20000, 200);
    expect((await request(t.baseUrl, 'DELETE', `/v1/admin/parked/${item.id}`, undefined, admin)).status).toBe(204);
    const again = await request(t.baseUrl, 'DELETE', `/v1/admin/parked/${item.id}`, undefined, admin);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('NOT_FOUND');
  });
});
