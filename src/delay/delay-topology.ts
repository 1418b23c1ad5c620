import type { Channel, Options } from 'amqplib';
import type { Config } from '../config/config-schema';
import type { Destination, TopologyNames } from '../messaging/topology';
import { LEVEL_COUNT, levelBindingPattern, levelTtlSeconds } from '../messaging/delay-levels';

function queueArguments(config: Config['broker']): Record<string, unknown> {
  if (config.queueType === 'quorum') {
    // At-least-once dead-lettering needs reject-publish: a full queue refuses, never drops.
    return {
      'x-queue-type': 'quorum',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
      'x-max-length': config.delayQueueMaxLength,
    };
  }
  return { 'x-queue-type': 'classic', 'x-overflow': 'reject-publish', 'x-max-length': config.delayQueueMaxLength };
}

/**
 * Declares the delay levels: one topic exchange and one TTL queue per level, and the due
 * exchange below them. Idempotent; runs on every (re)connect. The queues behind the due exchange
 * belong to their components (declareDueQueue); src/app.ts declareTopology runs them all.
 *
 *   publish -> level-k exchange (k = highest set bit) --bit k set--> level-k queue (TTL 2^k s) --DLX--> level-(k-1) exchange
 *   level-j exchange --bit j clear--> level-(j-1) exchange (exchange-to-exchange, no wait)
 *   ... level-00 -> due exchange -> compensation / notification queues --past the delivery limit--> dead-letter exchange -> parking queue
 */
export interface DeclareOptions {
  /** A channel of its own for a declaration that may be refused (see assertWorkQueue). */
  openChannel?: () => Promise<Channel>;
  /** A work queue exists with older arguments (no delivery limit or dead-letter target). */
  onMismatch?: (queue: string, error: string) => void;
}

export async function declareDelayLevels(channel: Channel, names: TopologyNames, broker: Config['broker']): Promise<void> {
  const exchangeOptions: Options.AssertExchange = { durable: true };
  await channel.assertExchange(names.dueExchange, 'topic', exchangeOptions);
  for (let level = 0; level < LEVEL_COUNT; level++) {
    await channel.assertExchange(names.delayExchange(level), 'topic', exchangeOptions);
  }
  for (let level = 0; level < LEVEL_COUNT; level++) {
    const below = level === 0 ? names.dueExchange : names.delayExchange(level - 1);
    const queue = names.delayQueue(level);
    await channel.assertQueue(queue, {
      durable: true,
      arguments: {
        ...queueArguments(broker),
        'x-message-ttl': levelTtlSeconds(level) * 1000,
        'x-dead-letter-exchange': below, // no x-dead-letter-routing-key: the bits travel on
      },
    });
    await channel.bindQueue(queue, names.delayExchange(level), levelBindingPattern(level, true));
    await channel.bindExchange(below, names.delayExchange(level), levelBindingPattern(level, false));
  }
}

/**
 * A work queue: quorum, with a delivery limit that dead-letters a message that crashed or
 * stalled a consumer that often into the parking lot (parking/dead-letter-consumer.ts declares
 * that path); without it RabbitMQ 4.x would drop it after 20 redeliveries.
 */
export async function declareWorkQueue(channel: Channel, names: TopologyNames, broker: Config['broker'], queue: string, options: DeclareOptions = {}, extraArgs: Record<string, unknown> = {}): Promise<void> {
  const args =
    broker.queueType === 'quorum'
      ? {
          'x-queue-type': 'quorum',
          'x-delivery-limit': broker.workQueueDeliveryLimit,
          'x-dead-letter-exchange': names.deadLetterExchange,
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        }
      : { 'x-queue-type': 'classic', 'x-dead-letter-exchange': names.deadLetterExchange };
  await assertWorkQueue(channel, queue, { ...args, ...extraArgs }, options);
}

/** A work queue behind the due exchange, for the messages due at `destination`. */
export async function declareDueQueue(channel: Channel, names: TopologyNames, broker: Config['broker'], work: { queue: string; destination: Destination }, options: DeclareOptions = {}): Promise<void> {
  await declareWorkQueue(channel, names, broker, work.queue, options);
  await channel.bindQueue(work.queue, names.dueExchange, `#.${work.destination}`);
}

/**
 * A queue declared before the delivery limit existed has other arguments, and RabbitMQ refuses
 * to redeclare it (406 PRECONDITION_FAILED, which closes the channel). Try on a channel of its
 * own; on a mismatch, keep using the queue as it is and say loudly what it lacks.
 */
async function assertWorkQueue(channel: Channel, queue: string, args: Record<string, unknown>, options: DeclareOptions): Promise<void> {
  if (!options.openChannel) {
    await channel.assertQueue(queue, { durable: true, arguments: args });
    return;
  }
  const probe = await options.openChannel();
  probe.on('error', () => undefined);
  try {
    await probe.assertQueue(queue, { durable: true, arguments: args });
    await probe.close();
  } catch (err) {
    if ((err as { code?: number }).code !== 406) throw err;
    options.onMismatch?.(queue, (err as Error).message);
    await channel.checkQueue(queue);
  }
}

/** Removes everything src/app.ts declareTopology made; tests use it to clean up their prefix. */
export async function deleteTopology(channel: Channel, names: TopologyNames): Promise<void> {
  await channel.deleteQueue(names.compensationQueue);
  await channel.deleteQueue(names.notificationQueue);
  await channel.deleteQueue(names.intakeQueue);
  await channel.deleteExchange(names.intakeExchange);
  await channel.deleteExchange(names.eventsExchange);
  await channel.deleteQueue(names.deadLetterQueue);
  await channel.deleteExchange(names.deadLetterExchange);
  for (let level = 0; level < LEVEL_COUNT; level++) {
    await channel.deleteQueue(names.delayQueue(level));
    await channel.deleteExchange(names.delayExchange(level));
  }
  await channel.deleteExchange(names.dueExchange);
}
