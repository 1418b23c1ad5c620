import { createDelayScheduler } from '../../src/delay/delay-scheduler';
import { DESTINATIONS } from '../../src/messaging/topology';
import { createOutbox } from '../../src/outbox/outbox';
import { insertPendingPayments } from '../helpers/fixtures';
import { testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';
import { createPayment } from '../helpers/api';

/** What a transaction writes when it cannot publish at once: the relay's input. */
function timerMessage(paymentId: number, deadline: number) {
  return { destination: DESTINATIONS.paymentTimer, deadline, attempt: 1, correlationId: `outbox-test-${paymentId}`, body: { paymentId } };
}

describe('the transactional outbox relay', () => {
  // A relay interval far beyond the test, so that only the test's relayOnce() publishes.
  const config = testConfig({ outbox: { relayIntervalMs: 3_600_000, relayMinAgeMs: 1000 } });
  const suite = useTestApp(config);

  async function closedCount(ids: number[]): Promise<number> {
    const [row] = await suite.db('payments').whereIn('id', ids).andWhere({ status: 'CLOSED' }).count({ n: '*' });
    return Number(row?.n);
  }

  it('when rows are left behind (one holding a batch of timers, one written before batching held a single message), then the relay publishes every timer and deletes both rows', async () => {
    const deadline = Date.now() - 1000;
    const ids = await insertPendingPayments(suite.db, 4, new Date(deadline));
    const old = new Date(Date.now() - 60_000);
    const topology = config.broker.prefix;
    const [grouped] = await suite.db('outbox').insert({ kind: DESTINATIONS.paymentTimer, topology, message: JSON.stringify(ids.slice(0, 3).map((id) => timerMessage(id, deadline))), created_at: old });
    const [single] = await suite.db('outbox').insert({ kind: DESTINATIONS.paymentTimer, topology, message: JSON.stringify(timerMessage(ids[3] as number, deadline)), created_at: old });
    // A row younger than the minimum age belongs to a flush still in progress: not the relay's.
    const [young] = await suite.db('outbox').insert({ kind: DESTINATIONS.paymentTimer, topology, message: JSON.stringify([]), created_at: new Date(Date.now() + 60_000) });

    await suite.t.app.outbox.relayOnce();

    expect((await suite.db('outbox').whereIn('id', [grouped, single] as number[]).select('id')).length).toBe(0);
    expect((await suite.db('outbox').where('id', young as number).select(['id'])).length).toBe(1);
    await waitFor('the four payments closed by the relayed timers', async () => (await closedCount(ids)) === 4);
    await suite.db('outbox').where('id', young as number).delete();
  });

  it('when another deployment (another prefix) left a row in the same schema, then this relay never takes it, and that deployment\'s relay does', async () => {
    const other = `${config.broker.prefix}x`;
    const deadline = Date.now() - 1000;
    const [id] = await insertPendingPayments(suite.db, 1, new Date(deadline));
    const [orphan] = await suite.db('outbox').insert({ kind: DESTINATIONS.paymentTimer, topology: other, message: JSON.stringify([timerMessage(id as number, deadline)]), created_at: new Date(Date.now() - 60_000) });
    // Ours: drain until it has nothing more of its own; the other deployment's row is still there.
    while ((await suite.t.app.outbox.relayOnce()) > 0);
    expect((await suite.db('outbox').where('id', orphan as number).select('id')).length).toBe(1);
    expect(await closedCount([id as number])).toBe(0);
    // Its own relay (here: one for that prefix, publishing through a recorder) takes it.
    const published: unknown[] = [];
    const theirs = createOutbox({ db: suite.t.app.db, topology: other, scheduler: { schedule: async (m) => void published.push(m) }, logger: suite.t.app.logger, relayIntervalMs: 3_600_000, relayMinAgeMs: 1000, relayBatchSize: 100 });
    expect(await theirs.relayOnce()).toBeGreaterThanOrEqual(1);
    expect(published).toEqual(expect.arrayContaining([expect.objectContaining({ body: { paymentId: id } })]));
    expect((await suite.db('outbox').where('id', orphan as number).select('id')).length).toBe(0);
  });

  it('when the relay is stopped during a pass, then stop resolves only after that pass has published and deleted its rows', async () => {
    const published: unknown[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const topology = `${config.broker.prefix}s`;
    const outbox = createOutbox({ db: suite.t.app.db, topology, scheduler: { schedule: async (m) => { await gate; published.push(m); } }, logger: suite.t.app.logger, relayIntervalMs: 20, relayMinAgeMs: 1000, relayBatchSize: 100 });
    const [row] = await suite.db('outbox').insert({ kind: DESTINATIONS.paymentTimer, topology, message: JSON.stringify([timerMessage(1, Date.now())]), created_at: new Date(Date.now() - 60_000) });
    const stop = outbox.startRelay();
    await waitFor('the relay to hold the row', async () => {
      const [locked] = (await suite.db.raw('SELECT COUNT(*) AS n FROM outbox WHERE id = ? FOR UPDATE SKIP LOCKED', [row as number])) as unknown as [Array<{ n: number }>];
      return Number(locked[0]?.n) === 0;
    }, 5000, 20);
    let stopped = false;
    const stopping = stop().then(() => (stopped = true));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(published).toHaveLength(1);
    expect((await suite.db('outbox').where('id', row as number).select('id')).length).toBe(0);
  });

  it('when several flushes publish, then their rows leave the table together in one DELETE, at the latest when idle() returns', async () => {
    const { db, broker, names, logger } = suite.t.app;
    // A delete delay longer than the test: only idle() deletes, so the count is deterministic.
    const outbox = createOutbox({ db, topology: config.broker.prefix, scheduler: createDelayScheduler({ broker, names }), logger, relayIntervalMs: 3_600_000, relayMinAgeMs: 1000, relayBatchSize: 100, deleteDelayMs: 3_600_000 });
    const deadline = Date.now() + 600_000;
    const ids = await insertPendingPayments(suite.db, 3, new Date(deadline));
    const rows = await Promise.all(
      ids.map(async (id) => {
        const messages = [timerMessage(id, deadline)];
        // Young rows (as a flush in progress writes them): no relay of a parallel suite takes them.
        const [rowId] = await suite.db('outbox').insert({ kind: DESTINATIONS.paymentTimer, topology: config.broker.prefix, message: JSON.stringify(messages), created_at: new Date(Date.now() + 60_000) });
        return { id: Number(rowId), messages };
      }),
    );
    const left = async () => (await suite.db('outbox').whereIn('id', rows.map((r) => r.id)).select('id')).length;
    const deletes: string[] = [];
    const onQuery = (q: { sql: string }) => {
      if (/^delete from `outbox`/i.test(q.sql)) deletes.push(q.sql);
    };
    db.on('query', onQuery);
    try {
      for (const row of rows) await outbox.flush([row]); // each resolves at its broker confirm
      expect({ left: await left(), deletes: deletes.length }).toEqual({ left: 3, deletes: 0 });
      await outbox.idle();
      expect({ left: await left(), deletes: deletes.length }).toEqual({ left: 0, deletes: 1 });
    } finally {
      db.off('query', onQuery);
    }
  });

  it('when a payment is created, then its timer row is gone from the outbox once published', async () => {
    const res = await createPayment(suite.t.baseUrl, { orderId: `o-${Date.now()}`, amount: 100, currency: 'CNY', channel: 'wechat', timeoutSeconds: 900 });
    expect(res.status).toBe(201);
    const { id: publicId } = res.body as { id: string };
    const { id } = await suite.db('payments').where({ public_id: publicId }).first('id');
    // Other suites share the table, so look for this payment's timer only.
    await waitFor('no outbox row holds its timer', async () => (await suite.db('outbox').where('message', 'like', `%"paymentId":${Number(id)}}%`).select('id')).length === 0);
  });
});
