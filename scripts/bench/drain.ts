/**
 * Scenario 3: drain. N PENDING payments whose timers already wait in the compensation queue when
 * the workers start (adapter none), settled by 1 and by 2 workers; then N timers that fall due
 * at the same moment end to end through the delay levels (dead-lettering), quorum and classic.
 */
import type mysql from 'mysql2/promise';
import { distribution, fmt, httpText, log, popcount, promSum, sleep, spread, sumIfAll, waitFor, type Spread } from './common';
import type { Context } from './context';
import { RABBITMQ_PROMETHEUS, appEnvironment, benchPool, stackCpuMs, stackUp, type StackCpu } from './environment';
import { fillDueQueue, insertPayments, openBenchBroker, openSchedulerPool, workerCounter } from './timers';

export interface DrainRun {
  workers: number;
  payments: number;
  insertSec: number;
  publishRate: number;
  /** From the first to the last settlement (payments.closed_at). */
  drainSec: number;
  /** From the workers' start command to the last settlement (includes process start). */
  wallSec: number;
  settledPerSec: number;
  perSecond: number[];
  perSecondSpread: Spread;
  lockRetries: number;
  settled: number;
  /**
   * CPU time per settled payment (µs) of the workers, RabbitMQ and MariaDB, from the first to
   * the last settlement: what one settlement costs the whole machine, and so how many per
   * second its cores can give at most.
   */
  cpuMicrosPerPayment: CpuPerPayment;
}

/** Undefined where the process was not ours to read (a broker or database the stack did not start). */
export interface CpuPerPayment {
  workers?: number;
  rabbitmq?: number;
  mariadb?: number;
  total?: number;
}

/**
 * Samples the CPU ms of some process groups (`read`, e.g. from stackCpuMs) every 50 ms while a
 * drain runs, so that the CPU spent can be read for exactly the window the rate is measured over
 * (first to last settlement): process start-up before the first settlement is not settlement
 * work. (A second worker that is still starting when the first settles counts its start-up:
 * about 0.6 s of CPU, a few µs per payment.)
 */
export function startCpuSampler<K extends string>(read: () => Record<K, number | undefined>, intervalMs = 50) {
  type Sample = { at: number; cpu: Record<K, number | undefined> };
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      samples.push({ at: Date.now(), cpu: read() });
      await sleep(intervalMs);
    }
  })();
  /** CPU ms of one process group at a moment, interpolated between the samples around it. */
  const at = (t: number, key: K): number | undefined => {
    const known = samples.filter((s) => s.cpu[key] !== undefined);
    const after = known.findIndex((s) => s.at >= t);
    if (after <= 0) return undefined; // no sample before the moment, or none after it
    const a = known[after - 1] as Sample;
    const b = known[after] as Sample;
    const [ca, cb] = [a.cpu[key] as number, b.cpu[key] as number];
    return ca + ((cb - ca) * (t - a.at)) / Math.max(1, b.at - a.at);
  };
  return {
    async stop(): Promise<void> {
      running = false;
      await loop;
      samples.push({ at: Date.now(), cpu: read() });
    },
    /** CPU µs per payment of each group between two moments in which `payments` were settled. */
    perPayment(from: number, to: number, payments: number, keys: readonly K[]): Record<K, number | undefined> {
      const per = (key: K) => {
        const a = at(from, key);
        const b = at(to, key);
        return a === undefined || b === undefined ? undefined : ((b - a) * 1000) / Math.max(1, payments);
      };
      return Object.fromEntries(keys.map((k) => [k, per(k)])) as Record<K, number | undefined>;
    },
  };
}

const STACK_GROUPS = ['workers', 'rabbitmq', 'mariadb'] as const;

function stackGroupsCpuMs(): Record<(typeof STACK_GROUPS)[number], number | undefined> {
  const c: StackCpu = stackCpuMs();
  return { workers: c.workers, rabbitmq: c.rabbitmq, mariadb: c.mariadb };
}

function withTotal(cpu: Omit<CpuPerPayment, 'total'>): CpuPerPayment {
  return { ...cpu, total: sumIfAll([cpu.workers, cpu.rabbitmq, cpu.mariadb]) };
}

export interface EndToEndRun {
  queueType: 'quorum' | 'classic';
  workers: number;
  payments: number;
  leadSec: number;
  publishRate: number;
  publishedLate: number;
  hopsPerTimer: number;
  expectedDeadLetterings: number;
  counterDeadLetterings: number;
  deadLetterPeakPerSec: number;
  deadLetterSeries: Array<{ t: number; perSec: number }>;
  /** All N reached settlement within this many seconds of the shared deadline. */
  lastSettledAfterDeadlineSec: number;
  settledPerSecAfterDeadline: number;
  lateness: ReturnType<typeof distribution>;
  early: number;
  settled: number;
  perSecond: number[];
  lockRetries: number;
}

