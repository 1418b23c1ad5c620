/**
 * `npm run bench` (full, about 18 minutes on the 2-core machine, 8 of them the BullMQ peer) and `npm run bench -- --quick`
 * (under 2 minutes). `--only <scenario>` (repeatable, or comma-separated) runs some scenarios:
 * ceilings, intake, accuracy, drain, batch-job, peer. Memory (scenario 6) is sampled during intake,
 * accuracy and drain. Accuracy runs on quorum and classic queues with the timers published
 * directly (the timer path alone, which the target is about); `--with-api-accuracy` adds a quorum
 * run end to end through the API (about 95 s more). `--keep-db` keeps the bench database.
 * `peer` (scenario 7, last: it SIGKILLs RabbitMQ and Redis and restarts them) runs BullMQ delayed
 * jobs on the stack's Redis beside ours; alone (`--only peer`) it runs our drain and accuracy
 * counterparts itself (about 10 minutes in all).
 *
 * It uses the local stack (scripts/stack.sh: RabbitMQ, MariaDB, nginx, the app processes), a
 * dedicated database (compensator_bench, created with root over the stack's socket) and broker
 * prefixes unique to the run, and stops every app process it started (stack.sh down --apps) at
 * the end, on a signal and when the global time limit runs out. Results go to
 * bench-results/<date>_<time>[-quick]/: report.md, results.json and the SVG charts.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runAccuracy, type AccuracyRun } from './accuracy';
import { runBatchJob } from './batch-job';
import { runCeilings } from './ceilings';
import { stopAllChildren } from './children';
import { ROOT, abort, log, run } from './common';
import { FULL, QUICK, SCENARIOS, type Context, type ScenarioName } from './context';
import { runDrain, runEndToEnd, type EndToEndRun } from './drain';
import { RABBITMQ_MGMT, createBenchDatabase, dropBenchDatabase, migrate, serverSettings, stackDownApps, writeConfig } from './environment';
import { runIntake } from './intake';
import { runPeer } from './peer-bullmq';
import { createMachineLoadSampler } from './machine-load';
import { createMemorySampler } from './memory';
import { writeReport, type Machine, type RunInfo } from './report';
import { deleteBenchTopology } from './timers';

function usage(): never {
  process.stdout.write(
    'usage: npm run bench [-- --quick] [--only ceilings|intake|accuracy|drain|batch-job|peer ...] [--with-api-accuracy] [--keep-db]\n',
  );
  process.exit(2);
}

function parseArgs(argv: string[]) {
  const only = new Set<ScenarioName>();
  let quick = false;
  let keepDb = false;
  let withApiAccuracy = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--quick') quick = true;
    else if (a === '--keep-db') keepDb = true;
    else if (a === '--with-api-accuracy') withApiAccuracy = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a.includes('=') ? a.slice('--only='.length) : argv[++i];
      if (!v) usage();
      for (const name of v.split(',')) {
        if (!(SCENARIOS as readonly string[]).includes(name)) {
          process.stderr.write(`unknown scenario "${name}"; one of: ${SCENARIOS.join(', ')}\n`);
          process.exit(2);
        }
        only.add(name as ScenarioName);
      }
    } else if (a === '--help' || a === '-h') usage();
    else {
      process.stderr.write(`unknown argument ${a}\n`);
      usage();
    }
  }
  return { quick, keepDb, withApiAccuracy, scenarios: only.size ? SCENARIOS.filter((s) => only.has(s)) : [...SCENARIOS] };
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

async function describeMachine(): Promise<Machine> {
  let rabbitmq = 'unknown';
  let erlang = 'unknown';
  let rabbitmqAtStart: Machine['rabbitmqAtStart'];
  const mgmt = async <T>(api: string): Promise<T> => {
    const res = await fetch(`${RABBITMQ_MGMT}/api/${api}`, { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` }, signal: AbortSignal.timeout(5000) });
    return (await res.json()) as T;
  };
  try {
    const o = await mgmt<{ rabbitmq_version?: string; erlang_version?: string; queue_totals?: { messages?: number }; object_totals?: { queues?: number } }>('overview');
    rabbitmq = o.rabbitmq_version ?? rabbitmq;
    erlang = o.erlang_version ?? erlang;
    const [node] = await mgmt<Array<{ uptime?: number; mem_used?: number }>>('nodes');
    rabbitmqAtStart = { uptimeMin: (node?.uptime ?? 0) / 60000, memoryMb: (node?.mem_used ?? 0) / 1e6, messages: o.queue_totals?.messages ?? 0, queues: o.object_totals?.queues ?? 0 };
  } catch {
    // keep unknown
  }
  const osRelease = existsSync('/etc/os-release') ? (/PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type()) : os.type();
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : '';
  return {
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${osRelease}, kernel ${os.release()}`,
    node: process.version,
    rabbitmq,
    erlang,
    mariadb: await serverSettings(),
    nginx: sh('/usr/sbin/nginx', ['-v']) || sh('nginx', ['-v']) || 'nginx (version unknown)',
    commit: `${sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || 'unknown'}${dirty}`,
    rabbitmqAtStart,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  const runId = `${stamp.slice(2, 8)}${stamp.slice(9, 15)}${randomBytes(2).toString('hex')}`; // e.g. 2611241530 + hex
  const short = runId.slice(-8);
  const outDir = path.join(ROOT, 'bench-results', `${startedAt.toISOString().slice(0, 10)}_${stamp.slice(9, 15)}${args.quick ? '-quick' : ''}`);
  const tmpDir = path.join(os.tmpdir(), `pc-bench-${runId}`);
  mkdirSync(outDir, { recursive: true });
  mkdirSync(tmpDir, { recursive: true });
  const db = 'compensator_bench';
  const prefixes = { quorum: `bench-${short}-q`, classic: `bench-${short}-c`, batchJob: `bench-${short}-j`, ceiling: `bench-${short}-raw`, peer: `bench-${short}-p` };
  const memory = createMemorySampler();
  const machineLoad = createMachineLoadSampler();
  const ctx: Context = {
    runId,
    quick: args.quick,
    sizes: args.quick ? QUICK : FULL,
    db,
    outDir,
    tmpDir,
    configs: {
      quorum: writeConfig(tmpDir, 'quorum', { prefix: prefixes.quorum, queueType: 'quorum' }),
      classic: writeConfig(tmpDir, 'classic', { prefix: prefixes.classic, queueType: 'classic' }),
      batchJob: writeConfig(tmpDir, 'batch-job', { prefix: prefixes.batchJob, queueType: 'quorum' }),
      peer: writeConfig(tmpDir, 'peer', { prefix: prefixes.peer, queueType: 'quorum' }),
    },
    prefixes,
    memory,
    results: {},
    notes: [],
  };
  const errors: Record<string, string> = {};
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  log(`${command}: results in ${path.relative(ROOT, outDir)}; database ${db}; broker prefixes ${Object.values(prefixes).join(', ')}`);

  // Bounded in total: past the limit every loop stops and the cleanup runs.
  // Full: the peer's two 100,000-timer drains settle about 1,000/s, one per job.
  const limitMs = (args.quick ? 6 : 30) * 60 * 1000;
  const watchdog = setTimeout(() => {
    abort.requested = true;
    abort.reason = `the ${limitMs / 60000}-minute limit ran out`;
    log(`aborting: ${abort.reason}`);
  }, limitMs);
  watchdog.unref();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    abort.requested = true;
    abort.reason = `received ${sig}`;
    log(`${sig}: stopping (cleanup runs; a second signal exits at once)`);
    if (signals > 1) {
      void stopAllChildren().finally(() => process.exit(130));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let machine: Machine | undefined;
  const ran: string[] = [];
  try {
    if (!existsSync(path.join(ROOT, 'dist/main.js'))) throw new Error('dist/main.js is missing: run `npm run build` (npm run bench does)');
    await run('bash', ['scripts/stack.sh', 'up'], { timeoutMs: 600000 }); // RabbitMQ + MariaDB, idempotent
    machine = await describeMachine();
    await createBenchDatabase(db);
    await migrate(db, ctx.configs.quorum);
    memory.start();
    machineLoad.start();

    const step = async (name: string, fn: () => Promise<unknown>, key: string) => {
      if (abort.requested) return;
      const t0 = Date.now();
      machineLoad.setScenario(name);
      log(`--- ${name}`);
      try {
        const value = await fn();
        if (value !== undefined) ctx.results[key] = value;
        ran.push(name);
      } catch (err) {
        errors[name] = (err as Error).message.split('\n')[0] as string;
        log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
      } finally {
        machineLoad.setScenario(undefined);
        const share = machineLoad.results().at(-1);
        log(`--- ${name} took ${((Date.now() - t0) / 1000).toFixed(1)} s${share ? ` (cores busy: ours ${share.oursCores.toFixed(2)}, others ${share.othersCores.toFixed(2)})` : ''}`);
        memory.setScenario(undefined);
      }
    };
    const want = (s: ScenarioName) => args.scenarios.includes(s);
    const accuracy: AccuracyRun[] = [];
    const e2e: EndToEndRun[] = [];
    ctx.results.accuracy = accuracy;
    ctx.results.endToEnd = e2e;

    if (want('ceilings')) await step('ceilings', () => runCeilings(ctx), 'ceilings');
    if (want('intake')) {
      memory.setScenario('intake');
      await step('intake', () => runIntake(ctx), 'intake');
    }
    // Ordered so that scenarios sharing a stack shape follow each other (fewer restarts).
    if (want('drain')) {
      await step('drain (1 and 2 workers)', () => runDrain(ctx), 'drain');
      await step('end to end (quorum)', async () => void e2e.push(await runEndToEnd(ctx, 'quorum')), 'none');
    }
    if (want('accuracy')) {
      await step('accuracy (quorum)', async () => void accuracy.push(await runAccuracy(ctx, 'quorum', 'direct')), 'none');
      if (args.withApiAccuracy) await step('accuracy (quorum, through the API)', async () => void accuracy.push(await runAccuracy(ctx, 'quorum', 'api')), 'none');
      await step('accuracy (classic)', async () => void accuracy.push(await runAccuracy(ctx, 'classic', 'direct')), 'none');
    }
    if (want('drain')) await step('end to end (classic)', async () => void e2e.push(await runEndToEnd(ctx, 'classic')), 'none');
    if (want('batch-job')) await step('batch-job', () => runBatchJob(ctx), 'batchJob');
    // Last: it SIGKILLs the brokers (and restarts them).
    if (want('peer')) await step('peer (BullMQ on Redis)', () => runPeer(ctx), 'peer');
  } catch (err) {
    errors.setup = (err as Error).message.split('\n')[0] as string;
    log(`setup failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    memory.stop();
    machineLoad.stop();
    log('cleanup: stack.sh down --apps, child processes, the run\'s broker topology' + (args.keepDb ? '' : ' and database'));
    await stopAllChildren();
    await stackDownApps().catch((err) => log(`stack down failed: ${(err as Error).message}`));
    for (const prefix of [prefixes.quorum, prefixes.classic, prefixes.batchJob, prefixes.peer]) {
      await deleteBenchTopology(prefix).catch((err) => log(`deleting topology ${prefix} failed: ${(err as Error).message}`));
    }
    if (!args.keepDb) await dropBenchDatabase(db).catch((err) => log(`dropping ${db} failed: ${(err as Error).message}`));
    clearTimeout(watchdog);
  }
  if (abort.requested) errors.aborted = abort.reason;

  addNotes(ctx);
  const finishedAt = new Date();
  const info: RunInfo = {
    command,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    totalSec: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    scenarios: ran,
    errors,
  };
  const peaks = memory.peaks();
  const load = machineLoad.results();
  writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify({ info, machine, sizes: ctx.sizes, prefixes, results: ctx.results, memory: peaks, machineLoad: load, notes: ctx.notes }, null, 2)}\n`);
  if (machine) {
    const report = await writeReport(ctx, machine, info, peaks, load);
    log(`report: ${path.relative(ROOT, report)}`);
  }
  const latest = path.join(ROOT, 'bench-results', 'latest');
  try {
    if (abort.requested) throw new Error('an aborted run does not become "latest"');
    if (existsSync(latest) || isSymlink(latest)) unlinkSync(latest);
    symlinkSync(path.basename(outDir), latest);
  } catch {
    // not essential
  }
  rmSync(tmpDir, { recursive: true, force: true });
  log(`done in ${info.totalSec.toFixed(0)} s${Object.keys(errors).length ? `; errors: ${JSON.stringify(errors)}` : ''}`);
  process.exit(Object.keys(errors).length ? 1 : 0);
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function addNotes(ctx: Context): void {
  const s = ctx.sizes;
  if (ctx.quick) {
    ctx.notes.push('--quick: every size is scaled down so the whole run stays under 2 minutes (CI keeps the benchmark from rotting); its figures show that the benchmark works, not what the machine can do.');
  }
  ctx.notes.push(`Short scenarios (ceilings, intake) run ${s.repeats} repeats each (${s.ceilings.publishSec} s publish, ${s.ceilings.noopSec} s no-op, ${s.intake.durationSec} s per intake repeat) so that all 6 scenarios fit about 10 minutes on 2 cores.`);
  ctx.notes.push(
    `Drain: ${s.drain.payments.toLocaleString('en-US')} payments per worker count, one run each (each needs the rows inserted, the timers published and a stack restart); the spread shown is over the per-second settlement counts.`,
  );
  ctx.notes.push(
    `End to end: ${s.drain.endToEnd.toLocaleString('en-US')} timers (not ${s.drain.payments.toLocaleString('en-US')}) per queue type: they pass the broker's dead-lettering, which settles a burst at about 1,000–2,500 per second here, so 100,000 would need 45–100 s per queue type on top of publishing them.`,
  );
  ctx.notes.push(
    `Accuracy: ${s.accuracy.rate}/s for ${s.accuracy.durationSec} s with timeouts ${s.accuracy.minTimeout}–${s.accuracy.maxTimeout} s, one run per row (each lasts the load plus the longest timeout); the spread shown is the p99 per 10 s window of deadlines. The target is judged on the timer path alone: the bench inserts the rows in 100 ms ticks and publishes their timers with the service's DelayScheduler on 2 connections, with 2 workers settling. A run through the API (\`--with-api-accuracy\`: nginx, 2 api replicas, autocannon) is end to end on the same two cores: the intake then competes with the workers and the broker's dead-lettering, and a create's own latency becomes lateness (the timer starts at the request, and is published after commit).`,
  );
  ctx.notes.push(
    `Batch job: ${ctx.quick ? 'the job on INDEX (status, expires_at) only (the status-only variant is skipped in --quick); ' : ''}${s.batchJob.durationSec} s of traffic per cell (plus ${s.batchJob.maxTimeout + 1.5} s to settle the last deadlines), timeouts ${s.batchJob.minTimeout}–${s.batchJob.maxTimeout} s so that most payments fall due inside the window, ${s.batchJob.seedRows.toLocaleString('en-US')} pre-existing settled rows for the big table; one run per cell.`,
  );
  ctx.notes.push(
    `Peer (BullMQ): lateness at the accuracy scenario's rate, duration and timeouts, drains of ${s.drain.payments.toLocaleString('en-US')} already-due timers, memory measured with ${s.peer.memoryTimers.toLocaleString('en-US')} waiting timers (${s.peer.memoryDelaySec} s delay) and scaled to 1 M, ${s.peer.killTimers.toLocaleString('en-US')} timers (${s.peer.killDelaySec} s delay) waiting at the SIGKILL; one run each.`,
  );
  ctx.notes.push('The machine is shared: other engineers\' tests may use the same RabbitMQ and MariaDB during a run, which shows up as noise, and in the server-wide counters (Handler_read%, Innodb_deadlocks, the dead-letter counter, mariadbd CPU).');
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
