/**
 * Scenario 7 (issue #22): a peer design side by side, BullMQ delayed jobs on the stack's Redis
 * (scripts/stack/redis.sh: AOF, appendfsync everysec). A job per payment, `{ id }`, with jobId
 * `pay-<id>` (BullMQ refuses integer ids) and delay = deadline − now, settled by worker processes
 * (peer-bullmq-worker.ts) with the statements our workers settle a due timer with (adapter
 * none): the conditional UPDATE by primary key and the event row, in one transaction, on copies
 * of the tables (peer_payments, peer_payment_events) so that the designs share no row.
 *
 * For both designs, in one run on the same cores: lateness at the accuracy scenario's rate and
 * timeouts (2 workers), the drain of already-due timers with 1 and 2 workers, CPU per settled
 * payment of the workers, the broker (RabbitMQ or Redis) and MariaDB over the drain's window, the
 * broker's memory per 1 M waiting timers (measured at sizes.peer.memoryTimers and scaled), and
 * how many of sizes.peer.killTimers waiting timers a SIGKILL of the broker loses. Ours reuses
 * this run's drain and accuracy (quorum, direct) results when they ran and runs them here
 * otherwise; its memory and SIGKILL runs use a prefix of their own (ctx.prefixes.peer).
 */
import amqp from 'amqplib';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import type mysql from 'mysql2/promise';
import { readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { TOP_LEVEL } from '../../src/messaging/delay-levels';
import { createTopologyNames } from '../../src/messaging/topology';
import { waitFor as sharedWaitFor } from '../../test/helpers/wait';
import { measureLateness, runAccuracy, type AccuracyRun, type Lateness } from './accuracy';
import { startChild, stopChild } from './children';
import { ROOT, STACK_DIR, abort, checkAbort, cpuMsOf, fmt, httpText, log, memoryOf, promSum, readPid, run, sleep, spread, sumIfAll, waitFor, type Spread } from './common';
import type { Context } from './context';
import { closedTimes, perSecondCounts, runDrain, startCpuSampler, type DrainResults } from './drain';
import { AMQP_URL, RABBITMQ_PROMETHEUS, appEnvironment, benchPool, databaseUrl, mariadbPid, rabbitmqPid, redisDataDir, redisPid, redisPort, stackUp } from './environment';
import { deleteBenchTopology, insertPayments, openSchedulerPool } from './timers';

const TABLE = 'peer_payments';
const EVENTS_TABLE = 'peer_payment_events';
/** What a payments team would set: completed jobs removed (else Redis grows by every payment), retries with backoff. */
const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: 1000, attempts: 5, backoff: { type: 'exponential', delay: 1000 } } as const;
/** Ids of timers that have no row (memory and SIGKILL runs: they never fall due during the run). */
const SYNTHETIC_ID_BASE = 900_000_000;
const BULLMQ_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'node_modules/bullmq/package.json'), 'utf8')) as { version: string }).version;

export interface SideAccuracy extends Lateness {
  targetRate: number;
  achievedRate: number;
  durationSec: number;
  timeouts: [number, number];
}

export interface SideDrain {
  workers: number;
  payments: number;
  settled: number;
  drainSec: number;
  settledPerSec: number;
  perSecondSpread: Spread;
  /** CPU µs per settled payment, first to last settlement; broker = RabbitMQ (ours) or Redis (peer). */
  cpuMicrosPerPayment: { workers?: number; broker?: number; mariadb?: number; total?: number };
}

export interface SideMemory {
  timers: number;
  delaySec: number;
  addSec: number;
  rssBeforeMb?: number;
  rssAfterMb?: number;
  /** RSS growth per 1 M waiting timers, measured at `timers` and scaled linearly. */
  rssPerMillionMb?: number;
  /** The broker's own account: Redis INFO used_memory, or the Erlang VM's memory total (erlang_vm_memory_bytes_total). */
  heapFigure: string;
  heapBeforeMb: number;
  heapAfterMb: number;
  heapPerMillionMb: number;
  waiting: number;
  /** Whether the broker's own figure had held still (3 readings a second apart within 1 % or 2 MB) before each reading. */
  settled: { before: boolean; after: boolean };
}

export interface SideKill {
  timers: number;
  delaySec: number;
  /** From the last publisher confirm (ours) or the last addBulk answer (peer) to the SIGKILL. */
  killAfterMs: number;
  restartSec: number;
  found: number;
  lost: number;
}

