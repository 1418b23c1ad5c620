import knex, { type Knex } from 'knex';
import type { Config } from '../config/config-schema';
import type { ShutdownRegistry } from '../shared/shutdown';
import { migrationSource } from '../db/migration-source';

export type Database = Knex;

/** Creates the knex pool and registers its close. Times are UTC with milliseconds. */
export function createDatabase(deps: { config: Config; shutdown?: ShutdownRegistry; poolMax?: number }): Database {
  const db = knex({
    client: 'mysql2',
    connection: {
      uri: deps.config.database.url,
      timezone: 'Z',
      supportBigNumbers: true,
      dateStrings: false,
    } as Knex.MySql2ConnectionConfig,
    pool: {
      min: 0,
      max: deps.poolMax ?? deps.config.database.poolMax,
      afterCreate: (conn: { query: (sql: string, cb: (err: Error | null) => void) => void }, done: (err: Error | null, conn: unknown) => void) => {
        conn.query("SET time_zone = '+00:00'", (err) => done(err, conn));
      },
    },
    acquireConnectionTimeout: 10000,
  });
  deps.shutdown?.register('database pool', () => db.destroy());
  return db;
}

export async function migrateLatest(db: Database): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

const RETRYABLE_MYSQL_ERRORS = new Set([1213 /* deadlock */, 1205 /* lock wait timeout */]);

export function isRetryableLockError(err: unknown): boolean {
  return RETRYABLE_MYSQL_ERRORS.has((err as { errno?: number }).errno ?? -1);
}

/**
 * Runs a transaction, retrying deadlocks and lock-wait timeouts a bounded number of times with
 * jitter: DESIGN section 3 treats both as normal outcomes.
 */
export async function withLockRetry<T>(
  db: Database,
  retries: number,
  work: (trx: Knex.Transaction) => Promise<T>,
  onRetry?: (err: unknown, attempt: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction(work);
    } catch (err) {
      if (!isRetryableLockError(err) || attempt >= retries) throw err;
      onRetry?.(err, attempt + 1);
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * 2 ** attempt));
    }
  }
}
