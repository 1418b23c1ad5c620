import type { Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import { createDelayScheduler } from '../../src/delay/delay-scheduler';
import { declareTopology } from '../../src/app';
import { createBroker } from '../../src/infra/broker';
import { DESTINATIONS, createTopologyNames } from '../../src/messaging/topology';
import { createDatabase } from '../../src/infra/database';
import { createMigrationDatabase, migrateLatest } from '../../src/db/migration-source';
import { signGatewayRequest } from '../../src/shared/gateway-signature';
import { createLogger } from '../../src/shared/logger';
import { txId } from '../helpers/api';
import { testConfig } from '../helpers/test-app';
import { settledPayments } from '../helpers/logs';
import { waitFor } from '../helpers/wait';
import { assertAllSettledCorrectly, createPayments, startMerchant } from './fault-checks';
import { RECORDED_CAUSES } from '../../src/payments/payment-states';
import {
  CLUSTER_AMQP_URL,
  clusterDown,
  clusterUp,
  killClusterNode,
  partitionClusterNode,
  queueLeader,
  runningNodesSeenBy,
  FAULT_AMQP_URL,
  FAULT_DATABASE_URL,
  FAULT_MIGRATION_URL,
  faultStackDown,
  faultStackUp,
  startBroker,
  startDatabase,
  startService,
  stopBroker,
  stopDatabase,
  stopService,
  waitReady,
  writeServiceConfig,
  type ServiceProcess,
} from './fault-stack';

jest.setTimeout(5 * 60 * 1000);

const config = testConfig({ database: { url: FAULT_DATABASE_URL, migrationUrl: FAULT_MIGRATION_URL }, broker: { urls: [FAULT_AMQP_URL] } });
let db: Knex;
let running: ServiceProcess[] = [];
let merchant: Awaited<ReturnType<typeof startMerchant>>;

function startServices(spec: { api: number; workers: number; env?: NodeJS.ProcessEnv }): { apis: ServiceProcess[]; workers: ServiceProcess[]; prefix: string } {
  const prefix = `f${randomUUID().slice(0, 8)}`;
  const file = writeServiceConfig(prefix, { broker: { prefix } });
  const apis = Array.from({ length: spec.api }, (_, i) => startService('api', file, `${prefix}-api-${i}`, spec.env));
  const workers = Array.from({ length: spec.workers }, (_, i) => startService('worker', file, `${prefix}-worker-${i}`, spec.env));
  running.push(...apis, ...workers);
  return { apis, workers, prefix };
}

const urlOf = (s: ServiceProcess) => `http://127.0.0.1:${s.port}`;

beforeAll(async () => {
  await faultStackUp();
  db = createDatabase({ config, poolMax: 4 });
  // As the schema's owner: the fault stack's DB_USER may only read and write rows, like the main stack's.
  const owner = createMigrationDatabase(config);
  try {
    await migrateLatest(owner);
  } finally {
    await owner.destroy();
  }
  merchant = await startMerchant();
});

afterEach(async () => {
  await Promise.all(running.map((s) => stopService(s, 5000)));
  running = [];
});

afterAll(async () => {
  await merchant?.close();
  await db?.destroy();
  // KEEP_FAULT_STACK=1 leaves the servers up, to look at queues and tables after a failure.
  if (!process.env.KEEP_FAULT_STACK) await faultStackDown();
});

describe('faults: nothing lost, nothing settled twice or early', () => {
  it('when RabbitMQ is stopped for 10 s during intake and settlement, then intake keeps answering 201 and every timer still fires', async () => {
    const { apis, workers } = startServices({ api: 1, workers: 1 });
    await Promise.all([...apis, ...workers].map(waitReady));

    const creating = createPayments({ baseUrls: apis.map(urlOf), count: 2000, minTimeout: 2, maxTimeout: 20, notifyUrl: merchant.url, ratePerSecond: 100, concurrency: 8 });
    await waitFor('some payments to be created and settling', async () => {
      const [row] = await db('payments').where('status', 'CLOSED').count({ n: '*' });
      return Number(row?.n) > 0;
    }, 30000, 100);
    await stopBroker();
    const outageEnds = Date.now() + 10000;
    // Meanwhile the api is not ready (the broker is down) but keeps taking payments.
    await waitFor('/readyz to report the broker down', async () => (await fetch(`${urlOf(apis[0]!)}/readyz`)).status === 503, 5000, 100);
    await waitFor('the 10 s outage to pass', () => Date.now() >= outageEnds, 15000, 200);
    await startBroker();
    await waitFor('/readyz to recover', async () => (await fetch(`${urlOf(apis[0]!)}/readyz`)).status === 200, 30000, 200);

    const { created, statuses } = await creating;
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 120000, merchant });
  });

  it('when MariaDB is stopped for 10 s while timers fire, then the service recovers without a restart', async () => {
    const { apis, workers } = startServices({ api: 1, workers: 1 });
    await Promise.all([...apis, ...workers].map(waitReady));
    const { created, statuses } = await createPayments({ baseUrls: apis.map(urlOf), count: 2000, minTimeout: 3, maxTimeout: 25, notifyUrl: merchant.url, concurrency: 8 });
    expect(statuses.filter((s) => s !== 201)).toEqual([]);

    await stopDatabase();
    const outageEnds = Date.now() + 10000;
    // Meanwhile the api says it is not ready, with what failed.
    const ready = await fetch(`${urlOf(apis[0]!)}/readyz`);
    expect(ready.status).toBe(503);
    await waitFor('the 10 s outage to pass', () => Date.now() >= outageEnds, 15000, 200);
    await startDatabase();

    await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 120000, merchant });
    expect((await fetch(`${urlOf(apis[0]!)}/readyz`)).status).toBe(200);
    expect([...apis, ...workers].every((s) => s.child.exitCode === null)).toBe(true);
  });

  it('when a worker is killed with SIGKILL in the middle of a batch, then another worker settles its deliveries, once', async () => {
    const { apis, workers } = startServices({ api: 1, workers: 2 });
    await Promise.all([...apis, ...workers].map(waitReady));
    const { created } = await createPayments({ baseUrls: apis.map(urlOf), count: 2000, minTimeout: 6, maxTimeout: 8, notifyUrl: merchant.url, concurrency: 16 });

    await waitFor('worker 0 to be settling', () => settledPayments(workers[0]!.logs()).length > 0, 60000, 20);
    workers[0]!.child.kill('SIGKILL');
    expect(await workers[0]!.exited).toBeNull();

    await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 120000, merchant });
    expect(settledPayments(workers[1]!.logs()).length).toBeGreaterThan(0);
  });

  it('when the same timer is delivered twice, then the payment makes one transition', async () => {
    const { apis, workers, prefix } = startServices({ api: 1, workers: 2 });
    await Promise.all([...apis, ...workers].map(waitReady));
    const { created } = await createPayments({ baseUrls: apis.map(urlOf), count: 1000, minTimeout: 4, maxTimeout: 8, concurrency: 16 });

    // Publish a second copy of every timer, on purpose.
    const broker = createBroker({ urls: [FAULT_AMQP_URL], logger: createLogger({ level: 'error' }), publishTimeoutMs: 5000 });
    const names = createTopologyNames(prefix);
    broker.addSetup((ch) => declareTopology(ch, names, config));
    await broker.start();
    try {
      const rows: Array<{ id: number; expires_at: Date }> = await db('payments').whereIn('public_id', created.map((p) => p.id)).select('id', 'expires_at');
      const scheduler = createDelayScheduler({ broker, names });
      for (let i = 0; i < rows.length; i += 100) {
        await Promise.all(rows.slice(i, i + 100).map((r) => scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline: new Date(r.expires_at).getTime(), attempt: 1, body: { paymentId: Number(r.id) } })));
      }
    } finally {
      await broker.close();
    }
    await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 60000 });
    await waitFor('the duplicates to be consumed as no-ops', () => settledPayments(workers.flatMap((w) => w.logs())).length === created.length, 30000);
  });

  it('when signed SUCCESS callbacks race their timers within 50 ms of the deadline, then every payment ends PAID or PAID_AFTER_CLOSE, consistent with payment_events', async () => {
    const { apis, workers } = startServices({ api: 1, workers: 1 });
    await Promise.all([...apis, ...workers].map(waitReady));
    const { created } = await createPayments({ baseUrls: apis.map(urlOf), count: 1000, minTimeout: 8, maxTimeout: 8, concurrency: 16 });

    const secret = 'dev-secret-wechat';
    const results = await Promise.all(
      created.map(async (p, i) => {
        const at = Date.parse(p.expiresAt) + ((i % 101) - 50); // -50 .. +50 ms around the deadline
        await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
        const raw = JSON.stringify({ result: 'SUCCESS', transactionId: txId(`race-${i}`), paidAmount: p.amount });
        const res = await fetch(`${urlOf(apis[0]!)}/v1/payments/${p.id}/callback`, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', 'x-signature': signGatewayRequest(secret, p.id, raw) } });
        return res.status;
      }),
    );
    expect(results.filter((s) => s !== 200)).toEqual([]);
    await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 60000 });

    const rows: Array<{ id: number; status: string }> = await db('payments').whereIn('public_id', created.map((p) => p.id)).select('id', 'status');
    const events: Array<{ payment_id: number; from_status: string | null; to_status: string }> = await db('payment_events').whereIn('payment_id', rows.map((r) => r.id)).whereNotIn('cause', [...RECORDED_CAUSES]).orderBy('id').select('payment_id', 'from_status', 'to_status');
    const paths = new Map<number, string[]>();
    for (const e of events) paths.set(Number(e.payment_id), [...(paths.get(Number(e.payment_id)) ?? []), `${e.from_status}->${e.to_status}`]);
    for (const r of rows) {
      expect(['PAID', 'PAID_AFTER_CLOSE']).toContain(r.status);
      const expected = r.status === 'PAID' ? ['null->PENDING', 'PENDING->PAID'] : ['null->PENDING', 'PENDING->CLOSED', 'CLOSED->PAID_AFTER_CLOSE'];
      expect(paths.get(Number(r.id))).toEqual(expected);
    }
  });

  it('when a worker gets SIGTERM under load, then it exits 0 and no delivery is lost', async () => {
    const { apis, workers } = startServices({ api: 1, workers: 2 });
    await Promise.all([...apis, ...workers].map(waitReady));
    const { created } = await createPayments({ baseUrls: apis.map(urlOf), count: 2000, minTimeout: 4, maxTimeout: 10, notifyUrl: merchant.url, concurrency: 16 });

    await waitFor('worker 0 to be settling', () => settledPayments(workers[0]!.logs()).length > 0, 60000, 20);
    workers[0]!.child.kill('SIGTERM');
    expect(await workers[0]!.exited).toBe(0);
    expect(workers[0]!.logs().some((l) => l.includes('shutdown finished'))).toBe(true);

    await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 120000, merchant });
  });

  it('when the RabbitMQ node leading the delay queues is killed with timers in flight, then every timer still fires on the other two nodes', async () => {
    await clusterUp();
    try {
      const { apis, workers, prefix } = startServices({ api: 1, workers: 1, env: { AMQP_URL: CLUSTER_AMQP_URL, RABBITMQ_MANAGEMENT_URL: 'http://guest:guest@127.0.0.1:15682' } });
      await Promise.all([...apis, ...workers].map(waitReady));
      const { created } = await createPayments({ baseUrls: apis.map(urlOf), count: 1000, minTimeout: 3, maxTimeout: 20, notifyUrl: merchant.url, concurrency: 16 });

      const leader = await queueLeader(`${prefix}:delay:level-02-4s`);
      const node = Number(/^rabbit-(\d+)@/.exec(leader)?.[1]);
      expect(node).toBeGreaterThan(0);
      killClusterNode(node);
      // The other two nodes elect new leaders; the service fails over to them.
      await waitFor('a new leader', async () => (await queueLeader(`${prefix}:delay:level-02-4s`)) !== leader, 60000, 500);
      // Then the node comes back, as its supervisor would restart it. On RabbitMQ 3.10, messages
      // the dead node's dead-letter worker had checked out wait for that node to return.
      await clusterUp();

      await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 150000, merchant });
    } finally {
      await Promise.all(running.map((s) => stopService(s, 5000)));
      running = [];
      if (!process.env.KEEP_FAULT_STACK) await clusterDown();
    }
  });

  it('when the node leading the delay queues is cut off from the other two by a network partition while timers are in flight, then after the heal every timer fired once and none early', async () => {
    await clusterUp();
    let heal: (() => Promise<void>) | undefined;
    try {
      const { apis, workers, prefix } = startServices({ api: 1, workers: 1, env: { AMQP_URL: CLUSTER_AMQP_URL, RABBITMQ_MANAGEMENT_URL: 'http://guest:guest@127.0.0.1:15682' } });
      await Promise.all([...apis, ...workers].map(waitReady));
      const creating = createPayments({ baseUrls: apis.map(urlOf), count: 1000, minTimeout: 4, maxTimeout: 30, notifyUrl: merchant.url, ratePerSecond: 100, concurrency: 16 });

      const leader = await queueLeader(`${prefix}:delay:level-02-4s`);
      const node = Number(/^rabbit-(\d+)@/.exec(leader)?.[1]);
      expect(node).toBeGreaterThan(0);
      heal = await partitionClusterNode(node);
      // pause_minority: the majority sees the node gone and keeps serving; the node pauses.
      const majority = [1, 2, 3].find((n) => n !== node) as number;
      await waitFor('the majority to see the node gone', async () => !(await runningNodesSeenBy(majority)).includes(leader), 60000, 500);
      await waitFor('a new leader on the majority side', async () => (await queueLeader(`${prefix}:delay:level-02-4s`)) !== leader, 60000, 500);
      const { created, statuses } = await creating;
      await heal();
      heal = undefined;
      await waitFor('the node to rejoin after the heal', async () => (await runningNodesSeenBy(majority)).length === 3, 120000, 1000);

      // Every create was answered 201 (creates never wait for the broker), and every timer fires.
      expect(statuses.filter((s) => s !== 201)).toEqual([]);
      await assertAllSettledCorrectly(db, created.map((p) => p.id), { timeoutMs: 180000, merchant });
    } finally {
      await heal?.();
      await Promise.all(running.map((s) => stopService(s, 5000)));
      running = [];
      if (!process.env.KEEP_FAULT_STACK) await clusterDown();
    }
  });
});