export interface PeerResults {
  bullmq: string;
  redis: { version: string; port: number; appendonly: string; appendfsync: string; save: string };
  concurrency: number;
  dbPool: number;
  /** Where our side's drain and accuracy figures come from. */
  oursFrom: { drain: 'this run' | 'run by the peer scenario'; accuracy: 'this run' | 'run by the peer scenario' };
  accuracy: { ours?: SideAccuracy; peer?: SideAccuracy };
  drain: { ours: SideDrain[]; peer: SideDrain[] };
  memory: { ours?: SideMemory; peer?: SideMemory };
  kill: { ours?: SideKill; peer?: SideKill };
  /** Redis keys of the run's prefix left after the clean-up (0 when all went). */
  keysLeft?: number;
  errors: Record<string, string>;
}

// ---------------------------------------------------------------- helpers

/** `promise`, or undefined after `ms` (closing a client whose server was killed must not hang the run). */
async function bounded<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function connection() {
  return { host: '127.0.0.1', port: redisPort(), maxRetriesPerRequest: null };
}

function openQueue(ctx: Context, name: string): Queue<{ id: number }> {
  return new Queue<{ id: number }>(name, { connection: connection(), prefix: ctx.prefixes.peer });
}

async function withRedis<T>(work: (redis: IORedis) => Promise<T>): Promise<T> {
  const redis = new IORedis({ ...connection(), lazyConnect: true, connectTimeout: 5000 });
  await redis.connect();
  try {
    return await work(redis);
  } finally {
    await bounded(redis.quit(), 5000);
    redis.disconnect();
  }
}

function infoField(info: string, key: string): string | undefined {
  return new RegExp(`^${key}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** Adds the jobs in bulks of 1,000 (BullMQ's addBulk: one pipeline of its add script per job). */
async function addJobs(queue: Queue<{ id: number }>, items: Array<{ id: number; delay: number }>, chunk = 1000): Promise<number> {
  const t0 = Date.now();
  for (let i = 0; i < items.length; i += chunk) {
    checkAbort();
    await queue.addBulk(items.slice(i, i + chunk).map(({ id, delay }) => ({ name: 'timer', data: { id }, opts: { ...JOB_OPTIONS, jobId: `pay-${id}`, delay } })));
  }
  return (Date.now() - t0) / 1000;
}

/** The stack's redis-server, checked by its working directory and the stack's environment marker (scripts/stack/common.sh's is_ours, as the stack checks it). */
function stackRedisPid(): number {
  const pid = redisPid();
  if (!pid) throw new Error(`no redis pid file under ${STACK_DIR}/redis (scripts/stack.sh up starts it)`);
  let cwd = '';
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    throw new Error(`redis-server pid ${pid} from the pid file is not running`);
  }
  if (cwd !== redisDataDir()) throw new Error(`pid ${pid} is not the stack's redis-server (its directory is ${cwd})`);
  // The stack's marker too (scripts/stack/common.sh is_ours): a reused pid in that directory is not ours to SIGKILL.
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  if (!environ.includes(`PC_STACK_DIR=${STACK_DIR}`)) throw new Error(`pid ${pid} does not carry the stack's marker PC_STACK_DIR=${STACK_DIR}`);
  return pid;
}

async function waitGone(pids: Array<number | undefined>, timeoutMs: number): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      // a zombie is gone for our purpose: its parent (init) reaps it when it gets to it
      return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  await waitFor('the killed broker to be gone', async () => pids.every((p) => p === undefined || !alive(p)), timeoutMs, 100);
}

async function restartStack(what: string): Promise<number> {
  const t0 = Date.now();
  await run('bash', ['scripts/stack.sh', 'up'], { timeoutMs: 300000 });
  const sec = (Date.now() - t0) / 1000;
  log(`peer: ${what} restarted by scripts/stack.sh up in ${sec.toFixed(1)} s`);
  return sec;
}

// ---------------------------------------------------------------- the peer's workers

