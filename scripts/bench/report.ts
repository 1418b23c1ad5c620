/**
 * The report: Markdown with the figures, the targets and the charts (SVG), next to the raw JSON.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import type { AccuracyRun } from './accuracy';
import type { BatchJobResults, BatchPhase } from './batch-job';
import type { CeilingResults } from './ceilings';
import { barsWithSpread, groupedBars, histogram, lines, writeChart } from './charts';
import { defaultConfig, fmt, fmtSpread, log, spread, sumIfAll } from './common';
import type { Context } from './context';
import type { DrainResults, EndToEndRun } from './drain';
import type { IntakeResults } from './intake';
import type { LoadShare } from './machine-load';
import type { MemoryPeak } from './memory';
import type { PeerResults, SideDrain, SideMemory } from './peer-bullmq';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memory: string;
  os: string;
  node: string;
  rabbitmq: string;
  erlang: string;
  mariadb: Record<string, string>;
  nginx: string;
  commit: string;
  /** The broker's state when the run started: a long-lived, churned broker measures slower. */
  rabbitmqAtStart?: { uptimeMin: number; memoryMb: number; messages: number; queues: number };
}

export interface RunInfo {
  command: string;
  startedAt: string;
  finishedAt: string;
  totalSec: number;
  scenarios: string[];
  errors: Record<string, string>;
}

type Status = 'met' | 'not met' | 'n/a';

function status(ok: boolean | undefined): Status {
  return ok === undefined ? 'n/a' : ok ? 'met' : 'not met';
}

const s3 = (n: number | undefined) => fmt(n, 3);

/** What every section of the report reads, and the lines it appends to. */
interface Sections {
  ctx: Context;
  machine: Machine;
  info: RunInfo;
  memory: MemoryPeak[];
  load: LoadShare[];
  ceilings: CeilingResults | undefined;
  intake: IntakeResults | undefined;
  drain: DrainResults | undefined;
  e2e: EndToEndRun[];
  accuracy: AccuracyRun[];
  batch: BatchJobResults | undefined;
  peer: PeerResults | undefined;
  chart: (name: string, spec: Record<string, unknown>) => Promise<string>;
  md: string[];
}

export async function writeReport(ctx: Context, machine: Machine, info: RunInfo, memory: MemoryPeak[], load: LoadShare[]): Promise<string> {
  const r = ctx.results;
  const ceilings = r.ceilings as CeilingResults | undefined;
  const intake = r.intake as IntakeResults | undefined;
  const drain = r.drain as DrainResults | undefined;
  const e2e = (r.endToEnd as EndToEndRun[] | undefined) ?? [];
  const accuracy = (r.accuracy as AccuracyRun[] | undefined) ?? [];
  const batch = r.batchJob as BatchJobResults | undefined;
  const peer = r.peer as PeerResults | undefined;
  const charts: string[] = [];
  const chart = async (name: string, spec: Record<string, unknown>) => {
    try {
      await writeChart(ctx.outDir, name, spec);
      charts.push(name);
      return `![${name}](${name}.svg)`;
    } catch (err) {
      log(`chart ${name} failed: ${(err as Error).message}`);
      return `(chart ${name} failed: ${(err as Error).message})`;
    }
  };

  const md: string[] = [];
  const S: Sections = { ctx, machine, info, memory, load, ceilings, intake, drain, e2e, accuracy, batch, peer, chart, md };
  for (const section of [headerSection, targetsSection, ceilingsSection, intakeSection, drainSection, accuracySection, batchJobSection, memorySection, peerSection, machineLoadSection, scalingSection]) {
    await section(S);
  }
  md.push(`Raw data: [results.json](results.json). Charts: ${charts.map((c) => `[${c}.svg](${c}.svg)`).join(', ')}.`);
  md.push('');
  const file = path.join(ctx.outDir, 'report.md');
  writeFileSync(file, md.join('\n'));
  return file;
}

/** The title, the command, the machine, its settings and the broker's state at start. */
async function headerSection(S: Sections): Promise<void> {
  const { ctx, machine, info, load, md } = S;
  md.push(`# Payment Compensator benchmark, ${info.startedAt.slice(0, 10)} (${ctx.quick ? 'quick' : 'full'})`);
  md.push('');
  md.push(`Command: \`${info.command}\` — ran ${fmt(info.totalSec)} s (${info.startedAt} to ${info.finishedAt}), scenarios: ${info.scenarios.join(', ')}. Run id \`${ctx.runId}\`, database \`${ctx.db}\`, broker prefixes ${Object.values(ctx.prefixes).map((p) => `\`${p}\``).join(', ')}.`);
  md.push('');
  md.push('**Machine**: ' + `${machine.nproc} cores (${machine.cpuModel}), ${machine.memory} memory, ${machine.os}; Node ${machine.node}; RabbitMQ ${machine.rabbitmq} (Erlang ${machine.erlang}); ` + `MariaDB ${machine.mariadb.version ?? '?'}; ${machine.nginx}; commit ${machine.commit}.`);
  md.push('');
  const defaults = defaultConfig();
  md.push(
    `**Settings**: everything co-located on this machine and on loopback (RabbitMQ, MariaDB, nginx, the app processes and the load generator share the ${machine.nproc} cores). MariaDB: ` +
      Object.entries(machine.mariadb)
        .filter(([k]) => k !== 'version')
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') +
      ' (the stack\'s flags: --innodb-flush-log-at-trx-commit=2 --skip-log-bin). RabbitMQ: the stack\'s single node with `dead_letter_worker_consumer_prefetch` 512. ' +
      `Apps: \`scripts/stack.sh up --api N --workers M\` with NODE_ENV=production, config/default.json (worker prefetch ${defaults.worker.prefetch}, batch ${defaults.worker.batchSize}, batch wait ${defaults.worker.batchWaitMs} ms, db pool ${defaults.database.poolMax}, log level info) plus a bench COMPENSATOR_CONFIG with the run\'s prefix, the queue type and channels on adapter \`none\`.`,
  );
  md.push('');
  const broker = machine.rabbitmqAtStart;
  if (broker) {
    md.push(`**Broker at start**: RabbitMQ up ${fmt(broker.uptimeMin)} min, ${fmt(broker.memoryMb)} MB, ${fmt(broker.messages)} messages in ${fmt(broker.queues)} queues.`);
    if (broker.memoryMb > 500 || broker.messages > 10000) {
      md.push(
        'It is carrying old state: on 2026-11-25 a broker that had served an hour of benchmark runs (700 MB, no messages) measured quorum accuracy p99 4.5 s against 0.25 s after a restart. Restart it (`scripts/stack.sh down && scripts/stack.sh up`) before comparing figures.',
      );
    }
    md.push('');
  }
  const busiest = load.reduce((m, l) => Math.max(m, l.othersCores), 0);
  if (busiest > 0.25) {
    md.push(
      `**Shared machine**: other work (not this benchmark or the stack it drives) used up to ${fmt(busiest, 2)} of the ${machine.nproc} cores during a scenario (see "Machine load" at the end); figures measured then are lower than this machine can do alone.`,
    );
    md.push('');
  }
  if (Object.keys(info.errors).length > 0) {
    md.push('**Errors**: ' + Object.entries(info.errors).map(([k, v]) => `${k}: ${v}`).join('; '));
    md.push('');
  }
}

