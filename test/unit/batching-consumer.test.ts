import { PassThrough } from 'node:stream';
import type { ConsumeMessage } from 'amqplib';
import type { Broker, Delivery } from '../../src/infra/broker';
import { failureKindOf, startBatchingConsumer } from '../../src/infra/batching-consumer';
import { createLogger } from '../../src/shared/logger';

/**
 * The consumer's batching decisions, with an in-memory broker that hands deliveries over by hand
 * (the broker's own behaviour, acks and redelivery, is tested against RabbitMQ in
 * test/integration/broker-acks.test.ts).
 */
function fakeBroker() {
  let onDelivery: ((d: Delivery) => void) | undefined;
  let cancelled = false;
  const broker = {
    consume: async (_queue: string, _prefetch: number, handler: (d: Delivery) => void) => {
      onDelivery = handler;
      return {
        cancel: async () => {
          cancelled = true;
        },
      };
    },
  } as unknown as Broker;
  const deliver = (n: number): Delivery => {
    let settled = false;
    const d: Delivery = {
      message: { content: Buffer.from(String(n)) } as ConsumeMessage,
      get settled() {
        return settled;
      },
      ack: () => {
        settled = true;
      },
      reject: () => {
        settled = true;
      },
    };
    onDelivery?.(d);
    return d;
  };
  return { broker, deliver, cancelled: () => cancelled };
}

/** A handleBatch whose batches the test finishes by hand, recording what each held. */
function controlledBatches() {
  const batches: number[][] = [];
  const finish: Array<(err?: Error) => void> = [];
  const handleBatch = (deliveries: Delivery[]) => {
    batches.push(deliveries.map((d) => Number(d.message.content.toString())));
    return new Promise<void>((resolve, reject) =>
      finish.push((err) => {
        if (err) return reject(err);
        for (const d of deliveries) d.ack();
        resolve();
      }),
    );
  };
  return { batches, finish, handleBatch };
}

const logger = createLogger({ level: 'error', stream: new PassThrough() });
const turn = () => new Promise((resolve) => setImmediate(resolve));

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 2 s');
    await turn();
  }
}

