/**
 * Scenario 2: creates through the stack's nginx with 2 api replicas, closed-loop at rising
 * concurrency, then open-loop at a fixed 500 requests per second for its p99, and where those
 * creates' time went (the apis' group-commit batch histograms, read before and after).
 */
import os from 'node:os';
import { checkAbort, fmt, log, machineCpuMs, promSum, sleep, spread, type Spread } from './common';
import type { Context } from './context';
import { NGINX_URL, appEnvironment, benchMerchant, benchPool, scrapeMetrics, stackCpuMs, stackUp, type StackCpu } from './environment';
import { createBodies, runLoad, type LoadResult } from './load';

const PHASES = ['wait', 'transaction', 'publish'] as const;

/** Where the paced creates' time went, from the apis' group-commit batch histograms. */
export interface BatchPhases {
  batches: number;
  createsPerBatch: number;
  /** Per phase: the mean, and the upper bound of the histogram bucket that holds the p99 (ms). */
  phases: Record<(typeof PHASES)[number], { meanMs: number; p99AtMostMs: number }>;
}

/** The change in `compensator_create_batch_*` between two scrapes of all api replicas. */
function batchPhases(before: string, after: string): BatchPhases | undefined {
  const delta = (metric: string, labels: Record<string, string> = {}) => promSum(after, metric, labels) - promSum(before, metric, labels);
  const batches = delta('compensator_create_batch_size_count');
  if (batches <= 0) return undefined;
  const bounds = [...new Set([...after.matchAll(/^compensator_create_batch_seconds_bucket\{[^}]*le="([^"]+)"/gm)].map((m) => m[1] as string))];
  const phases = {} as BatchPhases['phases'];
  for (const phase of PHASES) {
    const count = delta('compensator_create_batch_seconds_count', { phase });
    // Cumulative buckets: the first bound whose count reaches 99 % of the batches.
    const p99 = bounds.map((le) => ({ le, n: delta('compensator_create_batch_seconds_bucket', { phase, le }) })).find((b) => b.n >= 0.99 * count);
    phases[phase] = { meanMs: (1000 * delta('compensator_create_batch_seconds_sum', { phase })) / Math.max(1, count), p99AtMostMs: p99 && p99.le !== '+Inf' ? 1000 * Number(p99.le) : Infinity };
  }
  return { batches, createsPerBatch: delta('compensator_create_batch_size_sum') / batches, phases };
}

/** CPU µs per 2xx create of each group over a paced run, and how busy the whole machine was. */
export interface CreateCpu {
  microsPerCreate: Record<Exclude<keyof StackCpu, 'workers'>, number | undefined>;
  /** Cores in use on average, everything on the machine included, out of `cores`. */
  busyCores: number;
  cores: number;
}

function createCpu(before: { stack: StackCpu; machine: { busy: number; total: number } }, creates: number): CreateCpu {
  const stack = stackCpuMs();
  const machine = machineCpuMs();
  const per = (key: keyof StackCpu) => {
    const [a, b] = [before.stack[key], stack[key]];
    return a === undefined || b === undefined ? undefined : ((b - a) * 1000) / Math.max(1, creates);
  };
  const wallMs = (machine.total - before.machine.total) / os.cpus().length;
  return {
    microsPerCreate: { apis: per('apis'), rabbitmq: per('rabbitmq'), mariadb: per('mariadb'), nginx: per('nginx'), bench: per('bench') },
    busyCores: (machine.busy - before.machine.busy) / Math.max(1, wallMs),
    cores: os.cpus().length,
  };
}

export interface FixedRate {
  target: number;
  connections: number;
  runs: LoadResult[];
  achieved: Spread;
  p50: Spread;
  p99: Spread;
  errors: number;
  non2xx: number;
  /** 429s over all its repeats: the paced load is normal traffic, which the limits must let through. */
  rateLimited: number;
  /** Over all its repeats; undefined when the apis' /metrics could not be read. */
  batches?: BatchPhases;
  /** Over all its repeats (their load included: `bench` is the load generator). */
  cpu: CreateCpu;
}

export interface IntakeResults {
  apiReplicas: number;
  /** cpu: over the level's repeats, as the paced runs count it (what a create costs when batches fill). */
  byConcurrency: Array<{ connections: number; runs: LoadResult[]; rate: Spread; p50: Spread; p99: Spread; errors: number; non2xx: number; cpu: CreateCpu }>;
  fixedRate: FixedRate;
  /** The same paced load at half the best closed-loop rate: latency when not saturated. */
  halfCapacity?: FixedRate;
  /** Outbox rows left when the check gave up (10 s after the load), 0 once it emptied. */
  outboxLeftAfter: number;
  outboxEmptyAfterMs?: number;
  paymentsInDb: number;
  okResponses: number;
}

export async function runIntake(ctx: Context): Promise<IntakeResults> {
  const s = ctx.sizes.intake;
  await stackUp(2, 0, appEnvironment(ctx.configs.quorum, ctx.db));
  const merchantId = `intake_${ctx.runId}`;
  const bodies = createBodies({ merchantId, orderPrefix: 'o', timeoutSeconds: s.timeoutSeconds });
  const headers = await benchMerchant(merchantId);
  let okResponses = 0;
  const warm = await runLoad({ url: NGINX_URL, path: '/v1/payments', connections: 32, durationSec: ctx.quick ? 1 : 2, body: bodies.next, headers });
  okResponses += warm.ok;
  log(`intake: warm-up ${Math.round(warm.okPerSec)} creates/s`);

  const byConcurrency: IntakeResults['byConcurrency'] = [];
  for (const connections of s.concurrencies) {
    const runs: LoadResult[] = [];
    const cpuBefore = { stack: stackCpuMs(), machine: machineCpuMs() };
    for (let i = 0; i < ctx.sizes.repeats; i++) {
      checkAbort();
      const r = await runLoad({ url: NGINX_URL, path: '/v1/payments', connections, durationSec: s.durationSec, body: bodies.next, headers });
      okResponses += r.ok;
      runs.push(r);
    }
    const entry = {
      connections,
      runs,
      rate: spread(runs.map((r) => r.okPerSec)),
      p50: spread(runs.map((r) => r.p50)),
      p99: spread(runs.map((r) => r.p99)),
      errors: runs.reduce((a, r) => a + r.errors + r.timeouts, 0),
      non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
      cpu: createCpu(cpuBefore, runs.reduce((a, r) => a + r.ok, 0)),
    };
    byConcurrency.push(entry);
    log(`intake: c=${connections}: ${runs.map((r) => Math.round(r.okPerSec)).join(', ')} creates/s, p99 ${runs.map((r) => Math.round(r.p99)).join(', ')} ms, errors ${entry.errors}, non-2xx ${entry.non2xx}`);
  }

  const paced = async (target: number): Promise<FixedRate> => {
    const metricsBefore = (await scrapeMetrics('api', 2)).join('\n');
    const cpuBefore = { stack: stackCpuMs(), machine: machineCpuMs() };
    const runs: LoadResult[] = [];
    for (let i = 0; i < ctx.sizes.repeats; i++) {
      checkAbort();
      const r = await runLoad({ url: NGINX_URL, path: '/v1/payments', connections: s.fixedConnections, durationSec: s.fixedSec, overallRate: target, body: bodies.next, headers });
      okResponses += r.ok;
      runs.push(r);
    }
    const cpu = createCpu(cpuBefore, runs.reduce((a, r) => a + r.ok, 0));
    const f: FixedRate = {
      target,
      connections: runs[0]?.connections ?? s.fixedConnections,
      runs,
      achieved: spread(runs.map((r) => r.okPerSec)),
      p50: spread(runs.map((r) => r.p50)),
      p99: spread(runs.map((r) => r.p99)),
      errors: runs.reduce((a, r) => a + r.errors + r.timeouts, 0),
      non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
      rateLimited: runs.reduce((a, r) => a + r.rateLimited, 0),
      cpu,
      // The last batches report after their publish confirms, a moment after the last answer.
      batches: await sleep(500).then(async () => batchPhases(metricsBefore, (await scrapeMetrics('api', 2)).join('\n'))),
    };
    const us = cpu.microsPerCreate;
    log(`intake: paced ${target}/s: achieved ${runs.map((r) => Math.round(r.okPerSec)).join(', ')}/s, p99 ${runs.map((r) => Math.round(r.p99)).join(', ')} ms; CPU µs per create: apis ${fmt(us.apis)}, RabbitMQ ${fmt(us.rabbitmq)}, MariaDB ${fmt(us.mariadb)}, nginx ${fmt(us.nginx)}, load generator ${fmt(us.bench)}; machine ${fmt(cpu.busyCores, 2)} of ${cpu.cores} cores busy`);
    return f;
  };
  const fixedRate = await paced(s.fixedRate);
  const best = Math.max(...byConcurrency.map((c) => c.rate.median));
  // (--quick skips it to stay under 2 minutes)
  const halfCapacity = ctx.quick ? undefined : await paced(Math.max(20, Math.round(best / 2 / 10) * 10));

  // Every 201 left a payment, and its timer left the outbox (answered at commit, published just
  // after): how long until the outbox is empty, at most 10 s.
  const loadEnded = Date.now();
  const pool = benchPool(ctx.db, 2);
  try {
    const outboxRows = async () => Number(((await pool.query('SELECT COUNT(*) AS n FROM outbox')) as unknown as [[{ n: number }]])[0][0].n);
    let outboxLeft = await outboxRows();
    while (outboxLeft > 0 && Date.now() - loadEnded < 10_000) {
      await sleep(100);
      outboxLeft = await outboxRows();
    }
    const outboxEmptyAfterMs = outboxLeft === 0 ? Date.now() - loadEnded : undefined;
    const [[payments]] = (await pool.query('SELECT COUNT(*) AS n FROM payments WHERE merchant_id = ?', [merchantId])) as unknown as [[{ n: number }]];
    return { apiReplicas: 2, byConcurrency, fixedRate, halfCapacity, outboxLeftAfter: outboxLeft, outboxEmptyAfterMs, paymentsInDb: Number(payments.n), okResponses };
  } finally {
    await pool.end();
  }
}