/** The targets at a glance, each with its measure and whether it was met. */
async function targetsSection(S: Sections): Promise<void> {
  const { ctx, memory, ceilings, intake, drain, accuracy, batch, md } = S;
  const judge = (ok: boolean | undefined): string => (ctx.quick ? 'not judged (quick)' : status(ok));
  const lowerCeiling = ceilings ? Math.min(ceilings.consume.rate.median, ceilings.update.rate.median) : undefined;
  const drain2 = drain?.runs.find((x) => x.workers === 2);
  const drainBest = drain ? Math.max(...drain.runs.map((x) => x.settledPerSec)) : undefined;
  const bestIntake = intake ? Math.max(...intake.byConcurrency.map((c) => c.rate.median)) : undefined;
  const peakRss = memory.length ? Math.max(...memory.map((m) => m.peakRssMb)) : undefined;
  const ourDeadlocks = batch
    ? [batch.small.ours, batch.big.ours].reduce((a, p) => a + p.workerLockRetries + p.errors.settle.deadlocks + p.errors.callbacks.deadlocks + p.errors.inserts.deadlocks, 0)
    : undefined;
  const jobPhases = batch ? [batch.small, batch.big].flatMap((c) => [c.job, ...(c.jobStatus ? [c.jobStatus] : [])]) : [];
  const jobDeadlocks = batch ? jobPhases.reduce((a, p) => a + p.errors.settle.deadlocks + p.errors.callbacks.deadlocks + p.errors.inserts.deadlocks, 0) : undefined;
  const p99Ratio = batch
    ? Math.max(...[batch.small, batch.big].flatMap((c) => [c.job, ...(c.jobStatus ? [c.jobStatus] : [])].map((j) => c.ours.lateness.p99 / j.lateness.p99)))
    : undefined;
  const workGrowth = batch ? batch.big.ours.handlerReadsGlobalPerSettled / batch.small.ours.handlerReadsGlobalPerSettled : undefined;
  const jobWorkGrowth = batch && batch.big.job.jobHandlerReadsPerSettled && batch.small.job.jobHandlerReadsPerSettled ? batch.big.job.jobHandlerReadsPerSettled / batch.small.job.jobHandlerReadsPerSettled : undefined;
  md.push('## Targets at a glance');
  md.push('');
  // A quick run's samples (3,000 timers drained in a twentieth of a second) prove nothing about a
  // rate: it prints the figures and the checks of correct outcomes, and judges no target.
  if (ctx.quick) md.push('A quick run judges no target: its samples are too small. The figures are shown; `npm run bench` judges them.', '');
  md.push('| target | measured | status |');
  md.push('|---|---|---|');
  md.push(
    `| drain (timers already due, adapter none) ≥ half the lower raw ceiling | best ${fmt(drainBest)} settled/s (2 workers ${fmt(drain2?.settledPerSec)}/s) vs lower ceiling ${fmt(lowerCeiling)}/s → ${lowerCeiling && drainBest ? fmt((100 * drainBest) / lowerCeiling, 0) : 'n/a'} % | ${judge(lowerCeiling && drainBest ? drainBest >= lowerCeiling / 2 : undefined)} |`,
  );
  for (const a of accuracy) {
    md.push(
      `| p99 lateness ≤ 1 s at ${fmt(a.targetRate)} timers/s, none early (${a.queueType}${a.via === 'direct' ? ', timers published directly' : ', end to end through the API on the same cores'}) | achieved ${fmt(a.achievedRate)}/s; p99 ${s3(a.lateness.p99)} s, early ${a.early}, unsettled ${a.unsettled} | ${judge(a.targetRate >= 1000 ? a.lateness.p99 <= 1 && a.early === 0 && a.achievedRate >= a.targetRate * 0.95 : undefined)}${a.targetRate < 1000 ? ' (at a reduced rate)' : ''}${a.via === 'api' ? ' (shown, not the target\'s measure: see the notes)' : ''} |`,
    );
  }
  md.push(`| intake ≥ 1,500 creates/s through nginx | best median ${fmt(bestIntake)} creates/s | ${judge(bestIntake !== undefined ? bestIntake >= 1500 : undefined)} |`);
  if (intake) {
    const fr = intake.fixedRate;
    const floor = ceilings?.noop.paced ? `; a no-op route at the same pace: p99 ${fmtSpread(ceilings.noop.paced.p99, 0, ' ms')}` : '';
    md.push(`| p99 < 50 ms at 500 creates/s | p99 ${fmtSpread(fr.p99, 0, ' ms')} at ${fmt(fr.achieved.median)} /s achieved${floor} | ${judge(fr.p99.median < 50 && fr.achieved.median >= fr.target * 0.95)} |`);
  } else md.push('| p99 < 50 ms at 500 creates/s | n/a | n/a |');
  md.push(`| zero deadlocks for us (batch-job scenario) | ${ourDeadlocks ?? 'n/a'} (the job, all its runs: ${jobDeadlocks ?? 'n/a'}) | ${judge(ourDeadlocks !== undefined ? ourDeadlocks === 0 : undefined)} |`);
  md.push(`| our p99 lateness ≤ 1/10 of the job's | worst ratio ours/job over the cells ${p99Ratio !== undefined ? fmt(p99Ratio, 3) : 'n/a'} | ${judge(p99Ratio !== undefined ? p99Ratio <= 0.1 : undefined)} |`);
  md.push(
    `| our DB work per settled payment flat as the table grows | handler reads per settled, big/small: ours ${workGrowth !== undefined ? fmt(workGrowth, 2) : 'n/a'}× (job's own statements ${jobWorkGrowth !== undefined ? fmt(jobWorkGrowth, 2) : 'n/a'}×) | ${judge(workGrowth !== undefined ? workGrowth <= 1.25 : undefined)} |`,
  );
  md.push(`| ≤ 150 MB RSS per process | peak ${fmt(peakRss, 1)} MB | ${judge(peakRss !== undefined ? peakRss <= 150 : undefined)} |`);
  md.push('');
}