describe('startBatchingConsumer (group commit of deliveries)', () => {
  it('when a delivery arrives at an idle consumer with batchWaitMs 0, then its batch starts in the next turn, without a timer', async () => {
    const { broker, deliver } = fakeBroker();
    const { batches, finish, handleBatch } = controlledBatches();
    await startBatchingConsumer({ broker, queue: 'q', prefetch: 20, batchSize: 10, batchWaitMs: 0, logger, handleBatch });
    deliver(1);
    deliver(2); // the same socket read: joins the batch
    expect(batches).toEqual([]);
    await turn();
    expect(batches).toEqual([[1, 2]]);
    finish[0]?.();
  });

  it('when every slot is busy, then later deliveries wait and go together as one batch once a slot frees', async () => {
    const { broker, deliver } = fakeBroker();
    const { batches, finish, handleBatch } = controlledBatches();
    // prefetch 6 / batchSize 3: two batches at once
    await startBatchingConsumer({ broker, queue: 'q', prefetch: 6, batchSize: 3, batchWaitMs: 0, logger, handleBatch });
    deliver(1);
    await turn();
    deliver(2);
    await turn();
    expect(batches).toEqual([[1], [2]]);
    deliver(3);
    deliver(4);
    await turn();
    await turn();
    expect(batches).toHaveLength(2); // both slots busy: 3 and 4 wait
    finish[0]?.();
    await until(() => batches.length === 3);
    expect(batches[2]).toEqual([3, 4]);
    finish[1]?.();
    finish[2]?.();
  });

  it('when batchSize deliveries are buffered, then they start at once as a full batch', async () => {
    const { broker, deliver } = fakeBroker();
    const { batches, finish, handleBatch } = controlledBatches();
    await startBatchingConsumer({ broker, queue: 'q', prefetch: 10, batchSize: 3, batchWaitMs: 60_000, logger, handleBatch });
    deliver(1);
    deliver(2);
    expect(batches).toEqual([]);
    deliver(3);
    expect(batches).toEqual([[1, 2, 3]]);
    finish[0]?.();
  });

  it('when batchWaitMs is set, then a lone delivery waits that long for others before its batch starts', async () => {
    const { broker, deliver } = fakeBroker();
    const { batches, finish, handleBatch } = controlledBatches();
    await startBatchingConsumer({ broker, queue: 'q', prefetch: 10, batchSize: 5, batchWaitMs: 30, logger, handleBatch });
    const t0 = Date.now();
    deliver(1);
    await turn();
    expect(batches).toEqual([]);
    await until(() => batches.length === 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    finish[0]?.();
  });

  it('when a batch fails, then it is retried with only the deliveries it did not settle', async () => {
    const { broker, deliver } = fakeBroker();
    const batches: number[][] = [];
    let calls = 0;
    const handleBatch = async (deliveries: Delivery[]) => {
      batches.push(deliveries.map((d) => Number(d.message.content.toString())));
      if (calls++ === 0) {
        deliveries[0]?.ack(); // settled before the failure
        throw new Error('database down');
      }
      for (const d of deliveries) d.ack();
    };
    await startBatchingConsumer({ broker, queue: 'q', prefetch: 10, batchSize: 5, batchWaitMs: 0, logger, handleBatch });
    deliver(1);
    deliver(2);
    await until(() => batches.length === 2);
    expect(batches).toEqual([[1, 2], [2]]);
  });

  it('when stopped, then it cancels the subscription, settles what is buffered at once and waits for it', async () => {
    const { broker, deliver, cancelled } = fakeBroker();
    const { batches, finish, handleBatch } = controlledBatches();
    const consumer = await startBatchingConsumer({ broker, queue: 'q', prefetch: 10, batchSize: 5, batchWaitMs: 60_000, logger, handleBatch });
    const buffered = [deliver(1), deliver(2)];
    expect(batches).toEqual([]); // waiting for more, up to a minute
    let stopped = false;
    const stopping = consumer.stop().then(() => {
      stopped = true;
    });
    await until(() => batches.length === 1);
    expect([cancelled(), batches[0], stopped]).toEqual([true, [1, 2], false]);
    finish[0]?.();
    await stopping;
    expect(buffered.map((d) => d.settled)).toEqual([true, true]);
  });
});

describe('the batching consumer with a poison message', () => {
  const logger = createLogger({ level: 'error', stream: new PassThrough() });

  /** handleBatch fails any batch holding message 13 (before acking anything), and acks the rest. */
  const poisonedBy13 = (calls: number[][]) => async (deliveries: Delivery[]) => {
    calls.push(deliveries.map((d) => Number(d.message.content.toString())));
    if (deliveries.some((d) => d.message.content.toString() === '13')) throw new Error('poison');
    for (const d of deliveries) d.ack();
  };

  it('when one message always fails, then after the attempt cap the batch is split, the others settle and only it is poisoned', async () => {
    const { broker, deliver } = fakeBroker();
    const calls: number[][] = [];
    const poisoned: string[] = [];
    const consumer = await startBatchingConsumer({
      broker, queue: 'q', prefetch: 8, batchSize: 8, batchWaitMs: 1, logger, maxAttempts: 2,
      handleBatch: poisonedBy13(calls),
      onPoison: async (d) => {
        poisoned.push(d.message.content.toString());
        d.ack();
      },
    });
    const deliveries = [10, 11, 12, 13, 14, 15, 16, 17].map(deliver);
    const deadline = Date.now() + 20000;
    while (!deliveries.every((d) => d.settled) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(deliveries.every((d) => d.settled)).toBe(true);
    expect(poisoned).toEqual(['13']);
    // Every batch that held 13 failed; 13 was tried alone before it was poisoned.
    expect(calls).toContainEqual([13]);
    await consumer.stop();
  });

  it('when a message fails in a way that never passes (a value the database refuses), then it is parked without waiting out the attempt cap', async () => {
    const { broker, deliver } = fakeBroker();
    const calls: number[][] = [];
    const poisoned: string[] = [];
    const consumer = await startBatchingConsumer({
      broker, queue: 'q', prefetch: 4, batchSize: 4, batchWaitMs: 1, logger, maxAttempts: 1000,
      classify: failureKindOf,
      handleBatch: async (deliveries) => {
        calls.push(deliveries.map((d) => Number(d.message.content.toString())));
        if (deliveries.some((d) => d.message.content.toString() === '13')) throw Object.assign(new Error('Data too long'), { errno: 1406 });
        for (const d of deliveries) d.ack();
      },
      onPoison: async (d) => {
        poisoned.push(d.message.content.toString());
        d.ack();
      },
    });
    const deliveries = [12, 13, 14, 15].map(deliver);
    const deadline = Date.now() + 20000;
    while (!deliveries.every((d) => d.settled) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(poisoned).toEqual(['13']);
    // One failure per split: [12..15], then a half with 13, then 13 alone; never a backoff retry.
    expect(calls.filter((c) => c.includes(13))).toEqual([[12, 13, 14, 15], [12, 13], [13]]);
    await consumer.stop();
  });

  it('when a failure passes with time (a lock conflict, the database away), then the classifier retries it in place', () => {
    expect(failureKindOf(Object.assign(new Error('deadlock'), { errno: 1213 }))).toBe('retry');
    expect(failureKindOf(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('retry');
    expect(failureKindOf(new Error('anything else'))).toBe('retry');
    expect(failureKindOf(Object.assign(new Error('Data too long'), { errno: 1406 }))).toBe('park');
  });

  it('when the poisoned message cannot be parked, then it stays unacked and is tried again', async () => {
    const { broker, deliver } = fakeBroker();
    let parkTries = 0;
    const consumer = await startBatchingConsumer({
      broker, queue: 'q', prefetch: 1, batchSize: 1, batchWaitMs: 1, logger, maxAttempts: 1,
      handleBatch: poisonedBy13([]),
      onPoison: async () => {
        parkTries++;
        throw new Error('database down');
      },
    });
    const d = deliver(13);
    const deadline = Date.now() + 20000;
    while (parkTries < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(parkTries).toBeGreaterThanOrEqual(3);
    expect(d.settled).toBe(false);
    await consumer.stop();
  });
});
