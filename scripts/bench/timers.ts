/**
 * Direct access for the scenarios that bypass the API: PENDING payments inserted straight into
 * the table (like test/helpers/fixtures.ts) and their timers published with the service's own
 * delay scheduler (like test/integration/workers.test.ts), on the run's prefix.
 */
import amqp from 'amqplib';
import type mysql from 'mysql2/promise';
import { loadConfig } from '../../src/config/config-loader';
import type { Config } from '../../src/config/config-schema';
import { createDelayScheduler, type DelayScheduler } from '../../src/delay/delay-scheduler';
import { declareTopology } from '../../src/app';
import { deleteTopology } from '../../src/delay/delay-topology';
import { createBroker, type Broker } from '../../src/infra/broker';
import { DESTINATIONS, HEADERS, createTopologyNames, type TopologyNames } from '../../src/messaging/topology';
import { TOP_LEVEL, delayRoutingKey } from '../../src/messaging/delay-levels';
import type { NewPayment } from '../../src/payments/payments-repository';
import { insertPaymentRows, newPaymentRow } from '../../test/helpers/fixtures';
import { createLogger } from '../../src/shared/logger';
import { checkAbort, promSum, waitFor } from './common';
import { AMQP_URL, appEnvironment, scrapeMetrics } from './environment';

export interface BenchBroker {
  config: Config;
  broker: Broker;
  names: TopologyNames;
  scheduler: DelayScheduler;
  close(): Promise<void>;
}

/** A broker connection with the apps' own broker config (same prefix, queue type, topology). */
export async function openBenchBroker(configFile: string, db: string): Promise<BenchBroker> {
  const { config } = loadConfig({ env: appEnvironment(configFile, db) });
  const logger = createLogger({ level: 'error' });
  const names = createTopologyNames(config.broker.prefix);
  const broker = createBroker({ urls: config.broker.urls, logger, publishTimeoutMs: 60000, connectionName: `bench publisher ${config.broker.prefix}` });
  broker.addSetup((channel) => declareTopology(channel, names, config));
  if (!(await broker.start(20000))) throw new Error('bench could not connect to RabbitMQ');
  const scheduler = createDelayScheduler({ broker, names });
  return { config, broker, names, scheduler, close: () => broker.close() };
}

/** Deletes a prefix's topology (queues with whatever they still hold); missing ones are fine. */
export async function deleteBenchTopology(prefix: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    await deleteTopology(ch, createTopologyNames(prefix));
    await ch.close();
  } finally {
    await conn.close().catch(() => undefined);
  }
}

export interface InsertOptions {
  merchantId: string;
  count: number;
  /** expires_at of row i (epoch ms). */
  expiresAt: (i: number) => number;
  status?: string;
  batch?: number;
  concurrency?: number;
  table?: string;
  /** order_id of row i is `o-${orderOffset + i}`; callers that insert in several calls move it on. */
  orderOffset?: number;
}

/** Multi-row INSERTs of PENDING payments; returns their ids in insertion order. */
export async function insertPayments(pool: mysql.Pool, o: InsertOptions): Promise<number[]> {
  const batch = o.batch ?? 1000;
  const table = o.table ?? 'payments';
  const ids: number[] = new Array<number>(o.count);
  let next = 0;
  await Promise.all(
    Array.from({ length: o.concurrency ?? 2 }, async () => {
      for (;;) {
        checkAbort();
        const start = next;
        if (start >= o.count) return;
        next += batch;
        const n = Math.min(batch, o.count - start);
        const now = new Date();
        const rows = Array.from({ length: n }, (_, j) =>
          newPaymentRow(o.merchantId, `o-${(o.orderOffset ?? 0) + start + j}`, { amount: 1999, status: (o.status ?? 'PENDING') as NewPayment['status'], expires_at: new Date(o.expiresAt(start + j)), created_at: now }),
        );
        const first = await insertPaymentRows((sql, values) => pool.query(sql, values), rows, table);
        for (let j = 0; j < n; j++) ids[start + j] = first + j;
      }
    }),
  );
  return ids;
}

/**
 * `count` PENDING payments that are already due, their timers published with the service's
 * DelayScheduler (deadline in the past) and all waiting in the compensation queue, so that
 * workers started next find a backlog.
 */
export async function fillDueQueue(pool: mysql.Pool, bench: BenchBroker, configFile: string, db: string, merchantId: string, count: number): Promise<{ insertSec: number; publishRate: number }> {
  const t0 = Date.now();
  const dueAt = Date.now() - 1000;
  const ids = await insertPayments(pool, { merchantId, count, expiresAt: () => dueAt });
  const insertSec = (Date.now() - t0) / 1000;
  const schedulers = await openSchedulerPool(configFile, db, 2);
  const pub = await schedulers.publish(ids.map((paymentId) => ({ paymentId, deadline: dueAt }))).finally(() => schedulers.close());
  const queue = bench.names.compensationQueue;
  await waitFor('the timers in the compensation queue', async () => (await bench.broker.withChannel((ch) => ch.checkQueue(queue))).messageCount >= count, 120000);
  return { insertSec, publishRate: pub.rate };
}