/** 1. What the machine's parts can do alone: the denominators. */
async function ceilingsSection(S: Sections): Promise<void> {
  const { ctx, ceilings, drain, chart, md } = S;
  md.push('## 1. Raw ceilings (same run)');
  md.push('');
  if (ceilings) {
    md.push('Median (min–max) over the repeats.');
    md.push('');
    md.push('| ceiling | rate | how |');
    md.push('|---|---|---|');
    md.push(`| amqplib publish, confirm channel → quorum queue | ${fmtSpread(ceilings.publish.rate)} msg/s | ${ceilings.publish.messageBytes}-byte persistent messages, ${ceilings.publish.window} confirms in flight, ${ctx.sizes.ceilings.publishSec} s per repeat |`);
    for (const d of ceilings.delayPublish ?? []) {
      md.push(`| timer publish: ${d.what} | ${fmtSpread(d.rate)} msg/s | confirm channel, 200 in flight, ${ctx.sizes.ceilings.publishSec} s per repeat, a run-only copy of the delay topology (quorum) |`);
    }
    md.push(`| consume with manual acks | ${fmtSpread(ceilings.consume.rate)} msg/s | prefetch ${ceilings.consume.prefetch} (the worker's), one ack per message, the queue the publish repeat filled |`);
    md.push(
      `| batched by-id UPDATE ... WHERE id IN (sorted) AND status = ? | ${fmtSpread(ceilings.update.rate)} rows/s | bench-only copy of payments (same indexes, no status index), ${fmt(ceilings.update.rows)} rows, ${ceilings.update.batch} ids per statement, ${ceilings.update.concurrency} connections, autocommit, consecutive ids; first pass discarded (buffer pool warm-up) |`,
    );
    for (const c of ceilings.noop.byConcurrency) md.push(`| no-op express route through nginx, ${c.connections} connections | ${fmtSpread(c.rate)} req/s (p99 ${fmtSpread(c.p99, 0, ' ms')}) | autocannon POST with the create body |`);
    const np = ceilings.noop.paced;
    if (np) md.push(`| no-op express route through nginx, paced ${np.target}/s | p50 ${fmtSpread(np.p50, 1, ' ms')}, p99 ${fmtSpread(np.p99, 0, ' ms')} | the intake's paced load (same generator, rate and repeats): the latency floor under the create p99 target |`);
    md.push('');
    md.push(`No-op ceiling: ${ceilings.noop.how}.`);
    md.push('');
    const rows = [
      { label: 'publish (confirm)', group: 'RabbitMQ', ...pickSpread(ceilings.publish.rate) },
      { label: 'consume + ack', group: 'RabbitMQ', ...pickSpread(ceilings.consume.rate) },
      { label: 'by-id UPDATE rows', group: 'MariaDB', ...pickSpread(ceilings.update.rate) },
      ...(drain?.runs ?? []).map((d) => ({ label: `drain ${d.workers} worker(s)`, group: 'ours', median: d.settledPerSec, min: d.perSecondSpread.p25, max: d.perSecondSpread.p75 })),
    ];
    md.push(await chart('ceilings', barsWithSpread('Raw ceilings vs drain (per second)', 'per second', rows)));
  } else md.push('Not run.');
  md.push('');
}

