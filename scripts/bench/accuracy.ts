/**
 * Scenario 4: timer accuracy under load. A steady rate of new payments with timeouts spread
 * uniformly over [min, max] s, while 2 workers settle what falls due: lateness (closed_at minus
 * expires_at) p50/p99/max, how many settled early (must be 0), and its histogram.
 */
import type mysql from 'mysql2/promise';
import { checkAbort, distribution, log, sleep, spread, waitFor, type Spread } from './common';
import type { Context } from './context';
import { NGINX_URL, appEnvironment, benchMerchant, benchPool, stackUp } from './environment';
import { REQUEST_TIMEOUT_SEC, createBodies, runLoad, type LoadResult } from './load';
import { insertPayments, openSchedulerPool, workerCounter } from './timers';

export interface AccuracyRun {
  queueType: 'quorum' | 'classic';
  via: 'api' | 'direct';
  targetRate: number;
  achievedRate: number;
  durationSec: number;
  timeouts: [number, number];
  created: number;
  settled: number;
  unsettled: number;
  early: number;
  lateness: ReturnType<typeof distribution>;
  /** p99 of each 10 s window of deadlines: the spread of the headline figure within the run. */
  windowP99: Spread;
  histogram: Array<{ binStartMs: number; count: number }>;
  binMs: number;
  load?: LoadResult;
  lockRetries: number;
}

async function viaApi(ctx: Context, merchantId: string, rate: number, durationSec: number, min: number, max: number): Promise<{ created: number; achieved: number; load: LoadResult }> {
  const bodies = createBodies({ merchantId, orderPrefix: 'o', timeoutSeconds: () => min + Math.floor(Math.random() * (max - min + 1)) });
  const headers = await benchMerchant(merchantId);
  const load = await runLoad({ url: NGINX_URL, path: '/v1/payments', connections: ctx.sizes.accuracy.connections, durationSec, overallRate: rate, body: bodies.next, headers });
  return { created: load.ok, achieved: load.okPerSec, load };
}

export type Lateness = Pick<AccuracyRun, 'created' | 'settled' | 'unsettled' | 'early' | 'lateness' | 'windowP99' | 'binMs' | 'histogram'>;

/** Lateness (closed_at − expires_at) of a merchant's payments in `table` (the peer has a copy of payments). */
export async function measureLateness(pool: mysql.Pool, table: string, merchantId: string): Promise<Lateness> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
  const [rows] = await pool.query(`SELECT status, expires_at, closed_at FROM ${table} WHERE merchant_id = ?`, [merchantId]);
  const list = rows as Array<{ status: string; expires_at: Date; closed_at: Date | null }>;
  const closed = list.filter((r) => r.status === 'CLOSED' && r.closed_at);
  const lateMs = closed.map((r) => (r.closed_at as Date).getTime() - r.expires_at.getTime());
  // 10 s windows of deadlines
  const windows = new Map<number, number[]>();
  closed.forEach((r, i) => {
    const w = Math.floor(r.expires_at.getTime() / 10000);
    if (!windows.has(w)) windows.set(w, []);
    (windows.get(w) as number[]).push(lateMs[i] as number);
  });
  const windowP99 = spread([...windows.values()].filter((v) => v.length >= 100).map((v) => distribution(v).p99 / 1000));
  const maxLate = Math.max(0, ...lateMs);
  const binMs = maxLate <= 500 ? 10 : maxLate <= 2000 ? 50 : maxLate <= 10000 ? 100 : 500;
  const hist = new Map<number, number>();
  for (const l of lateMs) {
    const b = Math.floor(l / binMs) * binMs;
    hist.set(b, (hist.get(b) ?? 0) + 1);
  }
  return {
    created: list.length, // answers still in flight when the load stopped may have added a few
    settled: closed.length,
    unsettled: list.length - closed.length,
    early: lateMs.filter((l) => l < 0).length,
    lateness: distribution(lateMs.map((l) => l / 1000)),
    windowP99,
    binMs,
    histogram: [...hist.entries()].sort((a, b) => a[0] - b[0]).map(([binStartMs, count]) => ({ binStartMs, count })),
  };
}

