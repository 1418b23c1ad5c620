import knex, { type Knex } from 'knex';
import type { Config } from '../config/config-schema';
import type { ShutdownRegistry } from '../shared/shutdown';

export type Database = Knex;

type Session = { query: (sql: string, cb: (err: Error | null, rows?: Array<Record<string, unknown>>) => void) => void };

/** Per pool: the auto-increment step every session reported, or 'no' (see consecutiveIdStep). */
const sessionIdSteps = new WeakMap<Database, Set<number | 'no'>>();
/** The pools that allow multi-statement queries: only these may run transactionInRounds. */
const multiStatementPools = new WeakSet<Database>();

/**
 * Every session's SQL mode, pinned: strict, and without NO_BACKSLASH_ESCAPES, which the driver's
 * escaping assumes absent (with it, a backslash in a value would end the string early).
 */
const SQL_MODE = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

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
 * `multipleStatements` is for the one pool transactionInRounds uses: every other pool refuses a
 * stacked statement outright, whatever reaches it. `url` replaces the service's own user (the
 * migrations' owner, src/db/migration-source.ts).
 */
export function createDatabase(deps: { config: Config; shutdown?: ShutdownRegistry; poolMax?: number; sessionSetup?: string; multipleStatements?: boolean; url?: string }): Database {
  const idSteps = new Set<number | 'no'>();
  const db = knex({
    client: 'mysql2',
    connection: {
      uri: deps.url ?? deps.config.database.url,
      timezone: 'Z',
      supportBigNumbers: true,
      dateStrings: false,
      // A charset name, not a collation: knex also writes it into CREATE TABLE ... DEFAULT CHARACTER SET.
      charset: 'utf8mb4',
      // Only the rounds pool. Every statement is built by knex with bound values, which the
      // driver escapes, so no text from a request ever reaches the server as SQL.
      multipleStatements: deps.multipleStatements ?? false,
    } as Knex.MySql2ConnectionConfig,
    // A failed query's error names the SQL, never the bound values (keys' hashes, sealed secrets).
    compileSqlOnError: false,
    pool: {
      min: 0,
      max: deps.poolMax ?? deps.config.database.poolMax,
      afterCreate: (conn: Session, done: (err: Error | null, conn: unknown) => void) => {
        const statements = [...(deps.sessionSetup ? [deps.sessionSetup] : []), "SET time_zone = '+00:00'", `SET SESSION sql_mode = '${SQL_MODE}'`];
        const next = (err: Error | null): void => {
          if (err) return done(err, conn);
          const sql = statements.shift();
          if (sql) return conn.query(sql, next);
          conn.query('SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step, @@character_set_client AS client, @@character_set_connection AS connection', (probeErr, rows) => {
            const row = rows?.[0];
            // A session that does not speak utf8mb4 would mangle (or mis-escape) what it is sent.
            if (!probeErr && (row?.client !== 'utf8mb4' || row?.connection !== 'utf8mb4')) {
              return done(new Error(`the database session's character set is ${String(row?.client)}/${String(row?.connection)}, not utf8mb4`), conn);
            }
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
  if (deps.multipleStatements) multiStatementPools.add(db);
  deps.shutdown?.register('database pool', () => db.destroy());
  return db;
}

/** What a round sends: knex queries, compiled to SQL and bound values, never run by knex. */
export type RoundQuery = Knex.QueryBuilder | Knex.Raw;
/** Sends queries as one round trip and answers the driver's result for each, in order. */
export type SendRound = ((queries: RoundQuery[], options?: { commit: true }) => Promise<unknown[]>) & {
  /** The pool whose connection runs the rounds (its sessions' settings, e.g. consecutiveIdStep). */
  readonly pool: Database;
};

type PooledConnection = {
  query: (options: { sql: string; values: unknown[] }, cb: (err: Error | null, results?: unknown) => void) => void;
  destroy: () => void;
};

/**
 * A short transaction in as few round trips as the work allows: each `send` reaches the server
 * as one multi-statement query, the first also opens the transaction and the one with `commit`
 * ends it. A knex transaction sends BEGIN, each statement and COMMIT one by one; on the create
 * path that was 5 round trips per batch, each a socket write and read on both ends and more time
 * holding the rows' locks. The server stops a query at its first failing statement; any error
 * rolls the transaction back and is thrown, like knex's (errno included). Results are the
 * driver's own (an INSERT's is a header with insertId), not knex's. An error thrown by `work`
 * after its commit round leaves the transaction committed.
 */
export async function transactionInRounds<T>(db: Database, work: (send: SendRound) => Promise<T>): Promise<T> {
  if (!multiStatementPools.has(db)) throw new Error('transactionInRounds needs the pool created with multipleStatements');
  const conn = (await db.client.acquireConnection()) as PooledConnection;
  const query = (sql: string, values: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => conn.query({ sql, values }, (err, results) => (err ? reject(err) : resolve(results))));
  let open = false;
  let committed = false;
  const send = (async (queries: RoundQuery[], options?: { commit: true }) => {
    if (committed) throw new Error('transactionInRounds: the transaction has already committed');
    const compiled = queries.map((q) => q.toSQL().toNative());
    // Results are matched to queries by position: one statement per query, none empty.
    if (compiled.some((c) => !c.sql.trim() || c.sql.includes(';'))) throw new Error('transactionInRounds: each query must be one non-empty statement');
    const statements = [...(open ? [] : ['START TRANSACTION']), ...compiled.map((c) => c.sql), ...(options?.commit ? ['COMMIT'] : [])];
    const skip = open ? 0 : 1;
    open = true;
    const results = await query(statements.join(';\n'), compiled.flatMap((c) => c.bindings as unknown[]));
    if (options?.commit) committed = true;
    // The driver answers one statement with its result and several with a list of them.
    const all = statements.length === 1 ? [results] : (results as unknown[]);
    if (all.length !== statements.length) throw new Error(`transactionInRounds: ${statements.length} statements gave ${all.length} results`);
    return all.slice(skip, skip + queries.length);
  }) as SendRound;
  Object.defineProperty(send, 'pool', { value: db });
  try {
    const value = await work(send);
    if (!committed) throw new Error('transactionInRounds: the work returned without a send that commits');
    return value;
  } catch (err) {
    // A connection that cannot roll back is closed, so the pool never hands out an open transaction.
    if (open && !committed) await query('ROLLBACK', []).catch(() => conn.destroy());
    throw err;
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/**
 * Payment ids as SQL text for `IN (...)`, ascending and without repeats: the one lock order every
 * writer uses. Each must be a positive safe integer, or this throws, so the text can only be digits
 * and commas. The hot statements inline ids instead of binding one `?` each: knex's and the
 * driver's per-value work was a sixth of a worker's CPU per settlement (npm run bench:worker).
 */
export function sqlIdList(ids: Iterable<number>): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  for (const id of sorted) {
    if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`sqlIdList: ${String(id)} is not a row id`);
  }
  if (sorted.length === 0) throw new Error('sqlIdList: no ids');
  return sorted.join(',');
}

/** The first id an INSERT's result reports (a multi-row INSERT: its first row's). */
export function insertIdOf(result: unknown): number {
  const id = (result as { insertId?: unknown }).insertId;
  if (typeof id !== 'number' && typeof id !== 'string') throw new Error('insertIdOf: the result has no insertId');
  return Number(id);
}

/**
 * What a server error means for the one who retries, the one place that reads MySQL error
 * numbers: a lock conflict passes if tried again, a duplicate key is an answer, a bad value
 * never passes (the same row fails again), anything else is not the database's verdict.
 */
export type DatabaseErrorKind = 'lock_conflict' | 'duplicate' | 'bad_value' | 'other';
const ERRNO_KINDS = new Map<number, DatabaseErrorKind>([
  [1213, 'lock_conflict'], // deadlock
  [1205, 'lock_conflict'], // lock wait timeout
  [1062, 'duplicate'],
  [1406, 'bad_value'], // data too long
  [1292, 'bad_value'], // truncated incorrect value
  [1366, 'bad_value'], // incorrect value for a column
  [1048, 'bad_value'], // NOT NULL column
  [1264, 'bad_value'], // out of range
  [4025, 'bad_value'], // CHECK constraint (MariaDB)
]);

export function databaseErrorKind(err: unknown): DatabaseErrorKind {
  return ERRNO_KINDS.get((err as { errno?: number } | undefined)?.errno ?? -1) ?? 'other';
}

export function isRetryableLockError(err: unknown): boolean {
  return databaseErrorKind(err) === 'lock_conflict';
}

export function isDuplicateKey(err: unknown): boolean {
  return databaseErrorKind(err) === 'duplicate';
}

/**
 * Runs a transaction, retrying deadlocks and lock-wait timeouts a bounded number of times with
 * jitter: both are normal outcomes (docs/design.md, "Settling by primary key").
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