/** 2. Creates through nginx: closed-loop rates and the paced load. */
async function intakeSection(S: Sections): Promise<void> {
  const { ctx, ceilings, intake, chart, md } = S;
  md.push('## 2. Intake (creates through nginx, 2 api replicas)');
  md.push('');
  if (intake) {
    md.push(`Closed loop, ${ctx.sizes.intake.durationSec} s per repeat, ${ctx.sizes.repeats} repeats per concurrency; every request a new order (autocannon \`setupRequest\` and a counter), timeoutSeconds ${ctx.sizes.intake.timeoutSeconds}. Median (min–max).`);
    md.push('');
    md.push('| connections | creates/s | p50 ms | p99 ms | errors + timeouts | non-2xx | ratio to no-op |');
    md.push('|---|---|---|---|---|---|---|');
    for (const c of intake.byConcurrency) {
      const noop = ceilings?.noop.byConcurrency.find((n) => n.connections === c.connections);
      md.push(`| ${c.connections} | ${fmtSpread(c.rate)} | ${fmtSpread(c.p50, 1)} | ${fmtSpread(c.p99, 0)} | ${c.errors} | ${c.non2xx} | ${noop ? `${fmt((100 * c.rate.median) / noop.rate.median, 1)} % of ${fmt(noop.rate.median)}` : 'n/a'} |`);
    }
    const fr = intake.fixedRate;
    md.push('');
    md.push(
      `Paced load (autocannon \`overallRate\`, split over up to 20 instances started evenly over one second, about 2 requests per second per connection, so that the requests do not all leave at the top of each second; latency percentiles from every response time), ${ctx.sizes.intake.fixedSec} s per repeat:`,
    );
    md.push('');
    md.push('| target | achieved/s | p50 ms | p99 ms | errors | non-2xx | of them 429 | connections |');
    md.push('|---|---|---|---|---|---|---|---|');
    const paced = [fr, ...(intake.halfCapacity ? [intake.halfCapacity] : [])];
    /** A paragraph, then the head of a table with these columns. */
    const tableHead = (intro: string, columns: string[]) => {
      md.push('', intro, '', `| ${columns.join(' | ')} |`, `|${columns.map(() => '---|').join('')}`);
    };
    for (const f of paced) {
      md.push(`| ${f.target}/s${f === fr ? '' : ' (half the best closed-loop rate)'} | ${fmtSpread(f.achieved)} | ${fmtSpread(f.p50, 1)} | **${fmtSpread(f.p99, 0)}** | ${f.errors} | ${f.non2xx} | ${f.rateLimited ?? 0} | ${f.connections} |`);
    }
    const phased = paced.filter((f) => f.batches);
    if (phased.length > 0) {
      tableHead(
        "Where a paced create's time went, per group-commit batch (the apis' `compensator_create_batch_seconds` over the repeats; a create's latency is about its batch's wait plus its transaction, and a batch holds its slot through the publish, so the publish shows up in the next batches' wait): mean, and the histogram bucket that holds the p99.",
        ['target', 'batches', 'creates per batch', 'wait ms', 'transaction ms', 'publish ms'],
      );
      const cell = (p: { meanMs: number; p99AtMostMs: number }) => `${fmt(p.meanMs, 1)} (p99 ≤ ${Number.isFinite(p.p99AtMostMs) ? fmt(p.p99AtMostMs) : '∞'})`;
      for (const f of phased) {
        const b = f.batches as NonNullable<typeof f.batches>;
        md.push(`| ${f.target}/s | ${fmt(b.batches)} | ${fmt(b.createsPerBatch, 1)} | ${cell(b.phases.wait)} | ${cell(b.phases.transaction)} | ${cell(b.phases.publish)} |`);
      }
    }
    const costed = paced.filter((f) => f.cpu);
    if (costed.length > 0) {
      tableHead(
        "What a paced create cost the machine: CPU µs per 2xx answer of each process group over the repeats (from /proc), and how many of the machine's cores were busy on average, everything included. The load generator is autocannon inside the benchmark process, on the same cores.",
        ['target', 'apis', 'RabbitMQ', 'MariaDB', 'nginx', 'stack in all', 'load generator', 'cores busy'],
      );
      for (const f of costed) {
        const u = f.cpu.microsPerCreate;
        const all = sumIfAll([u.apis, u.rabbitmq, u.mariadb, u.nginx]);
        md.push(`| ${f.target}/s | ${fmt(u.apis)} | ${fmt(u.rabbitmq)} | ${fmt(u.mariadb)} | ${fmt(u.nginx)} | ${fmt(all)} | ${fmt(u.bench)} | ${fmt(f.cpu.busyCores, 2)} of ${f.cpu.cores} |`);
      }
    }
    md.push('');
    md.push(`Check: ${fmt(intake.okResponses)} 2xx answers, ${fmt(intake.paymentsInDb)} payments in the table, ${intake.outboxEmptyAfterMs !== undefined ? `the outbox empty ${fmt(intake.outboxEmptyAfterMs)} ms after the load (creates are answered at commit; their timers are published just after)` : `${intake.outboxLeftAfter} outbox rows still there 10 s after the load`}.`);
    md.push('');
    const rows = intake.byConcurrency.map((c) => ({ series: 'creates (2 api replicas)', x: c.connections, y: c.rate.median, min: c.rate.min, max: c.rate.max }));
    if (ceilings) rows.push(...ceilings.noop.byConcurrency.map((c) => ({ series: 'no-op ceiling', x: c.connections, y: c.rate.median, min: c.rate.min, max: c.rate.max })));
    md.push(await chart('intake', lines('Creates per second through nginx', 'connections', 'requests/s', rows, { logY: true })));
  } else md.push('Not run.');
  md.push('');
}

