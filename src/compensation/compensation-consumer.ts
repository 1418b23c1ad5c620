import type { Channel } from 'amqplib';
import { declareDueQueue, type DeclareOptions } from '../delay/delay-topology';
import type { Broker } from '../infra/broker';
import { failureKindOf, startBatchingConsumer, type BatchingConsumer } from '../infra/batching-consumer';
import { DESTINATIONS, type TopologyNames } from '../messaging/topology';
import type { Config } from '../config/config-schema';
import type { Metrics } from '../shared/metrics';
import type { Logger } from '../shared/logger';
import type { CompensationService } from './compensation-service';

/** The compensation queue: every payment timer at its deadline. */
export function declareCompensationQueue(channel: Channel, names: TopologyNames, broker: Config['broker'], options: DeclareOptions = {}): Promise<void> {
  return declareDueQueue(channel, names, broker, { queue: names.compensationQueue, destination: DESTINATIONS.paymentTimer }, options);
}

/** Subscribes the compensation queue: due timers in batches into the compensation service. */
export function startCompensationConsumer(deps: {
  broker: Broker;
  names: TopologyNames;
  config: Config;
  service: CompensationService;
  metrics: Metrics;
  logger: Logger;
}): Promise<BatchingConsumer> {
  return startBatchingConsumer({
    broker: deps.broker,
    queue: deps.names.compensationQueue,
    prefetch: deps.config.worker.prefetch,
    batchSize: deps.config.worker.batchSize,
    batchWaitMs: deps.config.worker.batchWaitMs,
    logger: deps.logger,
    handleBatch: (deliveries) => deps.service.handleBatch(deliveries),
    onPoison: (delivery, error) => deps.service.parkPoison(delivery, error),
    classify: failureKindOf,
    onBatch: (size) => deps.metrics.batchSize.observe({ consumer: 'compensation' }, size),
  });
}
