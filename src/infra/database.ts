import knex, { type Knex } from 'knex';
import type { Config } from '../config/config-schema';
import type { ShutdownRegistry } from '../shared/shutdown';
import { migrationSource } from '../db/migration-source';

export type Database = Knex;

type Session = { query: (sql: string, cb: (err: Error | null, rows?: Array<Record<string, unknown>>) => void) => void };

/** Per pool: the auto-increment step every session reported, or 'no' (see consecutiveIdStep). */
const sessionIdSteps = new WeakMap<Database, Set<number | 'no'>>();

/**
 * The step between the ids one multi-row INSERT gets, if the server promises them consecutive:
 * InnoDB's "traditional" (0) and "consecutive" (1) auto-increment lock modes do (MariaDB's
 * default is 1); "interleaved" (2, MySQL 8's default) does not. Every new session reports its
 * mode and auto_increment_increment; one that disagrees (a failover, a SET GLOBAL at runtime)
 * turns this off for the pool for good. Undefined: read the ids back.
 */
export function consecutiveIdStep(db: Database): number | undefined {
  const steps = sessionIdSteps.get(db);
  if (!steps || steps.size !== 1) return undefined;
  const [step] = steps;
  return typeof step === 'number' ? step : undefined;
}

/**
 * Creates the knex pool and registers its close. Times are UTC with milliseconds.
 * `sessionSetup` runs on every new connection first (tests use it to vary session variables).
 */
export function createDatabase(deps: { config: Config; shutdown?: ShutdownRegistry; poolMax?: number; sessionSetup?: string }): Database {
  const idSteps = new Set<number | 'no'>();
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
      afterCreate: (conn: Session, done: (err: Error | null, conn: unknown) => void) => {
        const statements = [...(deps.sessionSetup ? [deps.sessionSetup] : []), "SET time_zone = '+00:00'"];
        const next = (err: Error | null): void => {
          if (err) return done(err, conn);
          const sql = statements.shift();
          if (sql) return conn.query(sql, next);
          conn.query('SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step', (probeErr, rows) => {
            const row = rows?.[0];
            idSteps.add(!probeErr && row && Number(row.mode) <= 1 ? Number(row.step) : 'no');
            done(null, conn);
          });
        };
        next(null);
      },
    },
    acquireConnectionTimeout: 10000,
  });
  sessionIdSteps.set(db, idSteps);
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