/** 3. Timers already due, drained by 1 and 2 workers, and the end-to-end runs. */
async function drainSection(S: Sections): Promise<void> {
  const { ctx, ceilings, drain, e2e, chart, md } = S;
  md.push('## 3. Drain');
  md.push('');
  if (drain) {
    md.push(
      `${fmt(drain.runs[0]?.payments)} PENDING payments inserted directly, their timers published with the service's DelayScheduler (2 bench connections) with a deadline in the past, so that they wait in the compensation queue before the workers start; adapter \`none\`. One run per worker count${ctx.quick ? '' : ' (100,000 payments each: long runs)'}; the spread is over the full seconds of the drain (per-second settlements, p25–p75).`,
    );
    md.push('');
    md.push('| workers | settled | settled/s (first→last settlement) | per-second p25–p75 | drain time | wall from start command | ratio to by-id UPDATE ceiling | ratio to consume ceiling | CPU µs per payment: workers + RabbitMQ + MariaDB | what the cores allow at that cost | lock retries |');
    md.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const d of drain.runs) {
      const cpu = d.cpuMicrosPerPayment;
      md.push(
        `| ${d.workers} | ${fmt(d.settled)} | **${fmt(d.settledPerSec)}** | ${fmt(d.perSecondSpread.p25)}–${fmt(d.perSecondSpread.p75)} | ${fmt(d.drainSec, 2)} s | ${fmt(d.wallSec, 1)} s | ${ceilings ? `${fmt((100 * d.settledPerSec) / ceilings.update.rate.median, 1)} %` : 'n/a'} | ${ceilings ? `${fmt((100 * d.settledPerSec) / ceilings.consume.rate.median, 1)} %` : 'n/a'} | ${fmt(cpu.workers)} + ${fmt(cpu.rabbitmq)} + ${fmt(cpu.mariadb)} = ${fmt(cpu.total)} | ${cpu.total ? `${fmt((os.cpus().length * 1e6) / cpu.total)}/s` : 'n/a'} | ${d.lockRetries} |`,
      );
    }
    md.push('');
    md.push(
      `"What the cores allow" is ${os.cpus().length} cores' worth of CPU time divided by what one settlement costs the worker, RabbitMQ and MariaDB together (from /proc, sampled every 50 ms and read at the first and the last settlement): the rate at which this co-located machine would have no CPU left for anything else. The raw ceilings are each measured alone, with the whole machine to themselves.`,
    );
    md.push('');
  }
  if (e2e.length > 0) {
    md.push(
      `End to end through the delay levels: ${fmt(e2e[0]?.payments)} timers for one shared deadline, published with the service's DelayScheduler (3 bench connections) over the lead time before it, each with the delay left (so each passes through the levels of its own bits, and the last hop of all of them lands at the deadline); 2 workers running. Dead-letterings per second come from RabbitMQ's global counter \`rabbitmq_global_messages_dead_lettered_expired_total\` for that queue type, sampled every 250 ms (global: other users of the broker would add to it; "expected" is the sum of the set bits of the delays published).`,
    );
    md.push('');
    md.push('| queue type | lead | hops per timer | dead-letterings (counter / expected) | peak dead-letterings/s (1 s) | all settled within | settled/s after the deadline | lateness p50 / p99 / max | early | lock retries |');
    md.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const e of e2e) {
      md.push(
        `| ${e.queueType} | ${e.leadSec} s (${e.publishedLate} published after the deadline) | ${fmt(e.hopsPerTimer, 2)} | ${fmt(e.counterDeadLetterings)} / ${fmt(e.expectedDeadLetterings)} | ${fmt(e.deadLetterPeakPerSec)} | ${fmt(e.lastSettledAfterDeadlineSec, 2)} s | ${fmt(e.settledPerSecAfterDeadline)} | ${s3(e.lateness.p50)} / ${s3(e.lateness.p99)} / ${s3(e.lateness.max)} s | ${e.early} | ${e.lockRetries} |`,
      );
    }
    md.push('');
    md.push(await chart('dead-letterings', lines('Dead-letterings per second around the shared deadline (t = 0)', 's from the deadline', 'dead-letterings/s', e2e.flatMap((e) => e.deadLetterSeries.map((p) => ({ series: e.queueType, x: Math.round(p.t * 100) / 100, y: p.perSec }))))));
    md.push('');
  }
  if (drain || e2e.length) {
    const rows = [
      ...(drain?.runs ?? []).map((d) => d.perSecond.map((y, x) => ({ series: `already due, ${d.workers} worker(s)`, x, y }))).flat(),
      ...e2e.map((e) => e.perSecond.map((y, x) => ({ series: `end to end ${e.queueType}, from the deadline`, x, y }))).flat(),
    ];
    md.push(await chart('drain', lines('Settlements per second', 's from the first settlement (end to end: from the deadline)', 'settled/s', rows)));
  } else md.push('Not run.');
  md.push('');
}

/** 4. Timer accuracy under load. */
async function accuracySection(S: Sections): Promise<void> {
  const { accuracy, chart, md } = S;
  md.push('## 4. Timer accuracy under load');
  md.push('');
  if (accuracy.length) {
    md.push('Lateness = payments.closed_at − payments.expires_at (closed_at is the settling transaction\'s time). One run per row; the spread is the p99 of each 10 s window of deadlines (min–max).');
    md.push('');
    md.push('| queue type | via | target/s | achieved/s | duration | timeouts | created | settled | unsettled | early | lateness p50 / p90 / p99 / max | p99 per 10 s window | lock retries |');
    md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const a of accuracy) {
      md.push(
        `| ${a.queueType} | ${a.via === 'api' ? 'API (autocannon overallRate, nginx, 2 api)' : 'direct (bench inserts rows and publishes timers)'} | ${fmt(a.targetRate)} | ${fmt(a.achievedRate)} | ${a.durationSec} s | ${a.timeouts[0]}–${a.timeouts[1]} s | ${fmt(a.created)} | ${fmt(a.settled)} | ${a.unsettled} | ${a.early} | ${s3(a.lateness.p50)} / ${s3(a.lateness.p90)} / **${s3(a.lateness.p99)}** / ${s3(a.lateness.max)} s | ${fmtSpread(a.windowP99, 3, ' s')} | ${a.lockRetries} |`,
      );
      if (a.load) md.push(`|  | API load: p50 ${a.load.p50} ms, p99 ${a.load.p99} ms, errors ${a.load.errors + a.load.timeouts}, non-2xx ${a.load.non2xx} | | | | | | | | | | | |`);
    }
    md.push('');
    const bin = Math.max(...accuracy.map((a) => a.binMs));
    const rows = accuracy.flatMap((a) => {
      const merged = new Map<number, number>();
      for (const h of a.histogram) {
        const b = Math.floor(h.binStartMs / bin) * bin;
        merged.set(b, (merged.get(b) ?? 0) + h.count);
      }
      return [...merged.entries()].map(([b, count]) => ({ series: `${a.queueType}${a.via === 'api' ? ', through the API' : ''}`, bin: b, binEnd: b + bin, count }));
    });
    md.push(await chart('accuracy-histogram', histogram(`Lateness of settled timers (${bin} ms bins)`, 'lateness (ms)', rows)));
  } else md.push('Not run.');
  md.push('');
}

