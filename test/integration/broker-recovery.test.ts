import { createPayment, getPayment, paymentBody, request } from '../helpers/api';
import { internalIdOf } from '../helpers/fixtures';
import { testConfig, useAmqpConnection, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/**
 * Loss paths in the broker: an unroutable publish that the broker confirms, and a consumer the
 * broker cancels. Both are made by deleting one of the suite's own queues, as an operator might.
 */
describe('when the broker loses a queue under the service', () => {
  const config = testConfig();
  const suite = useTestApp(config);
  const amqpTest = useAmqpConnection(config);

  const deleteQueue = async (queue: string) => {
    const ch = await amqpTest.conn.createChannel();
    await ch.deleteQueue(queue);
    await ch.close();
  };
  const returnsCounted = async () => {
    const text = (await request(suite.t.baseUrl, 'GET', '/metrics')).body as string;
    return [...text.matchAll(/^compensator_publish_returns_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const untilClosed = (id: string) =>
    waitFor(`${id} to be CLOSED`, async () => {
      const p = (await getPayment(suite.t.baseUrl, id)).body;
      return p.status === 'CLOSED' ? p : undefined;
    }, 30000, 100);

  it('when a timer is published into a delay level whose queue was deleted, then the return keeps its outbox row, the topology is declared again, and the payment still settles', async () => {
    await deleteQueue(suite.t.app.names.delayQueue(0)); // a 1 s timer enters level 0 only
    const before = await returnsCounted();
    const created = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 1 }));
    expect(created.status).toBe(201);
    const id = await internalIdOf(suite.db, created.body.id);

    await waitFor('the return to be counted', async () => (await returnsCounted()) > before, 10000, 50);
    // The broker confirmed nothing it could route: the row holding the timer is still there.
    // (The relay takes rows older than relayMinAgeMs, 1 s in tests, so it is still there now.)
    const rows = await suite.db('outbox').where('message', 'like', `%"paymentId":${id}}%`).select('id');
    expect(rows.length).toBe(1);

    const closed = await untilClosed(created.body.id);
    expect(Date.parse(closed.closedAt)).toBeGreaterThanOrEqual(Date.parse(closed.expiresAt));
    await waitFor('the outbox row to be gone', async () => (await suite.db('outbox').where('message', 'like', `%"paymentId":${id}}%`).select('id')).length === 0, 10000);
  });

  it('when the compensation queue is deleted and the broker cancels the consumer, then the service declares it again, resubscribes, and timers settle', async () => {
    await deleteQueue(suite.t.app.names.compensationQueue);
    await waitFor('the resubscribe to be logged', () => suite.t.logs.some((l) => l.includes('the broker cancelled a consumer; resubscribing')), 10000, 50);
    const created = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 1 }));
    expect(created.status).toBe(201);
    await untilClosed(created.body.id);
    const queues = await amqpTest.conn.createChannel();
    const q = await queues.checkQueue(suite.t.app.names.compensationQueue);
    expect(q.consumerCount).toBeGreaterThanOrEqual(1);
    await queues.close();
  });
});
