/**
 * Scenario 5: the batch job this service replaces, side by side with it, under the same traffic.
 *
 *  job:  a bench-only copy of payments (`job_payments`) with INDEX (status, expires_at), and 5
 *        "replicas" (one connection each) that fire at every wall-clock second (like a cron/Quartz
 *        "every second" trigger on each replica) and run, in a transaction,
 *        UPDATE job_payments SET status='CLOSED', closed_at=NOW(3), updated_at=NOW(3)
 *        WHERE status='PENDING' AND expires_at <= NOW(3) LIMIT 1000
 *  ours: the service's payments table (no index on status) and 2 workers (adapter none) settling
 *        the per-payment timers that the bench publishes with the service's scheduler.
 *
 * Both get the same other traffic: inserts of new PENDING payments (timeouts spread uniformly)
 * and signed-callback-like by-id updates marking random recent payments PAID, the way the
 * service applies a callback (SELECT ... FOR UPDATE by id, then UPDATE ... WHERE id = ? AND
 * status = 'PENDING', in one transaction). Then again with N pre-existing settled rows.
 */
import mysql from 'mysql2/promise';
import { checkAbort, cpuMsOf, distribution, log, sleep } from './common';
import type { Context } from './context';
import { BENCH_OWNER, BENCH_OWNER_PASSWORD, MARIADB_PORT, appEnvironment, benchPool, mariadbPid, rootConnection, stackUp } from './environment';
import { insertPayments, openSchedulerPool, workerCounter, type SchedulerPool } from './timers';

type Design = 'job' | 'job-status' | 'ours';

const TABLES: Record<Design, string> = { job: 'job_payments', 'job-status': 'job_payments_s', ours: 'payments' };

export interface LockErrors {
  deadlocks: number;
  lockWaitTimeouts: number;
}

export interface BatchPhase {
  design: Design;
  tableRowsBefore: number;
  durationSec: number;
  inserted: number;
  callbacksAttempted: number;
  callbacksPaid: number;
  callbacksSkipped: number;
  settled: number;
  unsettledDue: number;
  early: number;
  lateness: ReturnType<typeof distribution>;
  errors: { settle: LockErrors; callbacks: LockErrors; inserts: LockErrors };
  /** ours: compensator_db_lock_retries_total on the workers during the phase. */
  workerLockRetries: number;
  innodbDeadlocksGlobal: number;
  handlerReadsGlobal: number;
  handlerReadsGlobalPerSettled: number;
  handlerBreakdown: Record<string, number>;
  /** The job's own sessions only (exact): rows its UPDATEs examined. */
  jobHandlerReads?: number;
  jobHandlerReadsPerSettled?: number;
  jobRuns?: number;
  jobRowsUpdated?: number;
  jobRunMs?: ReturnType<typeof distribution>;
  dbCpuMs: number;
  dbCpuMsPerSettled: number;
}

export interface BatchCell {
  job: BatchPhase;
  /** The job on a table with INDEX (status) only (full mode). */
  jobStatus?: BatchPhase;
  ours: BatchPhase;
}

export interface BatchJobResults {
  index: string;
  indexStatusOnly: string;
  seedRows: number;
  seedSec: number;
  small: BatchCell;
  big: BatchCell;
}

function lockErrors(): LockErrors {
  return { deadlocks: 0, lockWaitTimeouts: 0 };
}

function count(e: LockErrors, err: unknown): boolean {
  const errno = (err as { errno?: number }).errno;
  if (errno === 1213) e.deadlocks++;
  else if (errno === 1205) e.lockWaitTimeouts++;
  else return false;
  return true;
}