/** 5. The batch job it replaces, side by side. */
async function batchJobSection(S: Sections): Promise<void> {
  const { ctx, batch, chart, md } = S;
  md.push('## 5. The batch job it replaces, side by side');
  md.push('');
  if (batch) {
    const b = ctx.sizes.batchJob;
    md.push(
      `Same traffic for both designs, one after the other: ${b.insertRate} new PENDING payments/s (timeouts ${b.minTimeout}–${b.maxTimeout} s) and ${b.callbackRate} callback-like by-id updates/s marking random recent payments PAID (SELECT ... FOR UPDATE by id, then UPDATE ... WHERE id = ? AND status = 'PENDING', one transaction, like the service's callback), for ${b.durationSec} s plus ${b.maxTimeout + 1.5} s for the last deadlines. ` +
        `**Job**: ${b.replicas} replicas, one connection each, firing at every wall-clock second: \`BEGIN; UPDATE job_payments SET status='CLOSED', closed_at=NOW(3), updated_at=NOW(3) WHERE status='PENDING' AND expires_at <= NOW(3) LIMIT ${b.limit}; COMMIT\` on ${batch.index}. ` +
        `${batch.small.jobStatus ? `**Job, status index only** (\`job-status\`): the same job on ${batch.indexStatusOnly}. ` : ''}` +
        `**Ours**: 2 workers (adapter none) on the service's payments table (no index on status); the bench publishes each payment's timer with the service's DelayScheduler right after inserting it. Then again after seeding ${fmt(batch.seedRows)} settled rows into each table (${fmt(batch.seedSec, 1)} s). One run per cell.`,
    );
    md.push('');
    md.push('Deadlocks (1213) / lock-wait timeouts (1205) are counted from the clients\' errors per statement kind; for ours the settling side is the workers\' `compensator_db_lock_retries_total` (their /metrics on PORT 3101..). Handler reads are `SHOW GLOBAL STATUS LIKE \'Handler_read%\'` deltas (server-wide: they include the insert and callback traffic, which is the same for both designs, and anything else using this MariaDB); the job\'s own reads are its sessions\' counters. DB CPU is utime+stime of mariadbd from /proc.');
    md.push('');
    md.push('| table | design | settled | due left | lateness p50 / p99 / max | early | deadlocks settle / callbacks / inserts | lock-wait timeouts | InnoDB deadlocks (global) | handler reads (per settled) | job\'s own reads per settled | DB CPU ms (per settled) |');
    md.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    const row = (size: string, p: BatchPhase) =>
      `| ${size} (${fmt(p.tableRowsBefore)} rows) | ${p.design} | ${fmt(p.settled)} | ${p.unsettledDue} | ${s3(p.lateness.p50)} / **${s3(p.lateness.p99)}** / ${s3(p.lateness.max)} s | ${p.early} | ${p.design === 'ours' ? p.workerLockRetries : p.errors.settle.deadlocks} / ${p.errors.callbacks.deadlocks} / ${p.errors.inserts.deadlocks} | ${p.errors.settle.lockWaitTimeouts} / ${p.errors.callbacks.lockWaitTimeouts} / ${p.errors.inserts.lockWaitTimeouts} | ${p.innodbDeadlocksGlobal} | ${fmt(p.handlerReadsGlobal)} (${fmt(p.handlerReadsGlobalPerSettled, 1)}) | ${p.jobHandlerReadsPerSettled !== undefined ? fmt(p.jobHandlerReadsPerSettled, 1) : '—'} | ${fmt(p.dbCpuMs)} (${fmt(p.dbCpuMsPerSettled, 3)}) |`;
    const cells = [
      ['small', batch.small],
      ['big', batch.big],
    ] as const;
    const phases = cells.flatMap(([size, c]) => [c.job, ...(c.jobStatus ? [c.jobStatus] : []), c.ours].map((p) => [size, p] as const));
    for (const [size, p] of phases) md.push(row(size, p));
    md.push('');
    for (const [size, p] of phases) {
      if (p.design === 'ours') continue;
      md.push(`${p.design} (${size}): ${p.jobRuns} runs, ${fmt(p.jobRowsUpdated)} rows updated, run time p50 ${fmt(p.jobRunMs?.p50)} ms / p99 ${fmt(p.jobRunMs?.p99)} ms / max ${fmt(p.jobRunMs?.max)} ms; callbacks ${p.callbacksAttempted} (${p.callbacksPaid} paid, ${p.callbacksSkipped} skipped while 40 were waiting).`);
    }
    for (const [size, p] of [['small', batch.small.ours], ['big', batch.big.ours]] as const) {
      md.push(`Ours (${size}): callbacks ${p.callbacksAttempted} (${p.callbacksPaid} paid, ${p.callbacksSkipped} skipped).`);
    }
    md.push('');
    const lat = phases.flatMap(([size, p]) => [
      { category: `${size} table, ${p.design}`, series: 'p50', value: p.lateness.p50 },
      { category: `${size} table, ${p.design}`, series: 'p99', value: p.lateness.p99 },
      { category: `${size} table, ${p.design}`, series: 'max', value: p.lateness.max },
    ]);
    md.push(await chart('batch-job-lateness', groupedBars('Lateness: batch job vs per-payment timers (s)', 'seconds', lat)));
    md.push('');
    const work = phases.flatMap(([size, p]) => [
      { category: `${size} table, ${p.design}`, series: 'handler reads / settled', value: p.handlerReadsGlobalPerSettled },
      { category: `${size} table, ${p.design}`, series: 'DB CPU µs / settled', value: p.dbCpuMsPerSettled * 1000 },
      { category: `${size} table, ${p.design}`, series: 'deadlocks + lock waits', value: p.errors.settle.deadlocks + p.errors.callbacks.deadlocks + p.errors.inserts.deadlocks + p.errors.settle.lockWaitTimeouts + p.errors.callbacks.lockWaitTimeouts + p.workerLockRetries },
    ]);
    md.push(await chart('batch-job-work', groupedBars('Database work and lock conflicts', 'per settled payment / count (symlog)', work, { logY: true })));
  } else md.push('Not run.');
  md.push('');
}

/** 6. Peak RSS per process. */
async function memorySection(S: Sections): Promise<void> {
  const { memory, chart, md } = S;
  md.push('## 6. Memory');
  md.push('');
  if (memory.length) {
    md.push('Peak VmRSS sampled every 500 ms per scenario (VmHWM: the kernel\'s lifetime high-water mark of that process, which may come from an earlier scenario the same process served).');
    md.push('');
    md.push('| scenario | process | pid | peak RSS MB | VmHWM MB |');
    md.push('|---|---|---|---|---|');
    for (const m of memory) md.push(`| ${m.scenario} | ${m.process} | ${m.pid} | ${fmt(m.peakRssMb, 1)} | ${fmt(m.hwmMb, 1)} |`);
    md.push('');
    md.push(await chart('memory', groupedBars('Peak RSS per process (MB); target 150 MB', 'MB', memory.map((m) => ({ category: m.scenario, series: m.process, value: m.peakRssMb })), { rule: 150 })));
  } else md.push('Not sampled (scenarios 2–4 not run).');
  md.push('');
}

