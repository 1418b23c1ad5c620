import { randomUUID } from 'node:crypto';
import { HEADERS } from '../../src/messaging/topology';
import { insertPendingPayments } from '../helpers/fixtures';
import { testConfig, useAmqpConnection, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/**
 * A message that a worker crashes on is redelivered; past the work queue's delivery limit it
 * must land in the parking lot, never be dropped (RabbitMQ 4.x drops it by default).
 */
describe('the work queues\' delivery limit', () => {
  // An api process: it declares the topology and parks dead letters, but consumes no timers,
  // so the test plays the crashing worker itself.
  const config = testConfig({ role: 'api', broker: { workQueueDeliveryLimit: 2 } });
  const suite = useTestApp(config);
  const amqpTest = useAmqpConnection(config);

  it('when a timer is redelivered past the delivery limit, then it is dead-lettered into the parking lot with its payment id', async () => {
    const [paymentId] = await insertPendingPayments(suite.db, 1, new Date(Date.now() - 1000));
    const marker = randomUUID();
    const ch = await amqpTest.conn.createChannel();
    const queue = suite.t.app.names.compensationQueue;
    let deliveries = 0;
    await ch.prefetch(1);
    const { consumerTag } = await ch.consume(queue, (m) => {
      if (!m) return;
      deliveries++;
      ch.nack(m, false, true); // what a crash does: back to the queue
    });
    ch.sendToQueue(queue, Buffer.from(JSON.stringify({ paymentId, deadline: Date.now() - 1000, attempt: 1, marker })), { persistent: true, headers: { [HEADERS.attempt]: 1 } });

    const parked = await waitFor('the message to be parked past the limit', async () => {
      return suite.db('parked_items').where('message', 'like', `%${marker}%`).first();
    }, 15000, 100);
    await ch.cancel(consumerTag);
    await ch.close();
    expect(parked).toEqual(expect.objectContaining({ purpose: 'compensation', reason: 'delivery_limit', payment_id: paymentId }));
    // Delivered once and redelivered up to the limit, then no more.
    expect(deliveries).toBeGreaterThanOrEqual(2);
    expect(deliveries).toBeLessThanOrEqual(3);
    const q = await amqpTest.conn.createChannel();
    expect((await q.checkQueue(queue)).messageCount).toBe(0);
    await q.close();
  });
});
