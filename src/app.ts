import type { Channel } from 'amqplib';
import express from 'express';
import helmet from 'helmet';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/config-schema';
import { createAdminRoutes } from './admin/admin-routes';
import { createParkingService } from './parking/parking-service';
import { declareNotificationQueue, startNotificationConsumer } from './notifications/notification-consumer';
import { createNotificationService } from './notifications/notification-service';
import { createChannelNotifyRoutes } from './channels/channel-notify-routes';
import { createAdapters } from './channels/create-adapters';
import type { ChannelAdapter } from './channels/channel-adapter';
import { declareCompensationQueue, startCompensationConsumer } from './compensation/compensation-consumer';
import { createCompensationService } from './compensation/compensation-service';
import { createDelayScheduler } from './delay/delay-scheduler';
import { declareDelayLevels, type DeclareOptions } from './delay/delay-topology';
import { createBroker } from './infra/broker';
import { declareIntakeQueue, startIntakeConsumer } from './intake/intake-consumer';
import { createIntakeService } from './intake/intake-service';
import { createTopologyNames, type TopologyNames } from './messaging/topology';
import { createDatabase } from './infra/database';
import { createBacklogReader } from './ops/backlog';
import { createMetrics } from './shared/metrics';
import { createOpsPageRoutes } from './ops/ops-page-routes';
import { createHealthRoutes, createMetricsRoutes } from './ops/ops-routes';
import { createOpenApiRoutes } from './openapi/openapi-routes';
import { createSecretBox } from './merchants/merchant-credentials';
import { createMerchantsRepository } from './merchants/merchants-repository';
import { createMerchantsRoutes } from './merchants/merchants-routes';
import { createMerchantsService } from './merchants/merchants-service';
import { createOutbox } from './outbox/outbox';
import { declareDeadLetterQueue, startDeadLetterConsumer } from './parking/dead-letter-consumer';
import { createParkingRepository } from './parking/parking-repository';
import { createPaymentTimeline } from './payments/payment-timeline';
import { createPaymentTransitions } from './payments/payment-transitions';
import { createPaymentsRepository } from './payments/payments-repository';
import { createPaymentsRoutes } from './payments/payments-routes';
import { createPaymentsService } from './payments/payments-service';
import { correlationMiddleware, errorHandler, jsonBodyMiddleware, metricsMiddleware, notFoundHandler } from './shared/http';
import { createLogger, type Logger } from './shared/logger';
import { createOutboundHttp } from './shared/outbound-http';
import { createShutdownRegistry } from './shared/shutdown';

/** The vhost of an AMQP URL: its path, "/" when empty. */
function vhostOf(amqpUrl: string): string {
  const path = decodeURIComponent(new URL(amqpUrl).pathname.slice(1));
  return path === '' ? '/' : path;
}

/**
 * The broker topology, each part declared by its owner, on every (re)connect and in every role
 * (an api must find the work queues bound, or its mandatory publishes come back): the delay
 * levels, then the parking lot's dead-letter path, then the work queues that dead-letter into it.
 */
export async function declareTopology(channel: Channel, names: TopologyNames, config: Config, options: DeclareOptions = {}): Promise<void> {
  const { broker } = config;
  await declareDelayLevels(channel, names, broker);
  await declareDeadLetterQueue(channel, names, broker);
  await declareCompensationQueue(channel, names, broker, options);
  await declareNotificationQueue(channel, names, broker, options);
  await declareIntakeQueue(channel, names, config, options);
}

export interface AppOverrides {
  logger?: Logger;
  adapters?: Map<string, ChannelAdapter>;
  now?: () => number;
}

/**
 * The composition root: builds every component in boot order, top to bottom. Nothing runs until
 * `start()`, which starts what the role needs; `stop()` closes everything in reverse.
 */
