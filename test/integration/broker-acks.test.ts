import { PassThrough } from 'node:stream';
import { createBroker, type Broker, type Delivery } from '../../src/infra/broker';
import { createLogger } from '../../src/shared/logger';
import { testConfig } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

// Acks go out coalesced (one `multiple` frame per event-loop turn): these check that none is
// lost, none is sent twice (that would close the channel) and a held delivery blocks no others.
describe('consumer acks', () => {
  const config = testConfig();
  const queue = `${config.broker.prefix}.ack-test.${process.pid}`;
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(chunk.toString('utf8')));
  let broker: Broker;

  beforeAll(async () => {
    broker = createBroker({ urls: config.broker.urls, logger: createLogger({ level: 'warn', stream }), publishTimeoutMs: 5000 });
    expect(await broker.start(10000)).toBe(true);
    await broker.withChannel((ch) => ch.assertQueue(queue, { durable: false }));
  });
  afterAll(async () => {
    await broker.withChannel((ch) => ch.deleteQueue(queue)).catch(() => undefined);
    await broker.close();
  });

  async function publish(n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, (_, i) => broker.publish('', queue, Buffer.from(String(i)))));
  }
  /** Messages ready in the queue once the consumer is gone: unacked ones come back. */
  const ready = () => broker.withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);

  it('when deliveries are acked out of order and one is held back, then the others flow past the prefetch and none comes back', async () => {
    await publish(40);
    const received: Delivery[] = [];
    const handle = await broker.consume(queue, 10, (d) => {
      received.push(d);
      if (received.length === 1) return; // hold the first: a slow message
      // Ack in reverse pairs, so acks arrive out of delivery order.
      if (received.length % 2 === 1) {
        d.ack();
        received[received.length - 2]?.ack();
      }
    });
    // With a prefetch of 10, all 40 arrive only if the acks behind the held one were sent.
    await waitFor('all 40 deliveries', () => received.length === 40, 10000, 20);
    received[39]?.ack();
    received[0]?.ack();
    received[0]?.ack(); // a repeat ack is ignored, not sent twice
    expect(received.every((d) => d.settled)).toBe(true);
    await handle.cancel();
    // Closing and reopening the channel returns anything the broker still counts as unacked.
    await broker.close();
    broker = createBroker({ urls: config.broker.urls, logger: createLogger({ level: 'warn', stream }), publishTimeoutMs: 5000 });
    expect(await broker.start(10000)).toBe(true);
    expect(await ready()).toBe(0);
    expect(logs.join('')).not.toMatch(/closed channel|PRECONDITION|unknown delivery tag/i);
  });

  it('when a batch is acked and the broker is closed in the same turn, then the acks are written before the channel closes', async () => {
    await publish(25);
    const received: Delivery[] = [];
    await broker.consume(queue, 50, (d) => received.push(d));
    await waitFor('25 deliveries', () => received.length === 25, 10000, 20);
    // Still subscribed: close() closes this channel first, before any other await.
    received.forEach((d, i) => (i === 3 ? d.reject() : d.ack()));
    await broker.close(); // no event-loop turn in between: close flushes the pending acks itself
    broker = createBroker({ urls: config.broker.urls, logger: createLogger({ level: 'warn', stream }), publishTimeoutMs: 5000 });
    expect(await broker.start(10000)).toBe(true);
    expect(await ready()).toBe(0);
  });
});
