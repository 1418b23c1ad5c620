/**
 * `npm run bench:worker`: what one settlement costs a worker. One worker process (the built
 * dist/main.js, heap capped like the stack's) drains N timers that already wait in the
 * compensation queue (adapter none), and this prints the rate and the CPU time per payment of
 * the worker process, RabbitMQ and MariaDB from the first settlement to the last. For comparing builds and
 * for profiling, which the full benchmark cannot do (its workers are started by stack.sh).
 *
 *   npm run bench:worker -- [--payments 100000] [--cpu-prof DIR] [--build DIR]
 *
 * --cpu-prof DIR   the worker writes a V8 CPU profile into DIR (open it in Chrome DevTools)
 * --build DIR      run DIR/dist/main.js instead of this checkout's, e.g. an older commit's
 *                  `git worktree` built with `npm run build`: alternate the two to compare
 * --node-flags F    more flags for the worker's node, e.g. "--max-semi-space-size=32"
 *
 * Uses the local stack's RabbitMQ and MariaDB (scripts/stack.sh up), a database and a broker
 * prefix of its own, and deletes both at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, cpuMsOf, memoryOf, waitFor } from './common';
import { appEnvironment, benchPool, createBenchDatabase, dropBenchDatabase, mariadbPid, migrate, rabbitmqPid, writeConfig } from './environment';
import { deleteBenchTopology, fillDueQueue, openBenchBroker } from './timers';

function parseArgs(argv: string[]) {
  const out = { payments: 100_000, cpuProf: undefined as string | undefined, build: ROOT, nodeFlags: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--payments' && value && Number(value) > 0) out.payments = Number(value);
    else if (flag === '--cpu-prof' && value) out.cpuProf = path.resolve(value);
    else if (flag === '--build' && value) out.build = path.resolve(value);
    else if (flag === '--node-flags' && value) out.nodeFlags = value.split(' ').filter(Boolean);
    else {
      process.stderr.write('usage: npm run bench:worker -- [--payments N] [--cpu-prof DIR] [--build DIR] [--node-flags "--flag ..."]\n');
      process.exit(2);
    }
    i++;
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const id = randomBytes(3).toString('hex');
  const db = `compensator_wp_${id}`;
  const prefix = `bench-wp-${id}`; // bench-: the bench app user's names (environment.ts)
  const merchantId = `wp_${id}`;
  const configFile = writeConfig(mkdtempSync(path.join(os.tmpdir(), 'pc-worker-profile-')), 'worker', { prefix, queueType: 'quorum' });
  await createBenchDatabase(db);
  const pool = benchPool(db, 4);
  const bench = await migrate(db, configFile).then(() => openBenchBroker(configFile, db));
  try {
    await fillDueQueue(pool, bench, configFile, db, merchantId, args.payments);

    // CPU ms spent since now by a process of the stack (undefined when it cannot be read)
    const since = (pid: number | undefined) => {
      const before = pid ? cpuMsOf(pid) : undefined;
      return () => (pid && before !== undefined ? (cpuMsOf(pid) ?? NaN) - before : undefined);
    };
    const node = ['--max-old-space-size=96', ...args.nodeFlags, ...(args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${args.cpuProf}`] : [])];
    const worker = spawn(process.execPath, [...node, path.join(args.build, 'dist/main.js'), '--role', 'worker'], {
      env: { ...appEnvironment(configFile, db), PORT: '0' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => worker.on('exit', () => resolve()));
    const settled = async () => {
      const [[row]] = (await pool.query("SELECT COUNT(*) AS n FROM payments WHERE merchant_id = ? AND status = 'CLOSED'", [merchantId])) as unknown as [[{ n: number }]];
      return Number(row.n);
    };
    // CPU is counted from the first settlement on, as the full benchmark's drain counts it: the
    // worker's start-up (about 1.2 s of CPU, loading every module) is not settlement work.
    let fromFirst = { settled: 0, workerSpent: since(worker.pid), rabbitSpent: since(rabbitmqPid()), dbSpent: since(mariadbPid()) };
    try {
      await waitFor('the first settlement', async () => {
        const n = await settled();
        if (n > 0) fromFirst = { settled: n, workerSpent: since(worker.pid), rabbitSpent: since(rabbitmqPid()), dbSpent: since(mariadbPid()) };
        return n > 0;
      }, 120000, 20);
      await waitFor('the drain', async () => (await settled()) >= args.payments, 600000, 200);
    } finally {
      const [workerMs, rabbitMs, dbMs] = [fromFirst.workerSpent(), fromFirst.rabbitSpent(), fromFirst.dbSpent()];
      const counted = args.payments - fromFirst.settled;
      const peakRssMb = worker.pid ? memoryOf(worker.pid)?.hwmMb : undefined;
      worker.kill('SIGTERM'); // a graceful exit also writes the CPU profile
      await exited;
      const [[span]] = (await pool.query('SELECT MIN(closed_at) AS a, MAX(closed_at) AS b FROM payments WHERE merchant_id = ?', [merchantId])) as unknown as [[{ a: Date; b: Date }]];
      const seconds = Math.max(0.001, (span.b.getTime() - span.a.getTime()) / 1000);
      const us = (ms: number | undefined) => (ms === undefined || counted <= 0 ? 'n/a' : `${Math.round((ms * 1000) / counted)} µs`);
      process.stdout.write(
        `${args.payments} payments settled in ${seconds.toFixed(2)} s = ${Math.round(args.payments / seconds)}/s by one worker (${path.relative(ROOT, args.build) || '.'}/dist); ` +
          `CPU per payment after the first settlement (${counted}): worker ${us(workerMs)}, RabbitMQ ${us(rabbitMs)}, MariaDB ${us(dbMs)}; worker peak RSS ${peakRssMb === undefined ? 'n/a' : `${Math.round(peakRssMb)} MB`}` +
          `${args.cpuProf ? `; CPU profile in ${args.cpuProf}` : ''}\n`,
      );
    }
  } finally {
    await bench.close();
    await pool.end();
    await deleteBenchTopology(prefix).catch(() => undefined);
    await dropBenchDatabase(db).catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`worker profile failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
