/**
 * Scenario 1: the raw ceilings of this machine, measured in the same run (the denominators).
 *  - amqplib publish rate on a confirm channel into a plain quorum queue (bench-only queue)
 *  - consume rate with manual acks (prefetch as the worker's) from that queue
 *  - batched by-id UPDATE ... WHERE id IN (sorted) AND status = ... on a bench-only copy of
 *    payments with as many rows as the drain scenario
 *  - an express route that does nothing, behind its own nginx rendered from the service's template
 */
import amqp from 'amqplib';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type mysql from 'mysql2/promise';
import { startChild, stopChild, freePort } from './children';
import { ROOT, checkAbort, defaultConfig, log, run, sleep, spread, waitFor, type Spread } from './common';
import type { Context } from './context';
import { AMQP_URL, benchPool, writeConfig } from './environment';
import { deleteBenchTopology, openBenchBroker, openFastPublisher } from './timers';
import { DESTINATIONS } from '../../src/messaging/topology';
import { createBodies, runLoad, type LoadResult } from './load';

export interface DelayPublish {
  what: string;
  perRepeat: number[];
  rate: Spread;
}

export interface CeilingResults {
  /** Publishing a timer the way the service's DelayScheduler does, and the fast path. */
  delayPublish: DelayPublish[];
  publish: { perRepeat: number[]; rate: Spread; messageBytes: number; window: number };
  consume: { perRepeat: number[]; rate: Spread; prefetch: number };
  update: { perRepeat: number[]; rate: Spread; rows: number; batch: number; concurrency: number };
  noop: {
    byConcurrency: Array<{ connections: number; runs: LoadResult[]; rate: Spread; p50: Spread; p99: Spread }>;
    /** The intake's paced load, same rate and generator: the latency floor of nginx, express and the load generator. */
    paced: { target: number; runs: LoadResult[]; p50: Spread; p99: Spread };
    how: string;
  };
}

const MESSAGE = Buffer.from(JSON.stringify({ paymentId: 123456789, deadline: 1767225600000, attempt: 1 }));

async function publishFor(ch: amqp.ConfirmChannel, queue: string, seconds: number, window: number): Promise<{ confirmed: number; rate: number }> {
  let inFlight = 0;
  let confirmed = 0;
  let failed = 0;
  let wake: (() => void) | undefined;
  const t0 = Date.now();
  const end = t0 + seconds * 1000;
  let lastConfirm = t0;
  const headers = { 'x-compensator-deadline': 1767225600000, 'x-compensator-attempt': 1 };
  while (Date.now() < end) {
    if (inFlight >= window) {
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    inFlight++;
    const ok = ch.publish('', queue, MESSAGE, { persistent: true, contentType: 'application/json', headers }, (err) => {
      inFlight--;
      if (err) failed++;
      else confirmed++;
      lastConfirm = Date.now();
      if (wake && inFlight < window / 2) {
        const w = wake;
        wake = undefined;
        w();
      }
    });
    if (!ok) await new Promise<void>((r) => ch.once('drain', () => r()));
    // give the socket a turn now and then
    if ((confirmed + inFlight) % 500 === 0) await new Promise<void>((r) => setImmediate(r));
  }
  await waitFor('publish confirms', async () => inFlight === 0, 60000, 20);
  if (failed > 0) throw new Error(`${failed} publishes were nacked`);
  return { confirmed, rate: confirmed / ((lastConfirm - t0) / 1000) };
}

async function consumeAll(conn: amqp.ChannelModel, queue: string, expected: number, prefetch: number): Promise<number> {
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch);
  let got = 0;
  let t0 = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const { consumerTag } = await ch.consume(
    queue,
    (msg) => {
      if (!msg) return;
      if (got === 0) t0 = Date.now();
      got++;
      ch.ack(msg);
      if (got >= expected) done();
    },
    { noAck: false },
  );
  const timeout = sleep(120000).then(() => 'timeout');
  const r = await Promise.race([finished.then(() => 'ok'), timeout]);
  const elapsed = (Date.now() - t0) / 1000;
  await ch.cancel(consumerTag);
  await ch.close();
  if (r !== 'ok') throw new Error(`consumed only ${got} of ${expected}`);
  return (expected - 1) / elapsed; // from the first delivery to the last
}

async function brokerCeilings(ctx: Context): Promise<Pick<CeilingResults, 'publish' | 'consume'>> {
  const { publishSec } = ctx.sizes.ceilings;
  const queue = `${ctx.prefixes.ceiling}:ceiling:quorum`;
  const window = 1000;
  const prefetch = defaultConfig().worker.prefetch;
  const conn = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: `bench ${ctx.runId} ceilings` } });
  const pub: number[] = [];
  const con: number[] = [];
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.purgeQueue(queue);
    // warm-up
    await publishFor(ch, queue, 0.5, window);
    const warm = await ch.checkQueue(queue);
    await consumeAll(conn, queue, warm.messageCount, prefetch);
    for (let i = 0; i < ctx.sizes.repeats; i++) {
      checkAbort();
      const p = await publishFor(ch, queue, publishSec, window);
      pub.push(p.rate);
      const depth = (await ch.checkQueue(queue)).messageCount;
      const c = await consumeAll(conn, queue, depth, prefetch);
      con.push(c);
      log(`ceilings: publish ${Math.round(p.rate)}/s (${p.confirmed} confirmed), consume+ack ${Math.round(c)}/s (${depth} messages)`);
    }
    await ch.deleteQueue(queue);
    await ch.close();
  } finally {
    await conn.close().catch(() => undefined);
  }
  return {
    publish: { perRepeat: pub, rate: spread(pub), messageBytes: MESSAGE.length, window },
    consume: { perRepeat: con, rate: spread(con), prefetch },
  };
}