async function globalStatus(like: string): Promise<Record<string, number>> {
  const conn = await rootConnection();
  try {
    const [rows] = await conn.query(`SHOW GLOBAL STATUS LIKE '${like}'`);
    return Object.fromEntries((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
  } finally {
    await conn.end();
  }
}

async function sessionHandlerReads(conn: mysql.Connection): Promise<number> {
  const [rows] = await conn.query("SHOW SESSION STATUS LIKE 'Handler_read%'");
  return (rows as Array<{ Value: string }>).reduce((a, r) => a + Number(r.Value), 0);
}

function sumReads(s: Record<string, number>): number {
  return Object.entries(s)
    .filter(([k]) => k.startsWith('Handler_read'))
    .reduce((a, [, v]) => a + v, 0);
}

async function runPhase(ctx: Context, design: Design, label: string, fast: SchedulerPool | undefined): Promise<BatchPhase> {
  const s = ctx.sizes.batchJob;
  const table = TABLES[design];
  const isJob = design !== 'ours';
  const merchantId = `bj_${design}_${label}_${ctx.runId}`;
  const pool = benchPool(ctx.db, 12);
  const errors = { settle: lockErrors(), callbacks: lockErrors(), inserts: lockErrors() };
  const live: Array<{ id: number; at: number }> = [];
  let inserted = 0;
  let callbacksAttempted = 0;
  let callbacksPaid = 0;
  let callbacksSkipped = 0;
  let inFlightCallbacks = 0;
  let traffic = true;
  let settling = true;

  const [[sizeRow]] = (await pool.query(`SELECT COUNT(*) AS n FROM ${table}`)) as unknown as [[{ n: number }]];
  const handlerBefore = await globalStatus('Handler_read%');
  const deadlocksBefore = (await globalStatus('Innodb_deadlocks')).Innodb_deadlocks ?? 0;
  const pid = mariadbPid();
  const cpuBefore = pid ? (cpuMsOf(pid) ?? NaN) : NaN;
  const retriesBefore = design === 'ours' ? await workerCounter(2, 'compensator_db_lock_retries_total') : 0;

  // -- the job's replicas (design job only)
  const jobConns: mysql.Connection[] = [];
  let jobRuns = 0;
  let jobRowsUpdated = 0;
  const jobRunMs: number[] = [];
  let jobReadsBefore = 0;
  const replicas: Array<Promise<void>> = [];
  if (isJob) {
    for (let i = 0; i < s.replicas; i++) {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: MARIADB_PORT, user: BENCH_OWNER, password: BENCH_OWNER_PASSWORD, database: ctx.db, timezone: 'Z' });
      jobConns.push(c);
      jobReadsBefore += await sessionHandlerReads(c);
    }
    for (const c of jobConns) {
      replicas.push(
        (async () => {
          while (settling) {
            // next wall-clock second, as a cron-style "every second" trigger fires on every replica
            await sleep(1000 - (Date.now() % 1000) + Math.floor(Math.random() * 3));
            if (!settling) return;
            const t0 = Date.now();
            try {
              await c.beginTransaction();
              const [res] = await c.query(
                `UPDATE ${table} SET status = 'CLOSED', closed_at = NOW(3), updated_at = NOW(3) WHERE status = 'PENDING' AND expires_at <= NOW(3) LIMIT ${s.limit}`,
              );
              await c.commit();
              jobRowsUpdated += (res as { affectedRows: number }).affectedRows;
            } catch (err) {
              await c.rollback().catch(() => undefined);
              if (!count(errors.settle, err)) throw err;
            }
            jobRuns++;
            jobRunMs.push(Date.now() - t0);
          }
        })(),
      );
    }
  }

  // -- inserts: every 100 ms, the rows due by then; ours also publishes their timers
  const inserter = (async () => {
    const t0 = Date.now();
    let tick = 0;
    while (traffic) {
      checkAbort();
      tick++;
      const due = Math.round((s.insertRate * (Date.now() - t0)) / 1000) - inserted;
      if (due > 0) {
        const now = Date.now();
        const timeouts = Array.from({ length: due }, () => s.minTimeout + Math.floor(Math.random() * (s.maxTimeout - s.minTimeout + 1)));
        try {
          const ids = await insertPayments(pool, { merchantId, count: due, table, orderOffset: inserted, expiresAt: (i) => now + (timeouts[i] as number) * 1000, concurrency: 1 });
          inserted += due;
          for (const id of ids) live.push({ id, at: now });
          if (fast) await fast.publish(ids.map((paymentId, i) => ({ paymentId, deadline: now + (timeouts[i] as number) * 1000 })));
        } catch (err) {
          if (!count(errors.inserts, err)) throw err;
          inserted += due; // order ids move on either way
        }
      }
      const next = t0 + tick * 100;
      if (next > Date.now()) await sleep(next - Date.now());
    }
  })();

  // -- callbacks: random recent payments marked PAID by id, the way the service applies one
  async function callback(id: number): Promise<void> {
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      const [rows] = await conn.query(`SELECT id, status FROM ${table} WHERE id = ? FOR UPDATE`, [id]);
      const row = (rows as Array<{ status: string }>)[0];
      if (row?.status === 'PENDING') {
        const [res] = await conn.query(`UPDATE ${table} SET status = 'PAID', paid_at = NOW(3), updated_at = NOW(3), transaction_id = ? WHERE id = ? AND status = 'PENDING'`, [`tx-${id}`, id]);
        if ((res as { affectedRows: number }).affectedRows === 1) callbacksPaid++;
      }
      await conn.commit();
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      if (!count(errors.callbacks, err)) throw err;
    } finally {
      conn.release();
    }
  }
  const callbackTasks = new Set<Promise<void>>();
  const caller = (async () => {
    const t0 = Date.now();
    let tick = 0;
    let sent = 0;
    while (traffic) {
      tick++;
      const cutoff = Date.now() - s.maxTimeout * 1000;
      while (live.length > 0 && (live[0] as { at: number }).at < cutoff) live.shift();
      const due = Math.round((s.callbackRate * (Date.now() - t0)) / 1000) - sent;
      for (let k = 0; k < due; k++) {
        sent++;
        if (live.length === 0) continue;
        if (inFlightCallbacks >= 40) {
          callbacksSkipped++;
          continue;
        }
        const pick = live[Math.floor(Math.random() * live.length)] as { id: number };
        callbacksAttempted++;
        inFlightCallbacks++;
        const p = callback(pick.id).finally(() => {
          inFlightCallbacks--;
          callbackTasks.delete(p);
        });
        callbackTasks.add(p);
      }
      const next = t0 + tick * 100;
      if (next > Date.now()) await sleep(next - Date.now());
    }
  })();

  const started = Date.now();
  try {
    await sleep(s.durationSec * 1000);
    traffic = false;
    await inserter;
    await caller;
    await Promise.all([...callbackTasks]);
    // the last payments fall due up to maxTimeout later; let both designs settle them
    await sleep((s.maxTimeout + 1.5) * 1000);
  } finally {
    traffic = false;
    settling = false;
  }
  await Promise.allSettled(replicas);
  const durationSec = (Date.now() - started) / 1000;

  let jobReads: number | undefined;
  if (isJob) {
    let after = 0;
    for (const c of jobConns) after += await sessionHandlerReads(c);
    jobReads = after - jobReadsBefore;
    await Promise.all(jobConns.map((c) => c.end()));
  }
  const handlerAfter = await globalStatus('Handler_read%');
  const deadlocksAfter = (await globalStatus('Innodb_deadlocks')).Innodb_deadlocks ?? 0;
  const cpuAfter = pid ? (cpuMsOf(pid) ?? NaN) : NaN;
  const workerLockRetries = design === 'ours' ? (await workerCounter(2, 'compensator_db_lock_retries_total')) - retriesBefore : 0;

  const [rows] = await pool.query(`SELECT status, expires_at, closed_at FROM ${table} WHERE merchant_id = ?`, [merchantId]);
  await pool.end();
  const list = rows as Array<{ status: string; expires_at: Date; closed_at: Date | null }>;
  const closed = list.filter((r) => r.status === 'CLOSED' && r.closed_at);
  const lateMs = closed.map((r) => (r.closed_at as Date).getTime() - r.expires_at.getTime());
  const now = Date.now();
  const handlerBreakdown = Object.fromEntries(Object.entries(handlerAfter).map(([k, v]) => [k, v - (handlerBefore[k] ?? 0)]));
  const reads = sumReads(handlerAfter) - sumReads(handlerBefore);
  const settled = closed.length;
  const phase: BatchPhase = {
    design,
    tableRowsBefore: Number(sizeRow.n),
    durationSec,
    inserted,
    callbacksAttempted,
    callbacksPaid,
    callbacksSkipped,
    settled,
    unsettledDue: list.filter((r) => r.status === 'PENDING' && r.expires_at.getTime() < now - 2000).length,
    early: lateMs.filter((l) => l < 0).length,
    lateness: distribution(lateMs.map((l) => l / 1000)),
    errors,
    workerLockRetries,
    innodbDeadlocksGlobal: deadlocksAfter - deadlocksBefore,
    handlerReadsGlobal: reads,
    handlerReadsGlobalPerSettled: reads / Math.max(1, settled),
    handlerBreakdown,
    jobHandlerReads: jobReads,
    jobHandlerReadsPerSettled: jobReads !== undefined ? jobReads / Math.max(1, settled) : undefined,
    jobRuns: isJob ? jobRuns : undefined,
    jobRowsUpdated: isJob ? jobRowsUpdated : undefined,
    jobRunMs: isJob ? distribution(jobRunMs) : undefined,
    dbCpuMs: cpuAfter - cpuBefore,
    dbCpuMsPerSettled: (cpuAfter - cpuBefore) / Math.max(1, settled),
  };
  const e = phase.errors;
  log(
    `batch-job ${label} ${design}: table ${phase.tableRowsBefore} rows, settled ${settled} (${phase.unsettledDue} due left), lateness p50 ${phase.lateness.p50.toFixed(3)} s p99 ${phase.lateness.p99.toFixed(3)} s max ${phase.lateness.max.toFixed(3)} s, ` +
      `deadlocks settle/callback/insert ${e.settle.deadlocks}/${e.callbacks.deadlocks}/${e.inserts.deadlocks}, lock waits ${e.settle.lockWaitTimeouts}/${e.callbacks.lockWaitTimeouts}/${e.inserts.lockWaitTimeouts}, ` +
      `worker retries ${workerLockRetries}, handler reads ${reads} (${phase.handlerReadsGlobalPerSettled.toFixed(1)}/settled), db cpu ${Math.round(phase.dbCpuMs)} ms`,
  );
  return phase;
}

