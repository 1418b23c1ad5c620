/**
 * `npm run capacity [-- results.json [memory.json]]`: the capacity model of docs/capacity.md,
 * computed from a full benchmark's measurements (default bench-results/latest/results.json, which
 * `npm run bench` writes; RabbitMQ's memory per waiting timer from `memory.json` when given, e.g.
 * an `npm run bench -- --only peer` run on a freshly started broker). It prints, as markdown: the inputs it took from the run, the assumptions it adds, the
 * deployment it predicts at 1,000, 10,000 and 100,000 payments created per second, and its check
 * against the run itself (the model must predict this machine's drain and intake within 30 %).
 *
 * Every input is a per-unit cost (CPU µs per create and per settlement by process group,
 * dead-letterings per timer, bytes per waiting timer, rows per payment) or a ceiling (messages/s
 * into one queue, rows/s of one database), so the model is a sum of costs divided by capacities.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decomposeDelay } from '../../src/messaging/delay-levels';
import { ROOT } from './common';

type Cpu = Record<string, number | undefined>;
interface Results {
  machine: { nproc: number; rabbitmq: string };
  results: {
    intake?: { apiReplicas?: number; byConcurrency: Array<{ connections: number; runs: Array<{ okPerSec: number }>; cpu?: { microsPerCreate: Cpu } }>; fixedRate?: { target: number; cpu?: { microsPerCreate: Cpu } } };
    drain?: { runs: Array<{ workers: number; settledPerSec: number; cpuMicrosPerPayment: Cpu }> };
    ceilings?: { publish?: { rate: { median: number } }; update?: { rate: { median: number } } };
    peer?: { memory?: { ours?: { heapPerMillionMb?: number; heapFigure?: string } } };
  };
}

/** What the model adds to the measurements; docs/capacity.md says why each is what it is. */
export const ASSUMPTIONS = {
  timeoutSeconds: 900,
  /** Share of payments still PENDING at their deadline: all of them, the worst case (a paid one's timer is a read and an ack). */
  pendingAtDeadline: 1,
  /** Share of a core planned for steady load: the rest absorbs bursts, a failed node's share and GC. */
  utilization: 0.6,
  coresPerRabbitNode: 8,
  coresPerDatabase: 8,
  /** A quorum queue's followers (2 of 3 replicas) each cost this share of the leader's work per message. */
  followerShare: 0.5,
  /** Row writes per payment: its INSERT, the create event, the settling UPDATE and its event (outbox rows are one per batch). */
  rowsPerPayment: 4,
  /** Bytes of RabbitMQ memory per waiting timer when the run did not measure it (a quorum queue's in-memory index entry). */
  fallbackBytesPerTimer: 300,
  rates: [1_000, 10_000, 100_000],
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export function capacityModel(r: Results, a = ASSUMPTIONS) {
  const create = r.results.intake?.fixedRate?.cpu?.microsPerCreate;
  const drains = r.results.drain?.runs ?? [];
  const drain = drains.reduce<(typeof drains)[number] | undefined>((best, d) => (!best || d.settledPerSec > best.settledPerSec ? d : best), undefined);
  if (!create || !drain) throw new Error('results.json has no intake cpu or drain: run the full `npm run bench` (intake and drain)');
  const settle = drain.cpuMicrosPerPayment;
  const need = (v: number | undefined, what: string) => {
    if (v === undefined || !Number.isFinite(v)) throw new Error(`results.json lacks ${what}`);
    return v;
  };
  const c = { apis: need(create.apis, 'create cpu of the apis'), createRabbit: need(create.rabbitmq, 'create cpu of RabbitMQ'), createDb: need(create.mariadb, 'create cpu of MariaDB'), nginx: need(create.nginx, 'create cpu of nginx'), loadGenerator: create.bench ?? 0 };
  const s = { worker: need(settle.workers, 'settlement cpu of the workers'), rabbit: need(settle.rabbitmq, 'settlement cpu of RabbitMQ'), db: need(settle.mariadb, 'settlement cpu of MariaDB') };
  // Not measured by any scenario: a dead-lettering is taken to cost RabbitMQ what a delivery and
  // its ack cost it in the drain (an expiry and a republish into the next level's queue).
  const hopMicros = s.rabbit;
  const hops = decomposeDelay(a.timeoutSeconds).length; // one dead-lettering per set bit of the delay
  const queueCeiling = need(r.results.ceilings?.publish?.rate.median, 'the publish ceiling');
  const rowsCeiling = need(r.results.ceilings?.update?.rate.median, 'the by-id UPDATE ceiling');
  // MB per million waiting timers is bytes per timer; a growth that is not positive was not measurable.
  const measuredBytes = r.results.peer?.memory?.ours?.heapPerMillionMb;
  const bytesMeasured = measuredBytes !== undefined && measuredBytes > 0;
  const bytesPerTimer = bytesMeasured ? measuredBytes : a.fallbackBytesPerTimer;
  const cores = r.machine.nproc;

  // CPU µs per created payment, by where it runs (a leader's RabbitMQ work; replicas below).
  const p = a.pendingAtDeadline;
  const perPayment = {
    api: c.apis,
    nginx: c.nginx,
    worker: p * s.worker,
    rabbitLeader: c.createRabbit + hops * hopMicros + p * s.rabbit,
    db: c.createDb + p * s.db,
  };

  const plan = a.rates.map((rate) => {
    const coresOf = (micros: number) => (rate * micros) / 1e6 / a.utilization;
    const rabbitCores = coresOf(perPayment.rabbitLeader * (1 + 2 * a.followerShare));
    // Every timer of a 900 s timeout passes each level of its set bits: each of those queues takes `rate` messages/s.
    const topologyShards = Math.ceil(rate / (queueCeiling * a.utilization));
    const waiting = rate * a.timeoutSeconds;
    const rabbitMemoryGb = (waiting * bytesPerTimer * 3) / 1e9; // three replicas of each
    const rabbitNodesCpu = Math.ceil(rabbitCores / a.coresPerRabbitNode);
    const rabbitNodes = Math.max(3, rabbitNodesCpu);
    const dbShardsCpu = Math.ceil(coresOf(perPayment.db) / a.coresPerDatabase);
    const dbShardsRows = Math.ceil((rate * a.rowsPerPayment) / (((rowsCeiling / cores) * a.coresPerDatabase) * a.utilization));
    // A cell (a topology shard) has a database of its own, so there are at least as many shards as cells.
    const dbShards = Math.max(1, dbShardsCpu, dbShardsRows, topologyShards);
    return {
      rate,
      apiProcesses: Math.ceil(coresOf(perPayment.api)),
      workerProcesses: Math.ceil(coresOf(perPayment.worker)),
      nginxCores: coresOf(perPayment.nginx),
      rabbitCores,
      rabbitNodes,
      topologyShards,
      waiting,
      rabbitMemoryGbPerNode: rabbitMemoryGb / rabbitNodes,
      dbShards,
      dbBoundBy: topologyShards > Math.max(dbShardsCpu, dbShardsRows) ? 'cells' : dbShardsRows > dbShardsCpu ? 'rows/s' : 'CPU',
      // Past the apis (which only add processes), the first fixed limit a rate meets.
      firstLimit: topologyShards > 1 ? `one queue per delay level: ${topologyShards} cells` : rabbitNodesCpu > 3 ? 'RabbitMQ CPU past 3 nodes' : 'none: apis and workers scale out',
    };
  });

  // The check: this machine, everything co-located on `cores`, no headroom (the bench saturates it).
  const settleAll = s.worker + s.rabbit + s.db;
  const createAll = c.apis + c.createRabbit + c.createDb + c.nginx + c.loadGenerator;
  const levels = r.results.intake?.byConcurrency ?? [];
  const intakeBest = Math.max(...levels.map((x) => median(x.runs.map((run) => run.okPerSec))));
  // The check's cost per create is the one measured at the best closed-loop level itself, where
  // batches fill (the plan keeps the paced one, which overstates): runs before it was recorded
  // fall back to the paced cost.
  const bestCpu = levels.find((x) => median(x.runs.map((run) => run.okPerSec)) === intakeBest)?.cpu?.microsPerCreate;
  const closedLoop = bestCpu && [bestCpu.apis, bestCpu.rabbitmq, bestCpu.mariadb, bestCpu.nginx].every((v) => v !== undefined && Number.isFinite(v)) ? bestCpu : undefined;
  const intakeAll = closedLoop ? (closedLoop.apis ?? 0) + (closedLoop.rabbitmq ?? 0) + (closedLoop.mariadb ?? 0) + (closedLoop.nginx ?? 0) + (closedLoop.bench ?? 0) : createAll;
  const intakeApis = closedLoop?.apis ?? c.apis;
  // Two bounds each: the machine's cores for the whole path, and one core per Node process (a
  // worker or an api process is one thread), whichever is lower.
  const bound = (what: string, measured: number, total: number, perCore: string, processes: number, processMicros: number, processName: string) => {
    const byCores = (cores * 1e6) / total;
    const byProcesses = (processes * 1e6) / processMicros;
    return byCores <= byProcesses
      ? { what, predicted: byCores, measured, from: `${cores} cores / ${fmt(total)} µs per ${perCore}` }
      : { what, predicted: byProcesses, measured, from: `${processes} ${processName} × 1 core / ${fmt(processMicros)} µs each (below the cores' ${fmt(byCores)}/s)` };
  };
  const check = [
    bound('drain (due timers settled/s)', drain.settledPerSec, settleAll, 'settlement', drain.workers, s.worker, drain.workers === 1 ? 'worker' : 'workers'),
    bound('intake (creates/s through nginx)', intakeBest, intakeAll, `create ${closedLoop ? 'at that load' : 'paced'} (load generator included: it shares the cores)`, r.results.intake?.apiReplicas ?? 2, intakeApis, 'api processes'),
  ].map((x) => ({ ...x, error: x.predicted / x.measured - 1 }));

  return { inputs: { c, s, hops, hopMicros, queueCeiling, rowsCeiling, bytesPerTimer, bytesMeasured, cores, drainWorkers: drain.workers }, perPayment, plan, check };
}

function main(): void {
  const file = path.resolve(process.argv[2] ?? path.join(ROOT, 'bench-results/latest/results.json'));
  const read = (f: string) => {
    if (!existsSync(f)) throw new Error(`${f} does not exist: run \`npm run bench\` first`);
    return JSON.parse(readFileSync(f, 'utf8')) as Results;
  };
  const r = read(file);
  const memoryFile = process.argv[3] ? path.resolve(process.argv[3]) : undefined;
  if (memoryFile) r.results.peer = { ...r.results.peer, memory: read(memoryFile).results.peer?.memory };
  const m = capacityModel(r);
  const a = ASSUMPTIONS;
  const out: string[] = [];
  const i = m.inputs;
  out.push(`Inputs from ${path.relative(ROOT, file)} (RabbitMQ ${r.machine.rabbitmq}, ${i.cores} cores):`, '');
  out.push('| input | value |', '|---|---|');
  out.push(`| CPU per create, paced (apis / RabbitMQ / MariaDB / nginx) | ${fmt(i.c.apis)} / ${fmt(i.c.createRabbit)} / ${fmt(i.c.createDb)} / ${fmt(i.c.nginx)} µs |`);
  out.push(`| CPU per settlement, drain with ${i.drainWorkers} worker(s) (workers / RabbitMQ / MariaDB) | ${fmt(i.s.worker)} / ${fmt(i.s.rabbit)} / ${fmt(i.s.db)} µs |`);
  out.push(`| dead-letterings per timer of ${a.timeoutSeconds} s | ${i.hops} (its set bits; the end-to-end run counts them exactly) |`);
  out.push(`| RabbitMQ CPU per dead-lettering | ${fmt(i.hopMicros)} µs (not measured: a delivery and its ack, as the drain measured) |`);
  out.push(`| messages/s into one quorum queue | ${fmt(i.queueCeiling)} (publish ceiling) |`);
  out.push(`| rows/s of one database | ${fmt(i.rowsCeiling)} on ${i.cores} cores (by-id UPDATE ceiling) |`);
  out.push(`| RabbitMQ memory per waiting timer | ${fmt(i.bytesPerTimer)} bytes${i.bytesMeasured ? ` (the peer scenario${memoryFile ? ` of ${path.relative(ROOT, memoryFile)}` : ''}: RabbitMQ's memory growth with 200,000 waiting timers, scaled)` : ' (not measured in this run: assumed)'} |`);
  out.push('', `Per created payment (CPU µs): apis ${fmt(m.perPayment.api)}, nginx ${fmt(m.perPayment.nginx)}, workers ${fmt(m.perPayment.worker)}, RabbitMQ leader ${fmt(m.perPayment.rabbitLeader)} (create ${fmt(i.c.createRabbit)} + ${i.hops} × ${fmt(i.hopMicros)} + settle ${fmt(i.s.rabbit)}), MariaDB ${fmt(m.perPayment.db)}.`, '');
  out.push(`| created/s (timeout ${a.timeoutSeconds} s) | api processes | worker processes | nginx cores | RabbitMQ cores (3 replicas) | RabbitMQ nodes (${a.coresPerRabbitNode} cores) | topology shards | waiting timers | RabbitMQ memory per node | database shards (${a.coresPerDatabase} cores) | first fixed limit |`);
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const p of m.plan) {
    out.push(`| ${fmt(p.rate)} | ${fmt(p.apiProcesses)} | ${fmt(p.workerProcesses)} | ${fmt(p.nginxCores, 1)} | ${fmt(p.rabbitCores, 1)} | ${p.rabbitNodes} | ${p.topologyShards} | ${fmt(p.waiting / 1e6, 1)} M | ${fmt(p.rabbitMemoryGbPerNode, 1)} GB | ${p.dbShards} (by ${p.dbBoundBy}) | ${p.firstLimit} |`);
  }
  out.push('', 'Check against the run (this machine, everything on its cores):', '', '| figure | model | measured | error | from |', '|---|---|---|---|---|');
  for (const x of m.check) out.push(`| ${x.what} | ${fmt(x.predicted)} | ${fmt(x.measured)} | ${x.error >= 0 ? '+' : ''}${fmt(x.error * 100, 1)} % ${Math.abs(x.error) <= 0.3 ? '(within 30 %)' : '(**outside 30 %**)'} | ${x.from} |`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (m.check.some((x) => Math.abs(x.error) > 0.3)) process.exitCode = 1;
}

if (require.main === module) main();
