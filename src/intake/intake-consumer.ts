import type { Channel } from 'amqplib';
import type { Config } from '../config/config-schema';
import { declareWorkQueue, type DeclareOptions } from '../delay/delay-topology';
import { startMessageConsumer, type BatchingConsumer } from '../infra/batching-consumer';
import type { Broker } from '../infra/broker';
import { INTAKE_KEYS, type TopologyNames } from '../messaging/topology';
import type { Logger } from '../shared/logger';
import type { IntakeService } from './intake-service';

/** The intake exchange and queue checkouts publish to, and the events exchange outcomes go to. */
export async function declareIntakeQueue(channel: Channel, names: TopologyNames, config: Pick<Config, 'broker' | 'intake' | 'http'>, options: DeclareOptions = {}): Promise<void> {
  await channel.assertExchange(names.intakeExchange, 'topic', { durable: true });
  await channel.assertExchange(names.eventsExchange, 'topic', { durable: true });
  // Bounded in count and bytes: a flood from one publisher fills this queue, whose overflow
  // refuses publishes (the checkout's confirm is a nack), never the broker's disk.
  const bounds = { 'x-overflow': 'reject-publish', 'x-max-length': config.intake.maxQueued, 'x-max-length-bytes': config.intake.maxQueued * config.http.bodyLimitBytes };
  await declareWorkQueue(channel, names, config.broker, names.intakeQueue, options, bounds);
  await channel.bindQueue(names.intakeQueue, names.intakeExchange, INTAKE_KEYS.create);
}

/**
 * Batches of one, `intake.prefetch` in flight: each intent is one create, and creates that
 * arrive together already share one transaction (payments-service.ts, group commit).
 */
export function startIntakeConsumer(deps: { broker: Broker; names: TopologyNames; config: Config; service: IntakeService; logger: Logger }): Promise<BatchingConsumer> {
  return startMessageConsumer({
    broker: deps.broker,
    queue: deps.names.intakeQueue,
    prefetch: deps.config.intake.prefetch,
    logger: deps.logger,
    handle: (delivery) => deps.service.handle(delivery),
    onPoison: (delivery, error) => deps.service.parkPoison(delivery, error),
  });
}