/** A bench-only copy of payments (same columns and indexes, so no index on status). */
async function updateCeiling(ctx: Context, pool: mysql.Pool): Promise<CeilingResults['update']> {
  const rows = ctx.sizes.drain.payments;
  const { updateBatch: batch, updateConcurrency: concurrency } = ctx.sizes.ceilings;
  await pool.query('DROP TABLE IF EXISTS ceiling_payments');
  await pool.query('CREATE TABLE ceiling_payments LIKE payments');
  await pool.query(
    `INSERT INTO ceiling_payments (public_id, merchant_id, order_id, amount, currency, channel, status, request_hash, expires_at, created_at, updated_at)
     SELECT CONCAT('pay_ceiling', LPAD(seq, 12, '0')), 'ceiling', CONCAT('o-', seq), 1999, 'CNY', 'wechat', 'PENDING', REPEAT('x', 64),
            NOW(3), NOW(3), NOW(3)
     FROM seq_1_to_${rows}`,
  );
  const [idRows] = await pool.query('SELECT id FROM ceiling_payments ORDER BY id');
  const ids = (idRows as Array<{ id: number }>).map((r) => Number(r.id));
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length; i += batch) chunks.push(ids.slice(i, i + batch));
  const rates: number[] = [];
  let from = 'PENDING';
  let to = 'CLOSED';
  for (let r = 0; r < ctx.sizes.repeats + 1; r++) {
    checkAbort();
    let next = 0;
    const t0 = Date.now();
    let updated = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const chunk = chunks[next++];
          if (!chunk) return;
          const now = new Date();
          const [res] = await pool.query(
            `UPDATE ceiling_payments SET status = ?, closed_at = ?, updated_at = ? WHERE id IN (${chunk.map(() => '?').join(',')}) AND status = ?`,
            [to, to === 'CLOSED' ? now : null, now, ...chunk, from],
          );
          updated += (res as { affectedRows: number }).affectedRows;
        }
      }),
    );
    const rate = updated / ((Date.now() - t0) / 1000);
    if (updated !== rows) throw new Error(`update ceiling: updated ${updated} of ${rows}`);
    if (r > 0) rates.push(rate); // the first pass warms the buffer pool
    log(`ceilings: by-id UPDATE ${from}->${to} ${Math.round(rate)} rows/s${r === 0 ? ' (warm-up)' : ''}`);
    [from, to] = [to, from];
  }
  await pool.query('DROP TABLE IF EXISTS ceiling_payments');
  return { perRepeat: rates, rate: spread(rates), rows, batch, concurrency };
}