/** The bench inserts the rows and publishes their timers itself (the service's DelayScheduler), in 100 ms ticks. */
async function viaDirect(ctx: Context, configFile: string, pool: mysql.Pool, merchantId: string, rate: number, durationSec: number, min: number, max: number): Promise<{ created: number; achieved: number }> {
  const schedulers = await openSchedulerPool(configFile, ctx.db, 2);
  const t0 = Date.now();
  let created = 0;
  let tick = 0;
  try {
    while (Date.now() - t0 < durationSec * 1000) {
      checkAbort();
      tick++;
      const due = Math.round((rate * (Date.now() - t0)) / 1000) - created;
      if (due > 0) {
        const now = Date.now();
        const timeouts = Array.from({ length: due }, () => min + Math.floor(Math.random() * (max - min + 1)));
        const ids = await insertPayments(pool, { merchantId, count: due, orderOffset: created, expiresAt: (i) => now + (timeouts[i] as number) * 1000, concurrency: 1, batch: 1000 });
        await schedulers.publish(ids.map((paymentId, i) => ({ paymentId, deadline: now + (timeouts[i] as number) * 1000 })), 500);
        created += due;
      }
      const next = t0 + tick * 100;
      if (next > Date.now()) await sleep(next - Date.now());
    }
  } finally {
    await schedulers.close();
  }
  return { created, achieved: created / ((Date.now() - t0) / 1000) };
}

/**
 * `direct`: the timer path alone (the target); `api`: end to end through nginx and 2 api
 * replicas, whose intake then shares the two cores with the workers and the broker.
 */
export async function runAccuracy(ctx: Context, queueType: 'quorum' | 'classic', via: 'api' | 'direct'): Promise<AccuracyRun> {
  const s = ctx.sizes.accuracy;
  const configFile = queueType === 'quorum' ? ctx.configs.quorum : ctx.configs.classic;
  await stackUp(via === 'api' ? 2 : 0, 2, appEnvironment(configFile, ctx.db));
  ctx.memory.setScenario(`accuracy-${queueType}-${via}`);
  const pool = benchPool(ctx.db, 4);
  const merchantId = `acc_${queueType}_${via}_${ctx.runId}`;
  try {
    const retriesBase = await workerCounter(2, 'compensator_db_lock_retries_total');
    log(`accuracy ${queueType} ${via}: ${s.rate}/s for ${s.durationSec} s via ${via}, timeouts ${s.minTimeout}-${s.maxTimeout} s`);
    const t0 = Date.now();
    const gen: { created: number; achieved: number; load?: LoadResult } = via === 'api' ? await viaApi(ctx, merchantId, s.rate, s.durationSec, s.minTimeout, s.maxTimeout) : await viaDirect(ctx, configFile, pool, merchantId, s.rate, s.durationSec, s.minTimeout, s.maxTimeout);
    const loadEnd = Date.now();
    const counts = async () => {
      const [[row]] = (await pool.query("SELECT COUNT(*) AS total, COUNT(closed_at) AS closed FROM payments WHERE merchant_id = ?", [merchantId])) as unknown as [[{ total: number; closed: number }]];
      return { total: Number(row.total), closed: Number(row.closed) };
    };
    log(`accuracy ${queueType} ${via}: ${(await counts()).total} payments created in ${((loadEnd - t0) / 1000).toFixed(1)} s (${Math.round(gen.achieved)}/s); waiting for the last deadlines`);
    // Through the API, creates still in flight when the load stopped land later: wait at least
    // the client's request timeout, and until the row count has held still for 2 s (the server
    // may commit after the client gave up). Every deadline is at most maxTimeout after its
    // create; allow 15 s more for settling.
    const settledFrom = loadEnd + (via === 'api' ? REQUEST_TIMEOUT_SEC * 1000 : 0);
    const giveUpAt = settledFrom + (s.maxTimeout + 15) * 1000;
    let lastTotal = -1;
    let totalSince = Date.now();
    const last = await waitFor(
      'the accuracy payments to settle',
      async () => {
        const c = await counts();
        if (c.total !== lastTotal) [lastTotal, totalSince] = [c.total, Date.now()];
        const settled = c.closed >= c.total && Date.now() >= settledFrom && (via === 'direct' || Date.now() - totalSince >= 2000);
        return settled || Date.now() > giveUpAt ? c : undefined;
      },
      giveUpAt - Date.now() + 5000,
      500,
    );
    if (last.closed < last.total) log(`accuracy ${queueType} ${via}: ${last.closed} of ${last.total} settled when the wait ended`);
    const result: AccuracyRun = {
      queueType,
      via,
      targetRate: s.rate,
      achievedRate: gen.achieved,
      durationSec: s.durationSec,
      timeouts: [s.minTimeout, s.maxTimeout],
      ...(await measureLateness(pool, 'payments', merchantId)),
      load: gen.load,
      lockRetries: (await workerCounter(2, 'compensator_db_lock_retries_total')) - retriesBase,
    };
    log(
      `accuracy ${queueType} ${via}: settled ${result.settled}/${result.created}, lateness p50 ${result.lateness.p50.toFixed(3)} s p99 ${result.lateness.p99.toFixed(3)} s max ${result.lateness.max.toFixed(3)} s, early ${result.early}`,
    );
    return result;
  } finally {
    await pool.end();
  }
}