/** Settled rows so the table is big: a seq-engine INSERT ... SELECT in chunks. */
async function seed(ctx: Context, table: string, rows: number): Promise<void> {
  const pool = benchPool(ctx.db, 1);
  try {
    const chunk = 200_000;
    for (let from = 1; from <= rows; from += chunk) {
      checkAbort();
      const to = Math.min(rows, from + chunk - 1);
      await pool.query(
        `INSERT INTO ${table} (public_id, merchant_id, order_id, amount, currency, channel, status, request_hash, expires_at, created_at, updated_at, closed_at)
         SELECT CONCAT('pay_seed', LPAD(seq, 14, '0')), 'seed', CONCAT('o-', seq), 1999, 'CNY', 'wechat', 'CLOSED', REPEAT('x', 64),
                NOW(3) - INTERVAL 1 DAY, NOW(3) - INTERVAL 1 DAY, NOW(3) - INTERVAL 1 DAY, NOW(3) - INTERVAL 1 DAY
         FROM seq_${from}_to_${to}`,
      );
    }
    await pool.query(`ANALYZE TABLE ${table}`);
  } finally {
    await pool.end();
  }
}

export async function runBatchJob(ctx: Context): Promise<BatchJobResults> {
  const env = appEnvironment(ctx.configs.batchJob, ctx.db);
  // A clean start: both tables empty (whatever workers still run are idle), then 2 workers on
  // the run's own prefix.
  const pool = benchPool(ctx.db, 2);
  try {
    for (const t of ['payment_events', 'outbox', 'parked_items', 'payments']) await pool.query(`TRUNCATE TABLE ${t}`);
    await pool.query('DROP TABLE IF EXISTS job_payments');
    await pool.query('CREATE TABLE job_payments LIKE payments');
    await pool.query('ALTER TABLE job_payments ADD INDEX ix_job_status_expires (status, expires_at)');
    await pool.query('DROP TABLE IF EXISTS job_payments_s');
    if (!ctx.quick) {
      await pool.query('CREATE TABLE job_payments_s LIKE payments');
      await pool.query('ALTER TABLE job_payments_s ADD INDEX ix_job_status (status)');
    }
  } finally {
    await pool.end();
  }
  await stackUp(0, 2, env);
  ctx.memory.setScenario(undefined);
  const fast = await openSchedulerPool(ctx.configs.batchJob, ctx.db, 2);
  try {
    const cell = async (label: string): Promise<BatchCell> => {
      const job = await runPhase(ctx, 'job', label, undefined);
      const jobStatus = ctx.quick ? undefined : await runPhase(ctx, 'job-status', label, undefined);
      const ours = await runPhase(ctx, 'ours', label, fast);
      return { job, jobStatus, ours };
    };
    const small = await cell('small');
    const rows = ctx.sizes.batchJob.seedRows;
    const t0 = Date.now();
    const tables = ctx.quick ? ['job_payments', 'payments'] : ['job_payments', 'job_payments_s', 'payments'];
    log(`batch-job: seeding ${rows} settled rows into ${tables.join(', ')}`);
    for (const t of tables) await seed(ctx, t, rows);
    const seedSec = (Date.now() - t0) / 1000;
    log(`batch-job: seeded in ${seedSec.toFixed(1)} s`);
    const big = await cell('big');
    return {
      index: 'job_payments: the payments columns and indexes plus INDEX (status, expires_at)',
      indexStatusOnly: 'job_payments_s: the payments columns and indexes plus INDEX (status) only (the index that docs/design.md, "Settling by primary key", measured)',
      seedRows: rows,
      seedSec,
      small,
      big,
    };
  } finally {
    await fast.close();
  }
}