/** Two no-op express processes behind their own nginx; started early so they boot meanwhile. */
async function startNoopStack(ctx: Context): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = path.join(ctx.tmpDir, 'noop-nginx');
  for (const d of ['run', 'logs', 'tmp']) mkdirSync(path.join(dir, d), { recursive: true });
  const ports = [await freePort(), await freePort()];
  const nginxPort = await freePort();
  const servers = ports.map((port) => startChild(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/bench/noop-server.ts')], { ...process.env, PORT: String(port) }));
  const conf = path.join(dir, 'nginx.conf');
  await run(
    'bash',
    ['nginx/render.sh', '--prefix', dir, '--listen', `127.0.0.1:${nginxPort}`, ...ports.flatMap((p) => ['--upstream', `127.0.0.1:${p}`]), '--worker-processes', '1', '-o', conf],
    { timeoutMs: 20000 },
  );
  const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx', '/sbin/nginx'].find((p) => existsSync(p));
  if (!nginxBin) throw new Error('nginx is not installed (scripts/stack.sh up installs it)');
  const nginx = startChild(nginxBin, ['-p', `${dir}/`, '-c', conf, '-g', 'daemon off;']);
  return {
    url: `http://127.0.0.1:${nginxPort}`,
    stop: async () => {
      await stopChild(nginx);
      await Promise.all(servers.map((s) => stopChild(s)));
    },
  };
}

async function noopCeiling(ctx: Context, url: string): Promise<CeilingResults['noop']> {
  const ports = 2;
  await waitFor('the no-op servers behind nginx', async () => {
    // both upstreams answer through nginx (round robin)
    const a = await fetch(`${url}/healthz`).catch(() => undefined);
    const b = await fetch(`${url}/healthz`).catch(() => undefined);
    return a?.ok && b?.ok;
  }, 30000, 100);
  const bodies = createBodies({ merchantId: 'noop', orderPrefix: 'noop', timeoutSeconds: 900 });
  await runLoad({ url, path: '/v1/payments', connections: 32, durationSec: ctx.quick ? 0.5 : 1, body: bodies.next }); // warm-up
  const byConcurrency: CeilingResults['noop']['byConcurrency'] = [];
  for (const connections of ctx.sizes.ceilings.concurrencies) {
    const runs: LoadResult[] = [];
    for (let i = 0; i < ctx.sizes.repeats; i++) {
      checkAbort();
      runs.push(await runLoad({ url, path: '/v1/payments', connections, durationSec: ctx.sizes.ceilings.noopSec, body: bodies.next }));
    }
    byConcurrency.push({ connections, runs, rate: spread(runs.map((r) => r.okPerSec)), p50: spread(runs.map((r) => r.p50)), p99: spread(runs.map((r) => r.p99)) });
    log(`ceilings: no-op through nginx c=${connections}: ${runs.map((r) => Math.round(r.okPerSec)).join(', ')} req/s`);
  }
  const { fixedRate, fixedSec, fixedConnections } = ctx.sizes.intake;
  const pacedRuns: LoadResult[] = [];
  for (let i = 0; i < ctx.sizes.repeats; i++) {
    checkAbort();
    pacedRuns.push(await runLoad({ url, path: '/v1/payments', connections: fixedConnections, durationSec: fixedSec, overallRate: fixedRate, body: bodies.next }));
  }
  const paced = { target: fixedRate, runs: pacedRuns, p50: spread(pacedRuns.map((r) => r.p50)), p99: spread(pacedRuns.map((r) => r.p99)) };
  log(`ceilings: no-op through nginx paced ${fixedRate}/s: p99 ${pacedRuns.map((r) => Math.round(r.p99)).join(', ')} ms`);
  return {
    byConcurrency,
    paced,
    how: `${ports} express 5 processes whose POST /v1/payments does nothing (201, body not parsed), behind a separate nginx rendered from nginx/nginx.conf.template by nginx/render.sh (1 worker process, the same proxy settings and JSON access log as the stack's)`,
  };
}

/**
 * Timers through the delay topology: the service's own DelayScheduler (publish to the top level's
 * exchange, routed exchange to exchange down to the first level whose bit is set), and the bench's
 * fast path (straight into the exchange of the highest set bit). Time-boxed, `window` in flight.
 */
async function delayPublishCeilings(ctx: Context): Promise<DelayPublish[]> {
  const prefix = `${ctx.prefixes.ceiling}-delay`;
  const file = writeConfig(ctx.tmpDir, 'ceiling-delay', { prefix, queueType: 'quorum' });
  const bench = await openBenchBroker(file, ctx.db);
  const fast = await openFastPublisher(bench.names, 1, 1000);
  const out: DelayPublish[] = [];
  const seconds = ctx.sizes.ceilings.publishSec;
  async function timeBoxed(one: (deadline: number) => Promise<unknown>, delaySec: number): Promise<number> {
    const end = Date.now() + seconds * 1000;
    let done = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (Date.now() < end) {
          await one(Date.now() + delaySec * 1000);
          done++;
        }
      }),
    );
    return done / ((Date.now() - t0) / 1000);
  }
  try {
    const cases: Array<{ what: string; one: (deadline: number) => Promise<unknown>; delay: number }> = [
      { what: "the service's DelayScheduler.schedule, delay 900 s (the default timeout)", delay: 900, one: (d) => bench.scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline: d, attempt: 1, body: { paymentId: 1 } }) },
      { what: "the service's DelayScheduler.schedule, delay 0 s (already due: a retry or an early timer)", delay: 0, one: (d) => bench.scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline: d, attempt: 1, body: { paymentId: 1 } }) },
      { what: 'raw amqplib, the same message straight into the exchange of its highest set bit, delay 900 s', delay: 900, one: (d) => fast.publishOne(1, d) },
    ];
    for (const c of cases) {
      const rates: number[] = [];
      for (let i = 0; i < ctx.sizes.repeats; i++) {
        checkAbort();
        rates.push(await timeBoxed(c.one, c.delay));
      }
      out.push({ what: c.what, perRepeat: rates, rate: spread(rates) });
      log(`ceilings: ${c.what}: ${rates.map((r) => Math.round(r)).join(', ')} msg/s`);
    }
  } finally {
    await fast.close();
    await bench.close();
    await deleteBenchTopology(prefix).catch(() => undefined);
  }
  return out;
}

export async function runCeilings(ctx: Context): Promise<CeilingResults> {
  const noopStack = await startNoopStack(ctx);
  try {
    const broker = await brokerCeilings(ctx);
    const delayPublish = await delayPublishCeilings(ctx);
    const pool = benchPool(ctx.db, ctx.sizes.ceilings.updateConcurrency + 1);
    let update: CeilingResults['update'];
    try {
      update = await updateCeiling(ctx, pool);
    } finally {
      await pool.end();
    }
    const noop = await noopCeiling(ctx, noopStack.url);
    return { ...broker, delayPublish, update, noop };
  } finally {
    await noopStack.stop();
  }
}
