import type { Knex } from 'knex';
import { DESTINATIONS } from '../../src/infra/broker-topology';
import { insertPendingPayments, openTestDatabase } from '../helpers/fixtures';
import { deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/** What a transaction writes when it cannot publish at once: the relay's input. */
function timerMessage(paymentId: number, deadline: number) {
  return { destination: DESTINATIONS.paymentTimer, deadline, attempt: 1, correlationId: `outbox-test-${paymentId}`, body: { paymentId } };
}

describe('the transactional outbox relay', () => {
  // A relay interval far beyond the test, so that only the test's relayOnce() publishes.
  const config = testConfig({ outbox: { relayIntervalMs: 3_600_000, relayMinAgeMs: 1000 } });
  let t: TestApp;
  let db: Knex;

  beforeAll(async () => {
    t = await startTestApp(config);
    db = openTestDatabase(config);
  });
  afterAll(async () => {
    await t?.stop();
    await db?.destroy();
    await deleteTestTopology(config);
  });

  async function closedCount(ids: number[]): Promise<number> {
    const [row] = await db('payments').whereIn('id', ids).andWhere({ status: 'CLOSED' }).count({ n: '*' });
    return Number(row?.n);
  }

  it('when rows are left behind (one holding a batch of timers, one written before batching held a single message), then the relay publishes every timer and deletes both rows', async () => {
    const deadline = Date.now() - 1000;
    const ids = await insertPendingPayments(db, 4, new Date(deadline));
    const old = new Date(Date.now() - 60_000);
    const [grouped] = await db('outbox').insert({ kind: DESTINATIONS.paymentTimer, message: JSON.stringify(ids.slice(0, 3).map((id) => timerMessage(id, deadline))), created_at: old });
    const [single] = await db('outbox').insert({ kind: DESTINATIONS.paymentTimer, message: JSON.stringify(timerMessage(ids[3] as number, deadline)), created_at: old });
    // A row younger than the minimum age belongs to a flush still in progress: not the relay's.
    const [young] = await db('outbox').insert({ kind: DESTINATIONS.paymentTimer, message: JSON.stringify([]), created_at: new Date(Date.now() + 60_000) });

    await t.app.outbox.relayOnce();

    expect((await db('outbox').whereIn('id', [grouped, single] as number[]).select('id')).length).toBe(0);
    expect((await db('outbox').where('id', young as number).select(['id'])).length).toBe(1);
    await waitFor('the four payments closed by the relayed timers', async () => (await closedCount(ids)) === 4);
    await db('outbox').where('id', young as number).delete();
  });

  it('when a payment is created, then its timer row is gone from the outbox once published', async () => {
    const res = await fetch(`${t.baseUrl}/v1/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ merchantId: 'm_outbox', orderId: `o-${Date.now()}`, amount: 100, currency: 'CNY', channel: 'wechat', timeoutSeconds: 900 }),
    });
    expect(res.status).toBe(201);
    const { id: publicId } = (await res.json()) as { id: string };
    const { id } = await db('payments').where({ public_id: publicId }).first('id');
    // Other suites share the table, so look for this payment's timer only.
    await waitFor('no outbox row holds its timer', async () => (await db('outbox').where('message', 'like', `%"paymentId":${Number(id)}}%`).select('id')).length === 0);
  });
});
