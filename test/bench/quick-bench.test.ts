import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * `npm run bench -- --quick --with-api-accuracy` inside `npm test`, so that CI keeps the benchmark from rotting.
 * It checks that every scenario ran and that what the benchmark reports is correct (everything
 * settled, nothing early, no deadlock for us); how fast is the benchmark's business, not this
 * test's. Runs last and alone (scripts/test.sh): it drives the stack's app ports and nginx.
 */
const root = path.resolve(__dirname, '..', '..');

interface BenchOutput {
  code: number | null;
  output: string;
}

function runQuickBench(): Promise<BenchOutput> {
  return new Promise((resolve) => {
    // dist/ is built by scripts/test.sh; `npm run bench` would build it again. The API accuracy
    // run is optional in the full bench; here it keeps that path from rotting.
    const child = spawn('npx', ['tsx', 'scripts/bench/run.ts', '--quick', '--with-api-accuracy'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      process.stdout.write(chunk);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // The bench bounds itself (6 minutes for --quick) and cleans up; this is the last resort.
    const timer = setTimeout(() => child.kill('SIGTERM'), 8 * 60 * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

let bench: BenchOutput;
let results: any;
let dir: string;

beforeAll(async () => {
  bench = await runQuickBench();
  const report = /report: (bench-results\/[^\s]+)\/report\.md/.exec(bench.output)?.[1];
  dir = path.join(root, report ?? 'missing-report');
  results = existsSync(path.join(dir, 'results.json')) ? JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) : undefined;
}, 9 * 60 * 1000);

describe('npm run bench -- --quick', () => {
  it('exits 0 having run every scenario without an error', () => {
    expect({ code: bench.code, errors: results?.info?.errors }).toEqual({ code: 0, errors: {} });
    expect(results.info.scenarios).toEqual([
      'ceilings',
      'intake',
      'drain (1 and 2 workers)',
      'end to end (quorum)',
      'accuracy (quorum)',
      'accuracy (quorum, through the API)',
      'accuracy (classic)',
      'end to end (classic)',
      'batch-job',
      'peer (BullMQ on Redis)',
    ]);
  });

  it('writes the report and its charts', () => {
    const report = readFileSync(path.join(dir, 'report.md'), 'utf8');
    for (const section of ['## 1. Raw ceilings', '## 2. Intake', '## 3. Drain', '## 4. Timer accuracy', '## 5. The batch job', '## 6. Memory', '## 7. Peer: BullMQ delayed jobs on Redis']) {
      expect(report).toContain(section);
    }
    // A quick run judges no target: every row of the targets table says so, none says met.
    const targets = report.slice(report.indexOf('## Targets at a glance'), report.indexOf('## 1. Raw ceilings'));
    const rows = targets.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| target'));
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.filter((l) => !l.includes('not judged (quick)'))).toEqual([]);
    expect(targets).not.toMatch(/\| (met|not met) \|/);
    // The broker's state at start is recorded: a churned broker measures slower.
    expect(report).toMatch(/\*\*Broker at start\*\*: RabbitMQ up [\d,.]+ min, [\d,.]+ MB, [\d,]+ messages in [\d,]+ queues\./);
    for (const chart of ['ceilings', 'intake', 'drain', 'dead-letterings', 'accuracy-histogram', 'batch-job-lateness', 'batch-job-work', 'memory', 'peer-lateness']) {
      expect(readFileSync(path.join(dir, `${chart}.svg`), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    }
  });

  it('reports medians over repeats for the ceilings and the intake, and the intake lost no create', () => {
    const { ceilings, intake } = results.results;
    for (const name of ['publish', 'consume']) expect({ name, n: ceilings[name].rate.n, positive: ceilings[name].rate.median > 0 }).toEqual({ name, n: 2, positive: true });
    for (const c of intake.byConcurrency) expect({ connections: c.connections, n: c.rate.n, errors: c.errors, non2xx: c.non2xx }).toEqual({ connections: c.connections, n: 2, errors: 0, non2xx: 0 });
    // Every 201 is a row, and every timer left the outbox.
    expect(intake.paymentsInDb).toBeGreaterThanOrEqual(intake.okResponses);
    expect(intake.outboxLeftAfter).toBe(0);
    // The paced 500 creates/s through nginx is normal traffic: no limit answers 429, nothing fails.
    const paced = intake.fixedRate;
    expect({ target: paced.target, rateLimited: paced.rateLimited, non2xx: paced.non2xx, errors: paced.errors }).toEqual({ target: 500, rateLimited: 0, non2xx: 0, errors: 0 });
    // The paced run's batches, from the apis' histograms: every batch timed in every phase.
    const batches = intake.fixedRate.batches;
    expect(batches?.batches).toBeGreaterThan(0);
    expect(batches?.createsPerBatch).toBeGreaterThanOrEqual(1);
    for (const phase of ['wait', 'transaction', 'publish']) expect(batches?.phases[phase].meanMs).toBeGreaterThanOrEqual(0);
    expect(batches?.phases.transaction.meanMs).toBeGreaterThan(0);
    // What the paced creates cost each process group (/proc), and the no-op floor at the same pace.
    const cpu = intake.fixedRate.cpu;
    expect([cpu.microsPerCreate.apis > 0, cpu.microsPerCreate.mariadb > 0, cpu.microsPerCreate.nginx > 0, cpu.microsPerCreate.bench > 0]).toEqual([true, true, true, true]);
    expect(cpu.busyCores > 0 && cpu.busyCores <= cpu.cores).toBe(true);
    const floor = ceilings.noop.paced;
    expect({ target: floor.target, n: floor.p99.n, positive: floor.p99.median > 0 }).toEqual({ target: intake.fixedRate.target, n: 2, positive: true });
  });

  it('settles every payment of the drain and the end-to-end runs once, none early', () => {
    for (const run of results.results.drain.runs) {
      expect({ workers: run.workers, settled: run.settled }).toEqual({ workers: run.workers, settled: run.payments });
      // What a settlement cost each process of the stack, read from /proc over the drain's window
      // (undefined when a process could not be read).
      const cpu = run.cpuMicrosPerPayment;
      expect([cpu.workers > 0, typeof cpu.rabbitmq, typeof cpu.mariadb, cpu.total >= cpu.workers]).toEqual([true, 'number', 'number', true]);
    }
    for (const run of results.results.endToEnd) {
      expect({ queueType: run.queueType, settled: run.settled, early: run.early }).toEqual({ queueType: run.queueType, settled: run.payments, early: 0 });
      expect(run.counterDeadLetterings).toBeGreaterThanOrEqual(run.expectedDeadLetterings);
    }
  });

  it('settles every timer of the accuracy runs, none early, on both queue types and through the API', () => {
    expect(results.results.accuracy.map((a: any) => `${a.queueType} ${a.via}`).sort()).toEqual(['classic direct', 'quorum api', 'quorum direct']);
    for (const a of results.results.accuracy) {
      expect({ queueType: a.queueType, unsettled: a.unsettled, early: a.early, settled: a.settled > 0 }).toEqual({ queueType: a.queueType, unsettled: 0, early: 0, settled: true });
    }
  });

  it('shows no deadlock for our design, and leaves no due payment unsettled by either design', () => {
    for (const size of ['small', 'big']) {
      const cell = results.results.batchJob[size];
      expect({ size, deadlocks: cell.ours.errors.settle.deadlocks + cell.ours.workerLockRetries }).toEqual({ size, deadlocks: 0 });
      expect({ size, ours: cell.ours.unsettledDue, job: cell.job.unsettledDue }).toEqual({ size, ours: 0, job: 0 });
    }
  });

  it('runs the BullMQ peer beside ours: every timer settled, none early, what each broker kept after a SIGKILL counted', () => {
    const peer = results.results.peer;
    expect(peer.errors).toEqual({});
    // Ours is this run's own drain and accuracy (the peer scenario runs them only when they did not run).
    expect(peer.oursFrom).toEqual({ drain: 'this run', accuracy: 'this run' });
    for (const side of ['ours', 'peer']) {
      const a = peer.accuracy[side];
      expect({ side, settled: a.settled, unsettled: a.unsettled, early: a.early, some: a.created > 0 }).toEqual({ side, settled: a.created, unsettled: 0, early: 0, some: true });
      expect({ side, workers: peer.drain[side].map((d: any) => d.workers) }).toEqual({ side, workers: [1, 2] });
      for (const d of peer.drain[side]) {
        const cpu = d.cpuMicrosPerPayment;
        expect({ side, workers: d.workers, settled: d.settled, cpu: [cpu.workers > 0, typeof cpu.broker, typeof cpu.mariadb] }).toEqual({ side, workers: d.workers, settled: d.payments, cpu: [true, 'number', 'number'] });
      }
      // Every timer of the memory run was waiting when the memory was read.
      expect({ side, waiting: peer.memory[side].waiting }).toEqual({ side, waiting: peer.memory[side].timers });
      const k = peer.kill[side];
      expect({ side, found: Number.isInteger(k.found), lost: k.lost, inRange: k.found >= 0 && k.found <= k.timers }).toEqual({ side, found: true, lost: k.timers - k.found, inRange: true });
    }
    expect(peer.memory.peer.heapPerMillionMb).toBeGreaterThan(0);
    // Every BullMQ key of the run went with its queue's obliterate.
    expect(peer.keysLeft).toBe(0);
    const report = readFileSync(path.join(dir, 'report.md'), 'utf8');
    const section = report.slice(report.indexOf('## 7. Peer'), report.indexOf('## Machine load'));
    expect(section).toContain('| figure | ours | peer (BullMQ) | ratio ours/peer |');
    expect(section).toContain('not judged (quick)');
    expect(section).not.toMatch(/\| (met|not met) \|/);
  });

  it('samples the memory of the api and worker processes', () => {
    const processes = new Set(results.memory.map((m: any) => m.process.replace(/-\d+$/, '')));
    expect([...processes].sort()).toEqual(['api', 'worker']);
    for (const m of results.memory) expect(m.peakRssMb).toBeGreaterThan(0);
  });
});