interface PeerWorkers {
  pids: number[];
  settled(): number;
  failed(): number;
  waitSettled(n: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** `count` worker processes on `queue`, started like the bench's other children (children.ts), awaited until each consumes. */
async function startPeerWorkers(ctx: Context, queue: string, count: number, pids: number[]): Promise<PeerWorkers> {
  const settled = new Array<number>(count).fill(0);
  const failed = new Array<number>(count).fill(0);
  let ready = 0;
  let died: string | undefined;
  let stopping = false;
  const children = Array.from({ length: count }, (_, i) => {
    const child = startChild(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/bench/peer-bullmq-worker.ts')], {
      ...process.env,
      PEER_REDIS_PORT: String(redisPort()),
      PEER_PREFIX: ctx.prefixes.peer,
      PEER_QUEUE: queue,
      PEER_CONCURRENCY: String(ctx.sizes.peer.concurrency),
      PEER_DATABASE_URL: databaseUrl(ctx.db),
      PEER_DB_POOL: String(ctx.sizes.peer.dbPool),
      PEER_TABLE: TABLE,
      PEER_EVENTS_TABLE: EVENTS_TABLE,
    });
    if (child.pid) pids.push(child.pid);
    let buf = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') ready++;
        const m = /^settled (\d+) failed (\d+)$/.exec(line);
        if (m) [settled[i], failed[i]] = [Number(m[1]), Number(m[2])];
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.once('exit', (code) => {
      if (!stopping) died = `peer worker ${i + 1} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
    });
    return child;
  });
  const stop = async () => {
    stopping = true;
    await Promise.all(children.map((c) => stopChild(c, 10000)));
  };
  // A worker that died fails the wait at once, rather than at its deadline.
  const checkAlive = () => {
    checkAbort();
    if (died) throw new Error(died);
  };
  try {
    await sharedWaitFor('the peer workers to consume', () => ready >= count, 60000, 100, { abort: checkAlive });
  } catch (err) {
    await stop();
    throw err;
  }
  const total = (a: number[]) => a.reduce((x, y) => x + y, 0);
  return {
    pids,
    settled: () => total(settled),
    failed: () => total(failed),
    waitSettled: (n, timeoutMs) => sharedWaitFor(`${n} peer settlements`, () => total(settled) >= n, timeoutMs, 100, { abort: checkAlive }).then(() => undefined),
    stop,
  };
}

// ---------------------------------------------------------------- drain

function oursDrainSides(drain: DrainResults): SideDrain[] {
  return drain.runs.map((d) => ({
    workers: d.workers,
    payments: d.payments,
    settled: d.settled,
    drainSec: d.drainSec,
    settledPerSec: d.settledPerSec,
    perSecondSpread: d.perSecondSpread,
    cpuMicrosPerPayment: { workers: d.cpuMicrosPerPayment.workers, broker: d.cpuMicrosPerPayment.rabbitmq, mariadb: d.cpuMicrosPerPayment.mariadb, total: d.cpuMicrosPerPayment.total },
  }));
}

async function peerDrain(ctx: Context, pool: mysql.Pool, workers: number): Promise<SideDrain> {
  const n = ctx.sizes.drain.payments;
  const name = `drain-${workers}w`;
  const queue = openQueue(ctx, name);
  try {
    const merchantId = `peer_drain_${workers}w_${ctx.runId}`;
    const t0 = Date.now();
    const dueAt = Date.now() - 1000;
    const ids = await insertPayments(pool, { merchantId, count: n, expiresAt: () => dueAt, table: TABLE });
    const insertSec = (Date.now() - t0) / 1000;
    // Already due: no delay, so each job waits in the queue's wait list when the workers start
    // (ours: each timer waits in the compensation queue).
    const addSec = await addJobs(queue, ids.map((id) => ({ id, delay: 0 })));
    const waiting = await queue.getWaitingCount();
    if (waiting < n) throw new Error(`peer drain ${workers}w: ${waiting} of ${n} jobs waiting after the adds`);
    log(`peer drain ${workers}w: ${n} payments inserted in ${insertSec.toFixed(1)} s, jobs added in ${addSec.toFixed(1)} s (${Math.round(n / Math.max(0.001, addSec))}/s), all waiting`);
    const pids: number[] = [];
    const redis = stackRedisPid();
    const sampler = startCpuSampler(() => ({ workers: sumIfAll(pids.map(cpuMsOf)), broker: cpuMsOf(redis), mariadb: ((p) => (p ? cpuMsOf(p) : undefined))(mariadbPid()) }));
    let w: PeerWorkers | undefined;
    try {
      w = await startPeerWorkers(ctx, name, workers, pids);
      await w.waitSettled(n, 600000);
    } finally {
      await sampler.stop();
      await w?.stop();
    }
    const times = (await closedTimes(pool, merchantId, TABLE)).sort((a, b) => a - b);
    const first = times[0] as number;
    const last = times[times.length - 1] as number;
    const drainSec = Math.max(0.001, (last - first) / 1000);
    const perSecond = perSecondCounts(times, first);
    const cpu = sampler.perPayment(first, last, times.length - 1, ['workers', 'broker', 'mariadb'] as const);
    const r: SideDrain = {
      workers,
      payments: n,
      settled: times.length,
      drainSec,
      settledPerSec: times.length / drainSec,
      perSecondSpread: spread(perSecond.length > 2 ? perSecond.slice(1, -1) : perSecond),
      cpuMicrosPerPayment: { ...cpu, total: sumIfAll([cpu.workers, cpu.broker, cpu.mariadb]) },
    };
    log(`peer drain ${workers}w: ${r.settled} settled in ${drainSec.toFixed(2)} s = ${Math.round(r.settledPerSec)}/s; CPU per payment: workers ${fmt(cpu.workers)} µs, Redis ${fmt(cpu.broker)} µs, MariaDB ${fmt(cpu.mariadb)} µs`);
    return r;
  } finally {
    await queue.obliterate({ force: true }).catch((err) => log(`peer: obliterating ${name} failed: ${(err as Error).message}`));
    await queue.close();
  }
}

// ---------------------------------------------------------------- accuracy

function oursAccuracySide(a: AccuracyRun): SideAccuracy {
  const { targetRate, achievedRate, durationSec, timeouts, created, settled, unsettled, early, lateness, windowP99, binMs, histogram } = a;
  return { targetRate, achievedRate, durationSec, timeouts, created, settled, unsettled, early, lateness, windowP99, binMs, histogram };
}

/** The accuracy scenario's load (accuracy.ts viaDirect): rows inserted in 100 ms ticks, a job each with the delay left to its deadline; 2 workers. */
async function peerAccuracy(ctx: Context, pool: mysql.Pool): Promise<SideAccuracy> {
  const s = ctx.sizes.accuracy;
  const name = 'accuracy';
  const queue = openQueue(ctx, name);
  const merchantId = `peer_acc_${ctx.runId}`;
  let w: PeerWorkers | undefined;
  try {
    w = await startPeerWorkers(ctx, name, 2, []);
    log(`peer accuracy: ${s.rate}/s for ${s.durationSec} s, timeouts ${s.minTimeout}-${s.maxTimeout} s, 2 workers`);
    const t0 = Date.now();
    let created = 0;
    let tick = 0;
    while (Date.now() - t0 < s.durationSec * 1000) {
      checkAbort();
      tick++;
      const due = Math.round((s.rate * (Date.now() - t0)) / 1000) - created;
      if (due > 0) {
        const now = Date.now();
        const deadlines = Array.from({ length: due }, () => now + (s.minTimeout + Math.floor(Math.random() * (s.maxTimeout - s.minTimeout + 1))) * 1000);
        const ids = await insertPayments(pool, { merchantId, count: due, orderOffset: created, expiresAt: (i) => deadlines[i] as number, concurrency: 1, batch: 1000, table: TABLE });
        await addJobs(queue, ids.map((id, i) => ({ id, delay: Math.max(0, (deadlines[i] as number) - Date.now()) })));
        created += due;
      }
      const next = t0 + tick * 100;
      if (next > Date.now()) await sleep(next - Date.now());
    }
    const achieved = created / ((Date.now() - t0) / 1000);
    log(`peer accuracy: ${created} payments created (${Math.round(achieved)}/s); waiting for the last deadlines`);
    // As ours: every deadline is at most maxTimeout after its create; 15 s more for settling.
    await w.waitSettled(created, (s.maxTimeout + 15) * 1000).catch((err: Error) => {
      if (abort.requested) throw err;
      log(`peer accuracy: ${w?.settled()} of ${created} settled when the wait ended (${err.message})`);
    });
    const result: SideAccuracy = { targetRate: s.rate, achievedRate: achieved, durationSec: s.durationSec, timeouts: [s.minTimeout, s.maxTimeout], ...(await measureLateness(pool, TABLE, merchantId)) };
    log(`peer accuracy: settled ${result.settled}/${result.created}, lateness p50 ${result.lateness.p50.toFixed(3)} s p99 ${result.lateness.p99.toFixed(3)} s max ${result.lateness.max.toFixed(3)} s, early ${result.early}; jobs failed ${w.failed()}`);
    return result;
  } finally {
    await w?.stop();
    await queue.obliterate({ force: true }).catch((err) => log(`peer: obliterating ${name} failed: ${(err as Error).message}`));
    await queue.close();
  }
}

// ---------------------------------------------------------------- memory

const mb = (bytes: number) => bytes / 1e6;

/**
 * A reading once the broker's own figure has held still: RabbitMQ frees memory long after the
 * work that used it (a quorum queue keeps messages in its WAL's memory tables until the WAL
 * rolls over), which read at the wrong moment showed as a negative growth. Bounded: after 45 s
 * the last reading is taken, marked not settled.
 */
async function settledReading<T extends { heap: number }>(read: () => Promise<T>): Promise<{ value: T; settled: boolean }> {
  const recent: T[] = [];
  const deadline = Date.now() + 45000;
  for (;;) {
    checkAbort();
    recent.push(await read());
    if (recent.length > 3) recent.shift();
    const heaps = recent.map((r) => r.heap);
    const [lo, hi] = [Math.min(...heaps), Math.max(...heaps)];
    const last = recent[recent.length - 1] as T;
    if (recent.length === 3 && hi - lo <= Math.max(2, 0.01 * hi)) return { value: last, settled: true };
    if (Date.now() > deadline) return { value: last, settled: false };
    await sleep(1000);
  }
}

/** Both sides' figures from two readings: the growth of each figure scaled from `timers` to 1 M. */
function memoryGrowth(m: { timers: number; delaySec: number; addSec: number; before: { heap: number; rss?: number }; after: { heap: number; rss?: number }; heapFigure: string; waiting: number; settled: SideMemory['settled'] }): SideMemory {
  const scale = 1e6 / m.timers;
  const { before, after } = m;
  return {
    timers: m.timers,
    delaySec: m.delaySec,
    addSec: m.addSec,
    rssBeforeMb: before.rss,
    rssAfterMb: after.rss,
    rssPerMillionMb: before.rss !== undefined && after.rss !== undefined ? (after.rss - before.rss) * scale : undefined,
    heapFigure: m.heapFigure,
    heapBeforeMb: before.heap,
    heapAfterMb: after.heap,
    heapPerMillionMb: (after.heap - before.heap) * scale,
    waiting: m.waiting,
    settled: m.settled,
  };
}

async function peerMemory(ctx: Context): Promise<SideMemory> {
  const { memoryTimers: n, memoryDelaySec: delaySec } = ctx.sizes.peer;
  const name = 'memory';
  const queue = openQueue(ctx, name);
  const pid = stackRedisPid();
  const read = () => withRedis(async (redis) => ({ heap: mb(Number(infoField(await redis.info('memory'), 'used_memory'))), rss: memoryOf(pid)?.rssMb }));
  try {
    await queue.waitUntilReady();
    const { value: before, settled: settledBefore } = await settledReading(read);
    const addSec = await addJobs(queue, Array.from({ length: n }, (_, i) => ({ id: SYNTHETIC_ID_BASE + i, delay: delaySec * 1000 })));
    const { value: after, settled: settledAfter } = await settledReading(read);
    const waiting = await queue.getDelayedCount();
    const r = memoryGrowth({ timers: n, delaySec, addSec, before, after, heapFigure: 'Redis INFO memory used_memory', waiting, settled: { before: settledBefore, after: settledAfter } });
    log(`peer memory: ${waiting} delayed jobs (added in ${addSec.toFixed(1)} s): used_memory ${before.heap.toFixed(1)} -> ${after.heap.toFixed(1)} MB, RSS ${fmt(before.rss, 1)} -> ${fmt(after.rss, 1)} MB; per 1 M: ${fmt(r.heapPerMillionMb)} MB used_memory, ${fmt(r.rssPerMillionMb)} MB RSS`);
    return r;
  } finally {
    await queue.obliterate({ force: true }).catch((err) => log(`peer: obliterating ${name} failed: ${(err as Error).message}`));
    await queue.close();
  }
}

/** Our timers waiting under `prefix`: the sum over its delay-level queues and the compensation queue (exact, from queue.declare-ok). */
async function countOurTimers(prefix: string): Promise<number> {
  const names = createTopologyNames(prefix);
  const queues = [...Array.from({ length: TOP_LEVEL + 1 }, (_, k) => names.delayQueue(k)), names.compensationQueue];
  const conn = await amqp.connect(AMQP_URL);
  try {
    let total = 0;
    for (const q of queues) {
      // a failed check closes its channel: one channel each
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      try {
        total += (await ch.checkQueue(q)).messageCount;
      } finally {
        await ch.close().catch(() => undefined);
      }
    }
    return total;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function rabbitMemory(): Promise<{ heap: number; rss?: number }> {
  const pid = rabbitmqPid();
  const text = await httpText(RABBITMQ_PROMETHEUS);
  return { heap: mb(promSum(text, 'erlang_vm_memory_bytes_total')), rss: pid ? memoryOf(pid)?.rssMb : undefined };
}

/**
 * Makes RabbitMQ's quorum-queue write-ahead log roll over, which moves what its memory tables
 * hold into segment files. A timer waits 15 minutes, and the WAL rolls over on its own every
 * 512 MB of writes, so what a waiting timer costs in the long run is what is left after a
 * roll-over; read before one, the figure is the WAL's, and a roll-over during the run made the
 * growth negative (the full run of 2026-12-01 18:39: 1,085 -> 326 MB).
 */
async function rollOverQuorumWal(): Promise<void> {
  const r = await run('bash', ['scripts/stack.sh', 'rabbitmqctl', 'eval', 'ra_log_wal:force_roll_over(ra_log_wal).'], { timeoutMs: 70000, allowFail: true, quiet: true });
  if (r.code !== 0) log('ours memory: the WAL roll-over failed; the readings include the WAL\'s memory tables');
}

/** Our timers published as the service publishes them (DelayScheduler, 2 confirm channels), on the peer prefix. */
async function oursMemory(ctx: Context): Promise<SideMemory> {
  const { memoryTimers: n, memoryDelaySec: delaySec } = ctx.sizes.peer;
  const prefix = ctx.prefixes.peer;
  await deleteBenchTopology(prefix).catch(() => undefined);
  const schedulers = await openSchedulerPool(ctx.configs.peer, ctx.db, 2); // declares the topology
  try {
    await rollOverQuorumWal();
    const { value: before, settled: settledBefore } = await settledReading(rabbitMemory);
    const deadline = Date.now() + delaySec * 1000;
    const pub = await schedulers.publish(Array.from({ length: n }, (_, i) => ({ paymentId: SYNTHETIC_ID_BASE + i, deadline })));
    await rollOverQuorumWal();
    const { value: after, settled: settledAfter } = await settledReading(rabbitMemory);
    const waiting = await countOurTimers(prefix);
    const r = memoryGrowth({ timers: n, delaySec, addSec: pub.seconds, before, after, heapFigure: 'Erlang VM memory total (erlang_vm_memory_bytes_total)', waiting, settled: { before: settledBefore, after: settledAfter } });
    log(`ours memory: ${waiting} timers waiting (published in ${pub.seconds.toFixed(1)} s): Erlang total ${before.heap.toFixed(1)} -> ${after.heap.toFixed(1)} MB, beam RSS ${fmt(before.rss, 1)} -> ${fmt(after.rss, 1)} MB; per 1 M: ${fmt(r.heapPerMillionMb)} MB Erlang, ${fmt(r.rssPerMillionMb)} MB RSS`);
    return r;
  } finally {
    await schedulers.close();
    await deleteBenchTopology(prefix).catch((err) => log(`peer: deleting topology ${prefix} failed: ${(err as Error).message}`));
  }
}

// ---------------------------------------------------------------- SIGKILL

/** SIGKILL of the stack's redis-server right after the last add returned, restart, count what AOF (everysec) kept. */
async function peerKill(ctx: Context): Promise<SideKill> {
  const { killTimers: n, killDelaySec: delaySec } = ctx.sizes.peer;
  const name = 'kill';
  const pid = stackRedisPid();
  const queue = openQueue(ctx, name);
  let killed = false;
  let restarted = false;
  try {
    await queue.waitUntilReady();
    await addJobs(queue, Array.from({ length: n }, (_, i) => ({ id: SYNTHETIC_ID_BASE + i, delay: delaySec * 1000 })));
    const addedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    killed = true;
    const killAfterMs = Date.now() - addedAt;
    log(`peer kill: ${n} delayed jobs added; redis-server (pid ${pid}) SIGKILLed ${killAfterMs} ms after the last add returned`);
    await bounded(queue.disconnect(), 5000);
    await waitGone([pid], 30000);
    const restartSec = await restartStack('Redis');
    restarted = true;
    const counter = openQueue(ctx, name);
    try {
      const counts = await counter.getJobCounts();
      const found = Object.values(counts).reduce((a, b) => a + b, 0);
      log(`peer kill: ${found} of ${n} jobs found after the restart (${JSON.stringify(counts)})`);
      return { timers: n, delaySec, killAfterMs, restartSec, found, lost: n - found };
    } finally {
      await counter.obliterate({ force: true }).catch((err) => log(`peer: obliterating ${name} failed: ${(err as Error).message}`));
      await counter.close();
    }
  } finally {
    // the broker comes back whatever failed
    if (killed && !restarted) await restartStack('Redis (after a failure)').catch((err) => log(`peer: restarting Redis failed: ${(err as Error).message}`));
    await bounded(queue.close(), 5000);
  }
}

/** SIGKILL of the stack's RabbitMQ (its beam) right after the last publisher confirm, restart, count the timers kept. */
async function oursKill(ctx: Context): Promise<SideKill> {
  const { killTimers: n, killDelaySec: delaySec } = ctx.sizes.peer;
  const prefix = ctx.prefixes.peer;
  const beam = rabbitmqPid();
  const wrapper = readPid(path.join(STACK_DIR, 'rabbitmq', 'rabbitmq-server.pid'));
  if (!beam) throw new Error(`no RabbitMQ beam pid under ${STACK_DIR}/rabbitmq (not the stack's RabbitMQ?)`);
  // No app of the bench runs when the broker dies: the apps stay unhurt (stack.sh down --apps ends the run anyway).
  await stackUp(0, 0, appEnvironment(ctx.configs.quorum, ctx.db));
  await deleteBenchTopology(prefix).catch(() => undefined);
  const schedulers = await openSchedulerPool(ctx.configs.peer, ctx.db, 2);
  let killed = false;
  let restarted = false;
  try {
    const deadline = Date.now() + delaySec * 1000;
    await schedulers.publish(Array.from({ length: n }, (_, i) => ({ paymentId: SYNTHETIC_ID_BASE + i, deadline })));
    const confirmedAt = Date.now();
    process.kill(beam, 'SIGKILL');
    killed = true;
    const killAfterMs = Date.now() - confirmedAt;
    log(`ours kill: ${n} timers confirmed; RabbitMQ (beam pid ${beam}) SIGKILLed ${killAfterMs} ms after the last confirm`);
    await bounded(schedulers.close(), 2000); // its connections died with the broker
    await waitGone([beam, wrapper], 30000);
    const restartSec = await restartStack('RabbitMQ');
    restarted = true;
    // Quorum queues answer once their log is recovered: poll until every queue answers, then
    // until the count is all of them or has held for 5 s (a lost message never comes back).
    let last = -1;
    let since = Date.now();
    const found = await waitFor(
      'our timers to be counted after the restart',
      async () => {
        const c = await countOurTimers(prefix);
        if (c !== last) [last, since] = [c, Date.now()];
        return c >= n || Date.now() - since >= 5000 ? c : undefined;
      },
      90000,
      500,
    );
    log(`ours kill: ${found} of ${n} timers found after the restart`);
    return { timers: n, delaySec, killAfterMs, restartSec, found, lost: n - found };
  } finally {
    if (killed && !restarted) await restartStack('RabbitMQ (after a failure)').catch((err) => log(`peer: restarting RabbitMQ failed: ${(err as Error).message}`));
    if (!killed) await schedulers.close();
    await deleteBenchTopology(prefix).catch((err) => log(`peer: deleting topology ${prefix} failed: ${(err as Error).message}`));
  }
}

// ---------------------------------------------------------------- the scenario

/** Deletes what is left of the run's BullMQ keys (after each queue's obliterate); answers how many were left. */
async function sweepKeys(prefix: string): Promise<number> {
  return withRedis(async (redis) => {
    let cursor = '0';
    let found = 0;
    for (let i = 0; i < 10000; i++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) {
        found += keys.length;
        await redis.unlink(...keys);
      }
      cursor = next;
      if (cursor === '0') break;
    }
    return found;
  });
}

export async function runPeer(ctx: Context): Promise<PeerResults> {
  const redisInfo = await withRedis(async (redis) => {
    const cfg = async (key: string) => ((await redis.config('GET', key)) as string[])[1] ?? '?';
    return { version: infoField(await redis.info('server'), 'redis_version') ?? '?', port: redisPort(), appendonly: await cfg('appendonly'), appendfsync: await cfg('appendfsync'), save: await cfg('save') };
  });
  stackRedisPid(); // the CPU and the SIGKILL are read and sent by pid: it must be the stack's
  const r: PeerResults = {
    bullmq: BULLMQ_VERSION,
    redis: redisInfo,
    concurrency: ctx.sizes.peer.concurrency,
    dbPool: ctx.sizes.peer.dbPool,
    oursFrom: { drain: 'this run', accuracy: 'this run' },
    accuracy: {},
    drain: { ours: [], peer: [] },
    memory: {},
    kill: {},
    errors: {},
  };
  // Partial figures survive a failed part (the report shows what was measured).
  ctx.results.peer = r;
  log(`peer: BullMQ ${r.bullmq} on Redis ${redisInfo.version} (127.0.0.1:${redisInfo.port}, appendonly ${redisInfo.appendonly}, appendfsync ${redisInfo.appendfsync}), worker concurrency ${r.concurrency}, db pool ${r.dbPool}`);
  const part = async (name: string, fn: () => Promise<void>) => {
    checkAbort();
    try {
      await fn();
    } catch (err) {
      if (abort.requested) throw err;
      r.errors[name] = (err as Error).message.split('\n')[0] as string;
      log(`peer: ${name} failed: ${(err as Error).stack ?? String(err)}`);
    }
  };

  const pool = benchPool(ctx.db, 4);
  try {
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}, ${EVENTS_TABLE}`);
    await pool.query(`CREATE TABLE ${TABLE} LIKE payments`);
    await pool.query(`CREATE TABLE ${EVENTS_TABLE} LIKE payment_events`);

    // Ours first, when this run has not measured it.
    await part('ours drain', async () => {
      let drain = ctx.results.drain as DrainResults | undefined;
      if (!drain) {
        log('peer: this run has no drain result of ours; running it (1 and 2 workers)');
        drain = await runDrain(ctx);
        ctx.results.drain = drain;
        r.oursFrom.drain = 'run by the peer scenario';
      }
      r.drain.ours = oursDrainSides(drain);
    });
    await part('ours accuracy', async () => {
      const all = (ctx.results.accuracy ??= []) as AccuracyRun[];
      let a = all.find((x) => x.queueType === 'quorum' && x.via === 'direct');
      if (!a) {
        log('peer: this run has no accuracy (quorum, direct) result of ours; running it');
        a = await runAccuracy(ctx, 'quorum', 'direct');
        all.push(a);
        r.oursFrom.accuracy = 'run by the peer scenario';
      }
      r.accuracy.ours = oursAccuracySide(a);
    });
    // Our workers leave the cores to the peer's.
    await stackUp(0, 0, appEnvironment(ctx.configs.quorum, ctx.db));

    for (const workers of [1, 2]) await part(`peer drain ${workers}w`, async () => void r.drain.peer.push(await peerDrain(ctx, pool, workers)));
    await part('peer accuracy', async () => void (r.accuracy.peer = await peerAccuracy(ctx, pool)));
    await part('peer memory', async () => void (r.memory.peer = await peerMemory(ctx)));
    await part('ours memory', async () => void (r.memory.ours = await oursMemory(ctx)));
    // Last: each kills a broker.
    await part('peer kill', async () => void (r.kill.peer = await peerKill(ctx)));
    await part('ours kill', async () => void (r.kill.ours = await oursKill(ctx)));
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}, ${EVENTS_TABLE}`).catch((err) => log(`peer: dropping its tables failed: ${(err as Error).message}`));
    await pool.end();
    r.keysLeft = await sweepKeys(ctx.prefixes.peer).catch((err) => {
      log(`peer: sweeping Redis keys ${ctx.prefixes.peer}:* failed: ${(err as Error).message}`);
      return undefined;
    });
  }
  if (Object.keys(r.errors).length) throw new Error(`peer: ${Object.entries(r.errors).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  return r;
}