/**
 * Timers published the way the service publishes them: its own DelayScheduler, on `connections`
 * broker connections of the bench (each a confirm channel), `window` confirms in flight in all.
 */
export async function openSchedulerPool(configFile: string, db: string, connections: number) {
  const brokers = await Promise.all(Array.from({ length: connections }, () => openBenchBroker(configFile, db)));
  let rr = 0;
  const one = (b: BenchBroker, paymentId: number, deadline: number): Promise<number> => {
    const seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    return b.scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline, attempt: 1, body: { paymentId } }).then(() => seconds);
  };
  return {
    names: (brokers[0] as BenchBroker).names,
    /** Publishes all; returns the delays used (whole seconds, as the scheduler rounds them). */
    async publish(items: Array<{ paymentId: number; deadline: number }>, window = 1000): Promise<{ seconds: number; rate: number; delays: number[] }> {
      const t0 = Date.now();
      const delays: number[] = new Array<number>(items.length);
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(window, items.length) }, async (_, w) => {
          const b = brokers[w % brokers.length] as BenchBroker;
          for (;;) {
            const i = next++;
            const item = items[i];
            if (!item) return;
            if (i % 1000 === 0) checkAbort();
            delays[i] = await one(b, item.paymentId, item.deadline);
          }
        }),
      );
      const seconds = (Date.now() - t0) / 1000;
      return { seconds, rate: items.length / Math.max(0.001, seconds), delays };
    },
    publishOne(paymentId: number, deadline: number): Promise<number> {
      rr = (rr + 1) % brokers.length;
      return one(brokers[rr] as BenchBroker, paymentId, deadline);
    },
    async close(): Promise<void> {
      await Promise.all(brokers.map((b) => b.close()));
    },
  };
}
export type SchedulerPool = Awaited<ReturnType<typeof openSchedulerPool>>;

/** Sum over the running workers' /metrics of a counter (missing workers count 0). */
export async function workerCounter(workers: number, metric: string, labels: Record<string, string> = {}): Promise<number> {
  const texts = await scrapeMetrics('worker', workers);
  return texts.reduce((sum, t) => sum + promSum(t, metric, labels), 0);
}

/**
 * Raw amqplib publishing of the exact message the service's DelayScheduler builds (same body,
 * headers, routing key) straight into the exchange where it first waits (the level of the
 * delay's highest set bit, or the due exchange for 0): the ceilings scenario's reference for the
 * scheduler's own publish path (which, since f01db43, enters at the same exchange).
 */
export async function openFastPublisher(names: TopologyNames, connections: number, window = 500) {
  const conns = await Promise.all(Array.from({ length: connections }, (_, i) => amqp.connect(AMQP_URL, { clientProperties: { connection_name: `bench fast publisher ${i}` } })));
  const channels = await Promise.all(conns.map((c) => c.createConfirmChannel()));
  let rr = 0;
  function publishOne(ch: amqp.ConfirmChannel, paymentId: number, deadline: number): Promise<number> {
    const seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    let top = -1;
    for (let k = TOP_LEVEL; k >= 0; k--) {
      if (seconds & (2 ** k)) {
        top = k;
        break;
      }
    }
    const exchange = top < 0 ? names.dueExchange : names.delayExchange(top);
    const body = Buffer.from(JSON.stringify({ paymentId, deadline, attempt: 1 }));
    return new Promise((resolve, reject) => {
      ch.publish(exchange, delayRoutingKey(seconds, DESTINATIONS.paymentTimer), body, { persistent: true, contentType: 'application/json', headers: { [HEADERS.deadline]: deadline, [HEADERS.attempt]: 1 } }, (err) =>
        err ? reject(err) : resolve(seconds),
      );
    });
  }
  return {
    /** Publishes all, `window` confirms in flight per connection; returns the delays used (s). */
    async publish(items: Array<{ paymentId: number; deadline: number }>): Promise<{ seconds: number; rate: number; delays: number[] }> {
      const t0 = Date.now();
      const delays: number[] = new Array<number>(items.length);
      let next = 0;
      await Promise.all(
        channels.flatMap((ch) =>
          Array.from({ length: window }, async () => {
            for (;;) {
              const i = next++;
              const item = items[i];
              if (!item) return;
              if (i % 1000 === 0) checkAbort();
              delays[i] = await publishOne(ch, item.paymentId, item.deadline);
            }
          }),
        ),
      );
      const seconds = (Date.now() - t0) / 1000;
      return { seconds, rate: items.length / seconds, delays };
    },
    /** One message on the next connection (round robin). */
    publishOne(paymentId: number, deadline: number): Promise<number> {
      rr = (rr + 1) % channels.length;
      return publishOne(channels[rr] as amqp.ConfirmChannel, paymentId, deadline);
    },
    async close(): Promise<void> {
      await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    },
  };
}
export type FastPublisher = Awaited<ReturnType<typeof openFastPublisher>>;
