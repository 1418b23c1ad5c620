import type { Channel } from 'amqplib';
import type { Config } from '../config/config-schema';
import { startBatchingConsumer, type BatchingConsumer } from '../infra/batching-consumer';
import type { Broker, Delivery } from '../infra/broker';
import type { TopologyNames } from '../messaging/topology';
import type { Metrics } from '../shared/metrics';
import type { Logger } from '../shared/logger';
import type { ParkedItemInput, ParkingRepository } from './parking-repository';

/** The payment id of a timer or notification body, when it has one. */
function paymentIdOf(content: Buffer): number | null {
  try {
    const id = (JSON.parse(content.toString('utf8')) as { paymentId?: unknown }).paymentId;
    return typeof id === 'number' && Number.isInteger(id) && id > 0 ? id : null;
  } catch {
    return null;
  }
}

/** Where the work queues dead-letter what passed their delivery limit, and its queue. */
export async function declareDeadLetterQueue(channel: Channel, names: TopologyNames, broker: Config['broker']): Promise<void> {
  await channel.assertExchange(names.deadLetterExchange, 'fanout', { durable: true });
  await channel.assertQueue(names.deadLetterQueue, { durable: true, arguments: { 'x-queue-type': broker.queueType } });
  await channel.bindQueue(names.deadLetterQueue, names.deadLetterExchange, '');
}

/**
 * Moves what the work queues dead-lettered (a message redelivered past the delivery limit: it
 * crashed or stalled a worker each time) into the parking lot, where a person can replay it.
 * Parked first, then acked: a crash in between parks it twice, never loses it.
 */
export function startDeadLetterConsumer(deps: { broker: Broker; names: TopologyNames; parking: ParkingRepository; metrics: Metrics; logger: Logger }): Promise<BatchingConsumer> {
  const { names } = deps;
  const toItem = (d: Delivery): ParkedItemInput => {
    const headers = d.message.properties.headers ?? {};
    const from = String(headers['x-first-death-queue'] ?? '');
    const purpose = from === names.notificationQueue ? 'notification' : from === names.intakeQueue ? 'intake' : 'compensation';
    const count = Number(headers['x-delivery-count'] ?? 0);
    return {
      purpose,
      reason: 'delivery_limit',
      paymentId: paymentIdOf(d.message.content),
      attempts: Number.isFinite(count) ? count : 0,
      lastError: `dead-lettered from ${from || 'a work queue'} (${String(headers['x-first-death-reason'] ?? 'unknown reason')})`,
      message: d.message.content.toString('utf8'),
      correlationId: d.message.properties.correlationId as string | undefined,
    };
  };
  return startBatchingConsumer({
    broker: deps.broker,
    queue: names.deadLetterQueue,
    prefetch: 50,
    batchSize: 50,
    batchWaitMs: 20,
    logger: deps.logger,
    handleBatch: async (deliveries) => {
      const items = deliveries.map(toItem);
      await deps.parking.park(items);
      for (const item of items) deps.metrics.parked.inc({ purpose: item.purpose, reason: item.reason });
      deps.logger.warn('messages past the delivery limit parked', { count: items.length, paymentIds: items.map((i) => i.paymentId) });
      for (const d of deliveries) d.ack();
    },
  });
}