const CLOSED = { to: 'CLOSED' };
const LOCK_RETRIES = 'compensator_db_lock_retries_total';
const TRANSITIONS = 'compensator_transitions_total';

/** closed_at (epoch ms) of a merchant's CLOSED payments in `table` (the peer has a copy of payments). */
export async function closedTimes(pool: mysql.Pool, merchantId: string, table = 'payments'): Promise<number[]> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
  const [rows] = await pool.query(`SELECT closed_at FROM ${table} WHERE merchant_id = ? AND status = 'CLOSED'`, [merchantId]);
  return (rows as Array<{ closed_at: Date }>).map((r) => r.closed_at.getTime());
}

export function perSecondCounts(times: number[], from: number): number[] {
  const out: number[] = [];
  for (const t of times) {
    const i = Math.floor((t - from) / 1000);
    if (i < 0) continue;
    while (out.length <= i) out.push(0);
    out[i] = (out[i] as number) + 1;
  }
  return out;
}

/** Waits until the running workers' CLOSED transitions grew by `n` (bounded). */
async function waitSettled(workers: number, base: number, n: number, timeoutMs: number): Promise<void> {
  await waitFor(`${n} settlements`, async () => (await workerCounter(workers, TRANSITIONS, CLOSED)) - base >= n, timeoutMs, 200);
}

async function drainWith(ctx: Context, pool: mysql.Pool, workers: number, tag: string): Promise<DrainRun> {
  const n = ctx.sizes.drain.payments;
  const env = appEnvironment(ctx.configs.quorum, ctx.db);
  await stackUp(0, 0, env); // no consumer while the queue fills
  const bench = await openBenchBroker(ctx.configs.quorum, ctx.db);
  try {
    await bench.broker.withChannel((ch) => ch.purgeQueue(bench.names.compensationQueue));
    const merchantId = `drain_${tag}_${ctx.runId}`;
    const { insertSec, publishRate } = await fillDueQueue(pool, bench, ctx.configs.quorum, ctx.db, merchantId, n);
    log(`drain ${workers}w: ${n} payments inserted in ${insertSec.toFixed(1)} s, timers published (DelayScheduler, deadline in the past) at ${Math.round(publishRate)}/s, all waiting in ${bench.names.compensationQueue}`);

    ctx.memory.setScenario(`drain-${workers}w`);
    const started = Date.now();
    const sampler = startCpuSampler(stackGroupsCpuMs);
    try {
      await stackUp(0, workers, env);
      await waitSettled(workers, 0, n, 600000);
    } finally {
      await sampler.stop();
    }
    const times = (await closedTimes(pool, merchantId)).sort((a, b) => a - b);
    const first = times[0] as number;
    const last = times[times.length - 1] as number;
    const drainSec = Math.max(0.001, (last - first) / 1000);
    const perSecond = perSecondCounts(times, first);
    const lockRetries = await workerCounter(workers, LOCK_RETRIES);
    const r: DrainRun = {
      workers,
      payments: n,
      insertSec,
      publishRate,
      drainSec,
      wallSec: (last - started) / 1000,
      settledPerSec: times.length / drainSec,
      perSecond,
      // full seconds only: the first and last are partial
      perSecondSpread: spread(perSecond.length > 2 ? perSecond.slice(1, -1) : perSecond),
      lockRetries,
      settled: times.length,
      // the window of the rate: first to last settlement (closed_at is the settling transaction's time)
      cpuMicrosPerPayment: withTotal(sampler.perPayment(first, last, times.length - 1, STACK_GROUPS)),
    };
    const cpu = r.cpuMicrosPerPayment;
    log(
      `drain ${workers}w: ${r.settled} settled in ${drainSec.toFixed(2)} s = ${Math.round(r.settledPerSec)}/s (wall from start command ${r.wallSec.toFixed(1)} s), lock retries ${lockRetries}; CPU per payment: workers ${fmt(cpu.workers)} µs, RabbitMQ ${fmt(cpu.rabbitmq)} µs, MariaDB ${fmt(cpu.mariadb)} µs`,
    );
    return r;
  } finally {
    await bench.close();
  }
}

/**
 * N timers sharing one deadline D, published over the lead time before D with the delay that is
 * left (so each passes through the levels of its own bits), settled by the running workers.
 */