export function createApp(config: Config, overrides: AppOverrides = {}) {
  const logger = overrides.logger ?? createLogger({ level: config.log.level, pretty: config.env !== 'production' && process.stdout.isTTY });
  const shutdown = createShutdownRegistry({ logger: logger.child({ component: 'shutdown' }), timeoutMs: config.shutdown.timeoutMs });
  const metrics = createMetrics();

  // Infrastructure.
  const db = createDatabase({ config, shutdown });
  // Multi-statement queries only here: the create transaction's rounds (infra/database.ts).
  const roundsDb = createDatabase({ config, shutdown, poolMax: 4, multipleStatements: true });
  const names = createTopologyNames(config.broker.prefix);
  const broker = createBroker({
    urls: config.broker.urls,
    logger: logger.child({ component: 'broker' }),
    publishTimeoutMs: config.outbox.publishTimeoutMs,
    connectionName: `payment-compensator ${config.role} ${process.pid}`,
    onReturn: (exchange) => metrics.publishReturns.inc({ exchange }),
  });
  broker.addSetup((channel, openChannel) =>
    declareTopology(channel, names, config, {
      openChannel,
      onMismatch: (queue, error) =>
        logger.error('a work queue predates its delivery limit and dead-letter target; drain and delete it so it is declared anew (RabbitMQ 4.x drops a message after 20 redeliveries without them)', { queue, error }),
    }),
  );
  shutdown.register('broker connection', () => broker.close());
  const scheduler = createDelayScheduler({ broker, names, now: overrides.now });
  const outbox = createOutbox({
    db,
    topology: config.broker.prefix,
    scheduler,
    logger: logger.child({ component: 'outbox' }),
    relayIntervalMs: config.outbox.relayIntervalMs,
    relayMinAgeMs: config.outbox.relayMinAgeMs,
    relayBatchSize: config.outbox.relayBatchSize,
  });
  // Creates are answered at commit and their timers published just after: let those finish.
  shutdown.register('outbox publishes in flight', () => outbox.idle());

  // Merchants: the tenants, their API keys and webhook secrets.
  const merchants = createMerchantsService({
    repository: createMerchantsRepository({ db }),
    secretBox: createSecretBox(Buffer.from(config.merchantSecretsKey, 'base64')),
    rotationOverlapSeconds: config.notifications.secretRotationOverlapSeconds,
    keyCacheMs: config.http.apiKeyCacheMs,
    onUnreadableSecret: (merchantId, secretId) => logger.error('a webhook secret does not open with MERCHANT_SECRETS_KEY', { merchantId, secretId }),
    now: overrides.now,
  });

  // Payments (intake and callbacks).
  const repository = createPaymentsRepository({ db });
  const transitions = createPaymentTransitions({ repository, outbox, metrics });
  const payments = createPaymentsService({
    config,
    db,
    roundsDb,
    repository,
    transitions,
    outbox,
    onLockRetry: () => metrics.lockRetries.inc({ where: 'callback' }),
    onCreateBatch: (batch) => {
      metrics.createBatchSize.observe(batch.size);
      metrics.createBatchSeconds.observe({ phase: 'wait' }, batch.waitSec);
      metrics.createBatchSeconds.observe({ phase: 'transaction' }, batch.transactionSec);
      metrics.createBatchSeconds.observe({ phase: 'publish' }, batch.publishSec);
    },
  });
  const parking = createParkingRepository({ db });
  // Payment intents over RabbitMQ: the same create, acting with the key mapped to the publisher.
  const intake = createIntakeService({ broker, names, payments, merchants, parking, bodyLimitBytes: config.http.bodyLimitBytes, perKeyPerSecond: config.http.rateLimitPerKeyPerSecond, metrics, logger: logger.child({ component: 'intake' }) });

  // Outbound calls: merchants' endpoints and channel gateways are reached only through these
  // (private addresses refused in production, capped reads, per-host caps and breakers).
  const policy = { allowLoopback: config.env !== 'production', allowPrivateHosts: config.notifications.allowPrivateHosts };
  const merchantsHttp = createOutboundHttp({ policy, perHostConcurrency: config.notifications.perHostConcurrency });
  shutdown.register('merchant http client', () => merchantsHttp.close());
  // One gateway per channel serves every remedy call: its cap is the batch's channel concurrency.
  // Channel answers are read up to 16 KiB: a transaction with its promotion details runs long,
  // and a cut answer would fail its signature check (wechatpay-adapter.ts).
  const channelsHttp = createOutboundHttp({ policy, perHostConcurrency: config.worker.channelConcurrency * 4, breakerFailures: 50, breakerOpenMs: 5000, maxResponseBytes: 16 * 1024 });
  shutdown.register('channel http client', () => channelsHttp.close());

  // Compensation worker.
  const compensation = createCompensationService({
    config,
    db,
    repository,
    transitions,
    parking,
    scheduler,
    outbox,
    adapters: overrides.adapters ?? createAdapters(config, channelsHttp),
    metrics,
    logger: logger.child({ component: 'compensation' }),
    now: overrides.now,
  });

  // Merchant notifications.
  const notifications = createNotificationService({ config, scheduler, parking, merchants, payments: repository, http: merchantsHttp, metrics, logger: logger.child({ component: 'notifications' }), now: overrides.now });

  // Where a payment is: its events and what the parking lot holds for it.
  const timeline = createPaymentTimeline({ payments: repository, parkedOf: (paymentId) => parking.ofPayment(paymentId) });

  // Admin.
  const parkingService = createParkingService({ parking, payments: repository, scheduler });
  const backlog = createBacklogReader({ managementUrl: config.broker.managementUrl, vhost: vhostOf(config.broker.urls[0] as string), names });

  // HTTP. With ADMIN_PORT set, the admin API, the ops page and /metrics have a listener of
  // their own (ADMIN_HOST, loopback by default) and the public one answers them 404; unset,
  // one listener serves everything (local development). A worker serves only health and metrics.
  const httpLogger = logger.child({ component: 'http' });
  const adminApart = config.http.adminPort !== undefined;
  function baseApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    // nosniff, no framing, no referrer; the ops page sets its own hash-based CSP.
    app.use(helmet({ contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }));
    app.use(correlationMiddleware());
    app.use(metricsMiddleware(metrics));
    return app;
  }
  function finish(app: express.Express): express.Express {
    app.use(notFoundHandler());
    app.use(errorHandler(httpLogger));
    return app;
  }
  function mountAdmin(app: express.Express): void {
    app.use(createMetricsRoutes({ db, broker, metrics }));
    app.use(createOpsPageRoutes());
  }
  function mountAdminApi(app: express.Express): void {
    app.use(createMerchantsRoutes({ adminToken: config.adminToken, merchants, logger: logger.child({ component: 'merchants' }) }));
    app.use(createAdminRoutes({ adminToken: config.adminToken, parking: parkingService, backlog, payments: repository, timeline, logger: logger.child({ component: 'admin' }) }));
  }

  const http = baseApp();
  http.use(createHealthRoutes({ db, broker, details: !adminApart }));
  http.use(createOpenApiRoutes());
  if (!adminApart) mountAdmin(http);
  // The channels' native notifications take their own bodies, before the JSON-only middleware.
  http.use(createChannelNotifyRoutes({ config, payments, logger: logger.child({ component: 'channels' }), now: overrides.now }));
  http.use(jsonBodyMiddleware(config.http.bodyLimitBytes));
  http.use(createPaymentsRoutes({ service: payments, merchants, timeline, cancel: (payment) => compensation.cancel(payment), logger: logger.child({ component: 'payments' }), metrics, perKeyPerSecond: config.http.rateLimitPerKeyPerSecond }));
  if (!adminApart) mountAdminApi(http);
  finish(http);

  const adminHttp = baseApp();
  adminHttp.use(createHealthRoutes({ db, broker, details: true }));
  mountAdmin(adminHttp);
  adminHttp.use(jsonBodyMiddleware(config.http.bodyLimitBytes));
  mountAdminApi(adminHttp);
  finish(adminHttp);

  // A worker: health on PORT, and metrics there too unless the admin side has its own port.
  const workerHttp = baseApp();
  workerHttp.use(createHealthRoutes({ db, broker, details: !adminApart }));
  if (!adminApart) workerHttp.use(createMetricsRoutes({ db, broker, metrics }));
  finish(workerHttp);
  const workerAdminHttp = baseApp();
  workerAdminHttp.use(createHealthRoutes({ db, broker, details: true }));
  workerAdminHttp.use(createMetricsRoutes({ db, broker, metrics }));
  finish(workerAdminHttp);

  async function listen(app: express.Express, port: number, host?: string): Promise<number> {
    const server = await new Promise<Server>((resolve, reject) => {
      // Express 5 hands listen errors (EADDRINUSE) to this callback rather than emitting them.
      const s = host === undefined ? app.listen(port, (err?: Error) => (err ? reject(err) : resolve(s))) : app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    shutdown.register('http server', () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve()); // in-flight requests finish; new ones are refused
        server.closeIdleConnections();
      }),
    );
    return (server.address() as AddressInfo).port;
  }

  return {
    config,
    logger,
    db,
    broker,
    names,
    metrics,
    http,
    payments,
    merchants,
    outbox,
    parking: parkingService,
    /** Starts the role's parts. The api answers even while the broker is down (the outbox holds timers). */
    async start(): Promise<{ port?: number; adminPort?: number }> {
      const role = config.role;
      const connected = await broker.start(role === 'api' ? 3000 : 15000);
      if (!connected) logger.warn('broker not reachable yet; reconnecting in the background');
      if (role === 'worker' || role === 'all') {
        const consumer = await startCompensationConsumer({ broker, names, config, service: compensation, metrics, logger: logger.child({ component: 'compensation' }) });
        shutdown.register('compensation consumer', () => consumer.stop());
        const notifier = await startNotificationConsumer({ broker, names, config, service: notifications, logger: logger.child({ component: 'notifications' }) });
        shutdown.register('notification consumer', () => notifier.stop());
      }
      if (role === 'api' || role === 'all') {
        const intents = await startIntakeConsumer({ broker, names, config, service: intake, logger: logger.child({ component: 'intake' }) });
        shutdown.register('intake consumer', () => intents.stop());
      }
      // What the work queues dead-letter is parked by every role: it is rare and must never wait.
      const deadLetters = await startDeadLetterConsumer({ broker, names, parking, metrics, logger: logger.child({ component: 'parking' }) });
      shutdown.register('dead-letter consumer', () => deadLetters.stop());
      // Every role writes to the outbox (creates, callbacks, settlements), so every role relays.
      // Registered after the consumers, so it stops before them (steps run last-registered
      // first) and a pass in progress finishes while the broker is still there.
      const stopRelay = outbox.startRelay();
      shutdown.register('outbox relay', stopRelay);
      const port = await listen(role === 'worker' ? workerHttp : http, config.http.port);
      const adminPort = config.http.adminPort === undefined ? undefined : await listen(role === 'worker' ? workerAdminHttp : adminHttp, config.http.adminPort, config.http.adminHost);
      logger.info(role === 'worker' ? 'started' : 'http listening', { port, adminPort, adminHost: adminPort === undefined ? undefined : config.http.adminHost, role });
      return { port, adminPort };
    },
    stop: (reason = 'stop') => shutdown.shutdown(reason),
  };
}
export type App = ReturnType<typeof createApp>;
