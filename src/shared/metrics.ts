import client from 'prom-client';

/** Every metric the service exports, on one registry per app (tests build several apps). */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    httpRequests: new client.Histogram({
      name: 'compensator_http_request_duration_seconds',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    paymentsCreated: new client.Counter({
      name: 'compensator_payments_created_total',
      help: 'Payments created (not counting idempotent repeats)',
      labelNames: ['channel'],
      registers: [registry],
    }),
    transitions: new client.Counter({
      name: 'compensator_transitions_total',
      help: 'Payment state transitions by from, to and cause',
      labelNames: ['from', 'to', 'cause'],
      registers: [registry],
    }),
    timerLateness: new client.Histogram({
      name: 'compensator_timer_lateness_seconds',
      help: 'Settlement time minus the payment deadline, for timers that settled a payment (the headline SLO)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    publishReturns: new client.Counter({
      name: 'compensator_publish_returns_total',
      help: 'Mandatory publishes the broker returned as unroutable (a queue or binding missing); the outbox keeps them and the topology is declared again',
      labelNames: ['exchange'],
      registers: [registry],
    }),
    lockRetries: new client.Counter({
      name: 'compensator_db_lock_retries_total',
      help: 'Transactions retried after a deadlock (1213) or lock-wait timeout (1205)',
      labelNames: ['where'],
      registers: [registry],
    }),
    createBatchSeconds: new client.Histogram({
      name: 'compensator_create_batch_seconds',
      help: 'Group-commit batches of creates, by phase: wait (its oldest create, from the request to the batch start), transaction (to commit, when the answers go out) and publish (its timers, until the broker confirms; the batch holds its slot until then)',
      labelNames: ['phase'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    createBatchSize: new client.Histogram({
      name: 'compensator_create_batch_size',
      help: 'Creates per group-commit batch',
      buckets: [1, 2, 5, 10, 25, 50, 100],
      registers: [registry],
    }),
    batchSize: new client.Histogram({
      name: 'compensator_consumer_batch_size',
      help: 'Deliveries per settled batch',
      labelNames: ['consumer'],
      buckets: [1, 5, 10, 25, 50, 100, 200, 500],
      registers: [registry],
    }),
    remedyOutcomes: new client.Counter({
      name: 'compensator_remedy_outcomes_total',
      help: 'Channel query results by channel and result',
      labelNames: ['channel', 'result'],
      registers: [registry],
    }),
    retries: new client.Counter({
      name: 'compensator_retries_total',
      help: 'Items re-scheduled for a later attempt, by purpose and the attempt scheduled',
      labelNames: ['purpose', 'attempt'],
      registers: [registry],
    }),
    parked: new client.Counter({
      name: 'compensator_parked_total',
      help: 'Items parked for a person (alert on any increase), by purpose and reason',
      labelNames: ['purpose', 'reason'],
      registers: [registry],
    }),
    intents: new client.Counter({
      name: 'compensator_intents_total',
      help: 'Payment intents consumed from RabbitMQ, by outcome (created, repeat, rejected)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    notifications: new client.Counter({
      name: 'compensator_notifications_total',
      help: 'Merchant notification attempts by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    outboxPending: new client.Gauge({
      name: 'compensator_outbox_pending',
      help: 'Outbox rows not yet published (all replicas; a row holds one transaction\'s messages); grows while the broker is down',
      registers: [registry],
    }),
    outboxOldestAge: new client.Gauge({
      name: 'compensator_outbox_oldest_age_seconds',
      help: 'Age of the oldest unpublished outbox row; alert when it exceeds a minute',
      registers: [registry],
    }),
    brokerConnected: new client.Gauge({
      name: 'compensator_broker_connected',
      help: '1 while this process holds a broker connection',
      registers: [registry],
    }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