/** ours / peer, or n/a when either is unknown or the peer's is 0. */
function ratio(ours: number | undefined, peer: number | undefined, digits = 2): string {
  if (ours === undefined || peer === undefined || !Number.isFinite(ours) || !Number.isFinite(peer)) return 'n/a';
  if (peer === 0) return ours === 0 ? '— (both 0)' : 'n/a (peer 0)';
  if (ours < 0 || peer < 0) return 'n/a (a negative growth)';
  return `${fmt(ours / peer, digits)}×`;
}

/** 7. The BullMQ peer, side by side with ours: ours | peer | ours/peer for each figure. */
async function peerSection(S: Sections): Promise<void> {
  const { ctx, peer, chart, md } = S;
  md.push('## 7. Peer: BullMQ delayed jobs on Redis, side by side');
  md.push('');
  if (!peer) {
    md.push('Not run.');
    md.push('');
    return;
  }
  const p = ctx.sizes.peer;
  md.push(
    `**Peer**: BullMQ ${peer.bullmq} on the stack's Redis ${peer.redis.version} (127.0.0.1:${peer.redis.port}, appendonly ${peer.redis.appendonly}, appendfsync ${peer.redis.appendfsync}, RDB save "${peer.redis.save}"): one Queue per measurement, a job \`{ id }\` per payment with jobId \`pay-<id>\` and delay = deadline − now (ms), \`removeOnComplete\`, 5 attempts with exponential backoff. ` +
      `Worker processes (\`node --import tsx scripts/bench/peer-bullmq-worker.ts\`), BullMQ concurrency **${peer.concurrency}** each, a MariaDB pool of ${peer.dbPool} (our workers' database.poolMax), settling each job in one transaction with our statements: \`UPDATE peer_payments SET status='CLOSED', updated_at=?, closed_at=? WHERE id=? AND status='PENDING'\` and, when it changed the row, the \`peer_payment_events\` row (copies of payments and payment_events: the designs share no row). ` +
      `Ours settles in batches (worker prefetch and batch size from config/default.json), reads the rows by id first and writes the same UPDATE (by sorted ids) and event rows. **Ours**: the drain and accuracy figures ${peer.oursFrom.drain === 'this run' && peer.oursFrom.accuracy === 'this run' ? 'are this run\'s sections 3 and 4 (quorum, timers published directly)' : `come from sections 3 and 4 (drain: ${peer.oursFrom.drain}; accuracy: ${peer.oursFrom.accuracy})`}; memory and SIGKILL runs on a prefix of their own (\`${ctx.prefixes.peer}\`, quorum queues), timers published with the service's DelayScheduler.`,
  );
  md.push('');
  if (ctx.quick) md.push('Quick run: figures only, not judged (quick). The samples are too small to compare the designs; `npm run bench -- --only peer` does.', '');
  if (Object.keys(peer.errors).length) md.push(`**Errors**: ${Object.entries(peer.errors).map(([k, v]) => `${k}: ${v}`).join('; ')}`, '');
  const a = peer.accuracy;
  const row = (what: string, ours: string, theirs: string, r: string) => md.push(`| ${what} | ${ours} | ${theirs} | ${r} |`);
  const num = (v: number | undefined, digits = 0, unit = '') => (v === undefined || !Number.isFinite(v) ? 'n/a' : `${fmt(v, digits)}${unit}`);
  md.push('| figure | ours | peer (BullMQ) | ratio ours/peer |');
  md.push('|---|---|---|---|');
  const acc = a.ours ?? a.peer;
  const accWhat = acc ? `at ${fmt(acc.targetRate)} timers/s for ${acc.durationSec} s, timeouts ${acc.timeouts[0]}–${acc.timeouts[1]} s, 2 workers` : '';
  row(`settled / created ${accWhat}`, a.ours ? `${fmt(a.ours.settled)} / ${fmt(a.ours.created)}` : 'n/a', a.peer ? `${fmt(a.peer.settled)} / ${fmt(a.peer.created)}` : 'n/a', '');
  for (const [label, key] of [['p50', 'p50'], ['p99', 'p99'], ['max', 'max']] as const) {
    row(`lateness ${label} (s, lower is better)`, num(a.ours?.lateness[key], 3), num(a.peer?.lateness[key], 3), ratio(a.ours?.lateness[key], a.peer?.lateness[key]));
  }
  row('settled early (count; must be 0)', num(a.ours?.early), num(a.peer?.early), ratio(a.ours?.early, a.peer?.early));
  const byWorkers = (runs: SideDrain[], w: number) => runs.find((d) => d.workers === w);
  for (const w of [1, 2]) {
    const o = byWorkers(peer.drain.ours, w);
    const t = byWorkers(peer.drain.peer, w);
    row(`drain of ${fmt(o?.payments ?? t?.payments)} already-due timers, ${w} worker${w > 1 ? 's' : ''} (settled/s, first→last settlement; higher is better)`, o ? `${num(o.settledPerSec)} (${fmt(o.settled)} settled)` : 'n/a', t ? `${num(t.settledPerSec)} (${fmt(t.settled)} settled)` : 'n/a', ratio(o?.settledPerSec, t?.settledPerSec));
  }
  for (const w of [1, 2]) {
    const o = byWorkers(peer.drain.ours, w)?.cpuMicrosPerPayment;
    const t = byWorkers(peer.drain.peer, w)?.cpuMicrosPerPayment;
    const label = `${w} worker${w > 1 ? 's' : ''}`;
    row(`CPU µs per settled payment, ${label}: workers`, num(o?.workers), num(t?.workers), ratio(o?.workers, t?.workers));
    row(`CPU µs per settled payment, ${label}: broker (RabbitMQ / Redis)`, num(o?.broker), num(t?.broker), ratio(o?.broker, t?.broker));
    row(`CPU µs per settled payment, ${label}: MariaDB`, num(o?.mariadb), num(t?.mariadb), ratio(o?.mariadb, t?.mariadb));
    row(`CPU µs per settled payment, ${label}: all three (lower is better)`, `**${num(o?.total)}**`, `**${num(t?.total)}**`, ratio(o?.total, t?.total));
  }
  const m = peer.memory;
  // A growth read while the broker freed older memory is no figure: shown with its readings, not compared.
  const grew = (x: SideMemory | undefined, key: 'rss' | 'heap') => {
    if (!x) return 'n/a';
    const [b, a, per] = key === 'rss' ? [x.rssBeforeMb, x.rssAfterMb, x.rssPerMillionMb] : [x.heapBeforeMb, x.heapAfterMb, x.heapPerMillionMb];
    const readings = `${num(b, 1)} → ${num(a, 1)} MB${x.settled.before && x.settled.after ? '' : ', not settled'}`;
    return per !== undefined && per > 0 ? `**${num(per)}** (${readings})` : `not measurable (${readings})`;
  };
  const memWhat = `measured at ${fmt(p.memoryTimers)} waiting timers (${p.memoryDelaySec} s delay), scaled ×${fmt(1e6 / p.memoryTimers)}`;
  row(`broker memory per 1 M waiting timers, RSS growth of beam / redis-server (MB; ${memWhat}; lower is better)`, grew(m.ours, 'rss'), grew(m.peer, 'rss'), ratio(m.ours?.rssPerMillionMb, m.peer?.rssPerMillionMb));
  row(`broker memory per 1 M waiting timers, the broker's own account: Erlang VM total / used_memory (MB; ${memWhat})`, grew(m.ours, 'heap'), grew(m.peer, 'heap'), ratio(m.ours?.heapPerMillionMb, m.peer?.heapPerMillionMb));
  const k = peer.kill;
  row(
    `timers lost when the broker is SIGKILLed with ${fmt(p.killTimers)} waiting (${p.killDelaySec} s delay), counted after the restart (lower is better)`,
    k.ours ? `**${fmt(k.ours.lost)}** (${fmt(k.ours.found)} found; killed ${fmt(k.ours.killAfterMs)} ms after the last confirm)` : 'n/a',
    k.peer ? `**${fmt(k.peer.lost)}** (${fmt(k.peer.found)} found; killed ${fmt(k.peer.killAfterMs)} ms after the last add returned)` : 'n/a',
    ratio(k.ours?.lost, k.peer?.lost),
  );
  md.push('');
  md.push(
    `Lateness = closed_at − expires_at of each design's own table; the peer's load is ours (accuracy.ts): rows inserted in 100 ms ticks, a job each right after, 2 worker processes. Drain: the rows inserted and every job added with no delay (they wait in the queue's wait list, as our timers wait in the compensation queue) before the workers start; settled/s and CPU from the first to the last settlement (closed_at), CPU from /proc (utime + stime of the worker processes, redis-server or RabbitMQ's beam, and mariadbd, sampled every 50 ms). ` +
      `Memory: RSS (VmRSS) of the broker process and its own account before the first and after the last timer was added or confirmed, each read once the broker's own figure had held still for 2 s (at most 45 s; "not settled" otherwise), the growth scaled linearly from ${fmt(p.memoryTimers)} to 1 M (measured at ${fmt(p.memoryTimers)}, scaled); both are compared. For ours the write-ahead log of the quorum queues is rolled over before each reading (\`stack.sh rabbitmqctl eval 'ra_log_wal:force_roll_over(ra_log_wal).'\`): a timer waits far longer than the WAL's memory tables keep it (they are flushed every 512 MB of writes), so the cost of a waiting timer is what stays after a roll-over; beam's RSS may not fall when Erlang frees memory, so its growth can read low, and the Erlang total is the better figure for ours. ` +
      `SIGKILL: the stack's broker process only (its pid file), right after the last publisher confirm (ours: quorum queues confirm once the message is fsynced) or the last addBulk answer (peer: Redis writes each command to the AOF file before it answers and fsyncs it about once a second, appendfsync everysec; a killed process loses only what it had not yet handed to the kernel, while the second not yet fsynced is what a crash of the machine would lose, which this test does not do), restarted with \`scripts/stack.sh up\`, and the waiting timers counted (ours: queue.declare-ok of the prefix's delay and compensation queues, polled until all were found or the count held for 5 s; peer: getJobCounts). No target is set for the peer: the table gives figures and ratios.`,
  );
  md.push('');
  const [ours, theirs] = [a.ours, a.peer];
  if (ours && theirs) {
    const lat = (['p50', 'p99', 'max'] as const).flatMap((q) => [
      { category: `lateness ${q}`, series: 'ours', value: ours.lateness[q] },
      { category: `lateness ${q}`, series: 'peer (BullMQ)', value: theirs.lateness[q] },
    ]);
    md.push(await chart('peer-lateness', groupedBars('Lateness: ours vs BullMQ delayed jobs (s)', 'seconds', lat)));
    md.push('');
  }
}

