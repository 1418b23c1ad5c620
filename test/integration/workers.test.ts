import type { Knex } from 'knex';
import { createDelayScheduler } from '../../src/delay/delay-scheduler';
import { DESTINATIONS } from '../../src/messaging/topology';
import { eventsOf, insertPendingPayments, openTestDatabase } from '../helpers/fixtures';
import { deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { settledPayments } from '../helpers/logs';
import { waitFor } from '../helpers/wait';

describe('compensation workers', () => {
  const config = testConfig({ role: 'worker' });
  let workers: TestApp[] = [];
  let db: Knex;

  beforeAll(async () => {
    // Two instances, two connections, one queue: as two worker replicas would run.
    workers = [await startTestApp(config), await startTestApp(config)];
    db = openTestDatabase(config);
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await db.destroy();
    await deleteTestTopology(config);
  });

  async function lockRetries(w: TestApp): Promise<number> {
    const metric = await w.app.metrics.lockRetries.get();
    return metric.values.reduce((sum, v) => sum + v.value, 0);
  }

  it('when 2,000 payments fall due in the same second, then two workers close every one exactly once without a deadlock', async () => {
    const deadline = Date.now() + 5000;
    const ids = await insertPendingPayments(db, 2000, new Date(deadline));
    const scheduler = createDelayScheduler({ broker: workers[0]!.app.broker, names: workers[0]!.app.names });
    for (let i = 0; i < ids.length; i += 200) {
      await Promise.all(ids.slice(i, i + 200).map((paymentId) => scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline, attempt: 1, body: { paymentId } })));
    }

    await waitFor('all 2,000 payments to close', async () => {
      const [row] = await db('payments').whereIn('id', ids).andWhere('status', 'CLOSED').count({ n: '*' });
      const n = row?.n;
      return Number(n) === ids.length;
    }, 60000, 250);

    const closedEvents = (await eventsOf(db, ids)).filter((e) => e.to_status === 'CLOSED');
    expect(closedEvents).toHaveLength(ids.length);
    expect(new Set(closedEvents.map((e) => Number(e.payment_id))).size).toBe(ids.length);
    expect(closedEvents.every((e) => new Date(e.at).getTime() >= deadline)).toBe(true);

    // Both workers took part, and neither hit (or logged) a deadlock or lock-wait timeout.
    const settledBy = workers.map((w) => settledPayments(w.logs).length);
    expect(settledBy.every((n) => n > 0)).toBe(true);
    expect(settledBy[0]! + settledBy[1]!).toBe(ids.length);
    // Batches of up to 500 are logged at most 100 payments a line (log drivers cap line length).
    const settledLines = workers.flatMap((w) => w.logs.filter((l) => l.includes('"payments settled"')).map((l) => JSON.parse(l) as { count: number; payments: unknown[] }));
    expect(settledLines.every((l) => l.count === l.payments.length && l.payments.length <= 100)).toBe(true);
    for (const w of workers) {
      expect(await lockRetries(w)).toBe(0);
      expect(w.logs.filter((l) => /deadlock|lock wait|lock conflict|ER_LOCK/i.test(l))).toEqual([]);
    }
  });

  it('when a malformed message lands on the due queue, then it is parked with its reason and the worker keeps going', async () => {
    const marker = `bad-${Date.now()}`;
    await workers[0]!.app.broker.publish(workers[0]!.app.names.dueExchange, `0.${DESTINATIONS.paymentTimer}`, Buffer.from(`not json ${marker}`));
    await workers[0]!.app.broker.publish(workers[0]!.app.names.dueExchange, `0.${DESTINATIONS.paymentTimer}`, Buffer.from(JSON.stringify({ paymentId: 'abc', marker })));

    const parked = await waitFor('both messages to be parked', async () => {
      const rows = await db('parked_items').where('message', 'like', `%${marker}%`);
      return rows.length === 2 ? rows : undefined;
    }, 15000);
    expect(parked.map((r: { reason: string }) => r.reason)).toEqual(['malformed', 'malformed']);
    expect(parked.map((r: { last_error: string }) => r.last_error).join(' ')).toMatch(/not JSON/);

    // The worker still settles a good timer after them.
    const [id] = await insertPendingPayments(db, 1, new Date(Date.now() - 1000));
    const scheduler = createDelayScheduler({ broker: workers[0]!.app.broker, names: workers[0]!.app.names });
    await scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline: Date.now() - 1000, attempt: 1, body: { paymentId: id } });
    await waitFor('the good timer to settle', async () => (await db('payments').where({ id }).first()).status === 'CLOSED', 15000);
  });

  it('when a timer names a payment that does not exist, then it is parked as unknown_payment', async () => {
    const scheduler = createDelayScheduler({ broker: workers[0]!.app.broker, names: workers[0]!.app.names });
    const missing = 9_000_000_000 + Math.floor(Math.random() * 1_000_000);
    await scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline: Date.now(), attempt: 1, body: { paymentId: missing } });
    const row = await waitFor('the timer to be parked', () => db('parked_items').where('message', 'like', `%${missing}%`).first(), 15000);
    expect(row.reason).toBe('unknown_payment');
  });
});

describe('workers scale out', () => {
  const config = testConfig({ role: 'worker' });
  const workers: TestApp[] = [];
  let db: Knex;

  beforeAll(async () => {
    db = openTestDatabase(config);
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await db.destroy();
    await deleteTestTopology(config);
  });

  /** A backlog of `count` payments whose timers are already due in the compensation queue. */
  async function dueBacklog(publisher: TestApp, count: number): Promise<number[]> {
    const deadline = Date.now() - 1000;
    const ids = await insertPendingPayments(db, count, new Date(deadline));
    const scheduler = createDelayScheduler({ broker: publisher.app.broker, names: publisher.app.names });
    for (let i = 0; i < ids.length; i += 200) {
      await Promise.all(ids.slice(i, i + 200).map((paymentId) => scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline, attempt: 1, body: { paymentId } })));
    }
    return ids;
  }

  async function expectEachClosedOnce(ids: number[]): Promise<void> {
    await waitFor(`${ids.length} payments to close`, async () => {
      const [row] = await db('payments').whereIn('id', ids).andWhere('status', 'CLOSED').count({ n: '*' });
      return Number(row?.n) === ids.length;
    }, 60000, 250);
    const closed = (await eventsOf(db, ids)).filter((e) => e.to_status === 'CLOSED');
    expect(closed).toHaveLength(ids.length);
    expect(new Set(closed.map((e) => Number(e.payment_id))).size).toBe(ids.length);
  }

  it('when the same backlog is settled by one worker and then by two, then both settle everything exactly once', async () => {
    workers.push(await startTestApp(config));
    await expectEachClosedOnce(await dueBacklog(workers[0]!, 1000));

    workers.push(await startTestApp(config));
    const before = workers.map((w) => settledPayments(w.logs).length);
    await expectEachClosedOnce(await dueBacklog(workers[0]!, 1000));
    const share = workers.map((w, i) => settledPayments(w.logs).length - before[i]!);
    expect(share[0]! + share[1]!).toBe(1000);
    expect(share[1]).toBeGreaterThan(0); // the new worker took part
  });
});
