/**
 * A worker process of the BullMQ peer (scripts/bench/peer-bullmq.ts starts 1 or 2): a BullMQ
 * Worker on one queue that settles each job `{ id }` as our workers settle a due timer with
 * adapter none: one transaction with the conditional UPDATE by primary key and, when it changed
 * the row, the event row. Prints "ready" once it consumes, then "settled N" (its running total)
 * at most every 100 ms, which the bench reads instead of polling the database or Redis (either
 * would add CPU to the processes being measured).
 *
 * Environment: PEER_REDIS_PORT, PEER_PREFIX (BullMQ key prefix), PEER_QUEUE, PEER_CONCURRENCY,
 * PEER_DATABASE_URL (the bench's app user: rows only), PEER_DB_POOL, PEER_TABLE, PEER_EVENTS_TABLE.
 */
import { Worker, type Job } from 'bullmq';
import mysql, { type ResultSetHeader } from 'mysql2/promise';

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
}

function tableName(name: string): string {
  const v = env(name);
  if (!/^[a-z_]+$/.test(v)) throw new Error(`${name}: bad table name ${v}`);
  return v;
}

async function main(): Promise<void> {
  const table = tableName('PEER_TABLE');
  const events = tableName('PEER_EVENTS_TABLE');
  const pool = mysql.createPool({ uri: env('PEER_DATABASE_URL'), connectionLimit: Number(env('PEER_DB_POOL')), timezone: 'Z' });
  let settled = 0;
  let failed = 0;

  // The statements of our settlement (payments-repository transition + appendEvents), one payment per transaction.
  async function settle(id: number): Promise<void> {
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      const at = new Date();
      const [update] = await conn.query(`UPDATE ${table} SET status = 'CLOSED', updated_at = ?, closed_at = ? WHERE id = ? AND status = 'PENDING'`, [at, at, id]);
      const changed = (update as ResultSetHeader).affectedRows === 1;
      if (changed) {
        await conn.query(`INSERT INTO ${events} (payment_id, from_status, to_status, cause, at, details) VALUES (?, 'PENDING', 'CLOSED', 'timeout', ?, NULL)`, [id, at]);
      }
      await conn.commit();
      if (changed) settled++;
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  }

  const worker = new Worker(env('PEER_QUEUE'), (job: Job<{ id: number }>) => settle(Number(job.data.id)), {
    connection: { host: '127.0.0.1', port: Number(env('PEER_REDIS_PORT')), maxRetriesPerRequest: null },
    prefix: env('PEER_PREFIX'),
    concurrency: Number(env('PEER_CONCURRENCY')),
  });
  worker.on('failed', (_job, err) => {
    failed++;
    if (failed <= 5) process.stderr.write(`job failed: ${err.message}\n`);
  });
  worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  process.stdout.write('ready\n');

  let reported = -1;
  const reporter = setInterval(() => {
    if (settled === reported) return;
    reported = settled;
    process.stdout.write(`settled ${settled} failed ${failed}\n`);
  }, 100);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(reporter);
    // The bench's stopChild sends SIGKILL after its grace period: this close is bounded by it.
    await worker.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`peer worker failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