/** Which cores were ours during each scenario. */
async function machineLoadSection(S: Sections): Promise<void> {
  const { load, md } = S;
  md.push('## Machine load during the run');
  md.push('');
  md.push('Average cores busy per scenario, from /proc: "ours" is this benchmark process and its children plus the stack it drives (RabbitMQ, MariaDB, nginx, the app processes); "others" is everything else on the machine (other engineers\' test stacks, builds, kernel threads).');
  md.push('');
  md.push('| scenario | seconds | ours (cores) | others (cores) | load average at start |');
  md.push('|---|---|---|---|---|');
  for (const l of load) md.push(`| ${l.scenario} | ${fmt(l.seconds, 1)} | ${fmt(l.oursCores, 2)} | ${fmt(l.othersCores, 2)} | ${fmt(l.loadAvgStart, 2)} |`);
  md.push('');
}

/** What was scaled down from the full run, and why. */
async function scalingSection(S: Sections): Promise<void> {
  const { ctx, md } = S;
  md.push('## What was scaled, and why');
  md.push('');
  for (const n of ctx.notes) md.push(`- ${n}`);
  md.push('');
}

function pickSpread(s: { median: number; min: number; max: number }): { median: number; min: number; max: number } {
  return { median: s.median, min: s.min, max: s.max };
}

export { spread };