export async function runEndToEnd(ctx: Context, queueType: 'quorum' | 'classic'): Promise<EndToEndRun> {
  const n = ctx.sizes.drain.endToEnd;
  const workers = 2;
  const configFile = queueType === 'quorum' ? ctx.configs.quorum : ctx.configs.classic;
  await stackUp(0, workers, appEnvironment(configFile, ctx.db));
  const pool = benchPool(ctx.db, 4);
  const bench = await openBenchBroker(configFile, ctx.db);
  const labels = queueType === 'quorum' ? { queue_type: 'rabbit_quorum_queue', dead_letter_strategy: 'at_least_once' } : { queue_type: 'rabbit_classic_queue', dead_letter_strategy: 'at_most_once' };
  const series: Array<{ at: number; total: number }> = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const text = await httpText(RABBITMQ_PROMETHEUS).catch(() => undefined);
      if (text !== undefined) series.push({ at: Date.now(), total: promSum(text, 'rabbitmq_global_messages_dead_lettered_expired_total', labels) });
      await sleep(250);
    }
  })();
  try {
    ctx.memory.setScenario(`e2e-${queueType}`);
    const merchantId = `e2e_${queueType}_${ctx.runId}`;
    const ids = await insertPayments(pool, { merchantId, count: n, expiresAt: () => Date.now() + 3_600_000 });
    const leadSec = Math.ceil(n / ctx.sizes.drain.endToEndPublishRateGuess + (ctx.quick ? 2 : 4));
    const deadline = Date.now() + leadSec * 1000;
    await pool.query('UPDATE payments SET expires_at = ? WHERE merchant_id = ?', [new Date(deadline), merchantId]);
    const base = await workerCounter(workers, TRANSITIONS, CLOSED);
    const retriesBase = await workerCounter(workers, LOCK_RETRIES);
    const schedulers = await openSchedulerPool(configFile, ctx.db, 3);
    const pub = await schedulers.publish(ids.map((paymentId) => ({ paymentId, deadline }))).finally(() => schedulers.close());
    const publishedLate = pub.delays.filter((d) => d === 0).length;
    const hops = pub.delays.reduce((a, d) => a + popcount(d), 0);
    log(`e2e ${queueType}: ${n} timers for one deadline ${leadSec} s ahead, published in ${pub.seconds.toFixed(1)} s (${publishedLate} after it), ${(hops / n).toFixed(2)} hops per timer`);
    await waitSettled(workers, base, n, leadSec * 1000 + 600000);
    await sleep(1000); // the dead-letter counter's last samples
    const times = (await closedTimes(pool, merchantId)).sort((a, b) => a - b);
    const last = times[times.length - 1] as number;
    const lateness = times.map((t) => (t - deadline) / 1000);
    const lastSettledAfterDeadlineSec = (last - deadline) / 1000;
    // dead-letterings per second from the broker's global counter (this queue type)
    const perSec: Array<{ t: number; perSec: number }> = [];
    for (let i = 1; i < series.length; i++) {
      const a = series[i - 1] as { at: number; total: number };
      const b = series[i] as { at: number; total: number };
      perSec.push({ t: (b.at - deadline) / 1000, perSec: (b.total - a.total) / ((b.at - a.at) / 1000) });
    }
    // peak over 1 s windows
    let peak = 0;
    for (let i = 0; i < series.length; i++) {
      const a = series[i] as { at: number; total: number };
      const j = series.findIndex((s) => s.at >= a.at + 1000);
      if (j < 0) break;
      const b = series[j] as { at: number; total: number };
      peak = Math.max(peak, (b.total - a.total) / ((b.at - a.at) / 1000));
    }
    const firstSample = series[0];
    const lastSample = series[series.length - 1];
    const r: EndToEndRun = {
      queueType,
      workers,
      payments: n,
      leadSec,
      publishRate: pub.rate,
      publishedLate,
      hopsPerTimer: hops / n,
      expectedDeadLetterings: hops,
      counterDeadLetterings: firstSample && lastSample ? lastSample.total - firstSample.total : NaN,
      deadLetterPeakPerSec: peak,
      deadLetterSeries: perSec,
      lastSettledAfterDeadlineSec,
      settledPerSecAfterDeadline: n / Math.max(0.001, lastSettledAfterDeadlineSec),
      lateness: distribution(lateness),
      early: lateness.filter((l) => l < 0).length,
      settled: times.length,
      perSecond: perSecondCounts(times, deadline),
      lockRetries: (await workerCounter(workers, LOCK_RETRIES)) - retriesBase,
    };
    log(
      `e2e ${queueType}: all ${r.settled} settled within ${lastSettledAfterDeadlineSec.toFixed(2)} s of the deadline (${Math.round(r.settledPerSecAfterDeadline)}/s), lateness p50 ${r.lateness.p50.toFixed(2)} s p99 ${r.lateness.p99.toFixed(2)} s, early ${r.early}, dead-letterings ${r.counterDeadLetterings} (expected ${hops}), peak ${Math.round(peak)}/s`,
    );
    return r;
  } finally {
    sampling = false;
    await sampler;
    await bench.close();
    await pool.end();
  }
}

export interface DrainResults {
  runs: DrainRun[];
}

export async function runDrain(ctx: Context): Promise<DrainResults> {
  const pool = benchPool(ctx.db, 4);
  try {
    const runs: DrainRun[] = [];
    runs.push(await drainWith(ctx, pool, 1, '1w'));
    runs.push(await drainWith(ctx, pool, 2, '2w'));
    return { runs };
  } finally {
    await pool.end();
  }
}
