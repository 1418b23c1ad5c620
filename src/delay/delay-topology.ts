import type { Channel, Options } from 'amqplib';
import type { Config } from '../config/config-schema';
import { DESTINATIONS, type TopologyNames } from '../infra/broker-topology';
import { LEVEL_COUNT, levelBindingPattern, levelTtlSeconds } from './delay-levels';

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
 * Declares the fixed topology: one topic exchange and one TTL queue per delay level, the due
 * exchange, and the work queues behind it. Idempotent; runs on every (re)connect.
 *
 *   publish -> level-k exchange (k = highest set bit) --bit k set--> level-k queue (TTL 2^k s) --DLX--> level-(k-1) exchange
 *   level-j exchange --bit j clear--> level-(j-1) exchange (exchange-to-exchange, no wait)
 *   ... level-00 -> due exchange -> compensation / notification queues
 */
export async function declareTopology(channel: Channel, names: TopologyNames, broker: Config['broker']): Promise<void> {
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
  const workQueueArgs = broker.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : { 'x-queue-type': 'classic' };
  await channel.assertQueue(names.compensationQueue, { durable: true, arguments: workQueueArgs });
  await channel.bindQueue(names.compensationQueue, names.dueExchange, `#.${DESTINATIONS.paymentTimer}`);
  await channel.assertQueue(names.notificationQueue, { durable: true, arguments: workQueueArgs });
  await channel.bindQueue(names.notificationQueue, names.dueExchange, `#.${DESTINATIONS.notification}`);
}

/** Removes everything declareTopology made; tests use it to clean up their prefix. */
export async function deleteTopology(channel: Channel, names: TopologyNames): Promise<void> {
  await channel.deleteQueue(names.compensationQueue);
  await channel.deleteQueue(names.notificationQueue);
  for (let level = 0; level < LEVEL_COUNT; level++) {
    await channel.deleteQueue(names.delayQueue(level));
    await channel.deleteExchange(names.delayExchange(level));
  }
  await channel.deleteExchange(names.dueExchange);
}
