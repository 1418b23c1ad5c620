import type { Config } from '../config/config-schema';
import { startMessageConsumer, type BatchingConsumer } from '../infra/batching-consumer';
import type { Channel } from 'amqplib';
import { declareDueQueue, type DeclareOptions } from '../delay/delay-topology';
import type { Broker } from '../infra/broker';
import { DESTINATIONS, type TopologyNames } from '../messaging/topology';
import type { Logger } from '../shared/logger';
import type { NotificationService } from './notification-service';

/** The notification queue: every merchant notification at its (re)try time. */
export function declareNotificationQueue(channel: Channel, names: TopologyNames, broker: Config['broker'], options: DeclareOptions = {}): Promise<void> {
  return declareDueQueue(channel, names, broker, { queue: names.notificationQueue, destination: DESTINATIONS.notification }, options);
}

/**
 * Its own queue and consumer, so a slow merchant never slows compensation down. Batches of one:
 * each delivery is an independent HTTP call, `prefetch` of them in flight.
 */
export function startNotificationConsumer(deps: {
  broker: Broker;
  names: TopologyNames;
  config: Config;
  service: NotificationService;
  logger: Logger;
}): Promise<BatchingConsumer> {
  return startMessageConsumer({
    broker: deps.broker,
    queue: deps.names.notificationQueue,
    prefetch: deps.config.notifications.prefetch,
    logger: deps.logger,
    handle: (delivery) => deps.service.handle(delivery),
    onPoison: (delivery, error) => deps.service.parkPoison(delivery, error),
  });
}
