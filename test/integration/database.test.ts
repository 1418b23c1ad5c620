import type { Knex } from 'knex';
import { createMigrationDatabase } from '../../src/db/migration-source';
import { createDatabase, insertIdOf, transactionInRounds } from '../../src/infra/database';
import { newPaymentRow } from '../helpers/fixtures';
import { testConfig } from '../helpers/test-app';

// transactionInRounds sends each round as one multi-statement query: results come back per
// query, a failure anywhere rolls the whole transaction back, and the pooled connection is
// clean (or replaced) for the next user.
describe('database: a transaction in rounds', () => {
  const config = testConfig();
  const merchant = `rounds_${process.pid}_${Date.now()}`;
  let db: Knex;
  let other: Knex;

  // One connection: every test reuses the session the one before it left behind.
  beforeAll(() => {
    db = createDatabase({ config, multipleStatements: true, poolMax: 1 });
    other = createDatabase({ config, multipleStatements: true, poolMax: 1 });
  });
  afterAll(async () => {
    await db('payments').where({ merchant_id: merchant }).delete();
    await db.destroy();
    await other.destroy();
  });

  const payment = (orderId: string) => ({ ...newPaymentRow(merchant, orderId), updated_at: new Date() });
  /** This merchant's orders that start with `prefix`, in insert order. */
  const ordersOf = async (prefix: string): Promise<string[]> =>
    (await db('payments').where({ merchant_id: merchant }).andWhere('order_id', 'like', `${prefix}%`).orderBy('id').pluck('order_id')) as string[];
  const inTransaction = async (pool: Knex = db): Promise<number> => Number(((await pool.raw('SELECT @@in_transaction AS t')) as [Array<{ t: number }>])[0][0]?.t);

  it('when two rounds commit, then each query gets its own result in order and a later round can use an earlier one', async () => {
    const [a, b] = [payment('two-a'), payment('two-b')];
    const readBack = await transactionInRounds(db, async (send) => {
      const [inserted, selected] = await send([db('payments').insert(a), db('payments').select('public_id').where({ public_id: a.public_id })]);
      const id = insertIdOf(inserted);
      expect(selected).toEqual([{ public_id: a.public_id }]);
      const [second, byId] = await send([db('payments').insert(b), db('payments').select('order_id').where({ id })], { commit: true });
      expect(insertIdOf(second)).toBeGreaterThan(id);
      return byId;
    });
    expect(readBack).toEqual([{ order_id: 'two-a' }]);
    expect(await ordersOf('two-')).toEqual(['two-a', 'two-b']);
    expect(await inTransaction()).toBe(0);
  });

  it('when a statement of the committing round fails, then the error keeps its errno and nothing of the transaction stays', async () => {
    await db('payments').insert(payment('dup-taken'));
    const error = await transactionInRounds(db, async (send) => {
      await send([db('payments').insert(payment('dup-1'))]);
      // A duplicate (merchant, order) stops the round before its COMMIT.
      await send([db('payments').insert(payment('dup-2')), db('payments').insert(payment('dup-taken'))], { commit: true });
    }).catch((err: unknown) => err);
    expect((error as { errno?: number }).errno).toBe(1062);
    expect(await ordersOf('dup-')).toEqual(['dup-taken']);
    expect(await inTransaction()).toBe(0);
  });

  it('when a round waits too long for a row lock, then the lock-wait timeout (1205) comes back and the earlier round is undone too', async () => {
    // 1205 undoes only the statement in InnoDB: the rollback of the rest is ours.
    const impatient = createDatabase({ config, multipleStatements: true, poolMax: 1, sessionSetup: 'SET SESSION innodb_lock_wait_timeout = 1' });
    const locked = payment('lock-held');
    await db('payments').insert(locked);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const isHolding = new Promise<void>((resolve) => (holding = resolve));
    const blocker = other.transaction(async (trx) => {
      await trx('payments').where({ public_id: locked.public_id }).forUpdate();
      holding();
      await held;
    });
    try {
      await isHolding;
      const error = await transactionInRounds(impatient, async (send) => {
        await send([impatient('payments').insert(payment('lock-dropped'))]);
        await send([impatient('payments').where({ public_id: locked.public_id }).update({ amount: 1 })], { commit: true });
      }).catch((err: unknown) => err);
      expect((error as { errno?: number }).errno).toBe(1205);
      expect(await inTransaction(impatient)).toBe(0);
    } finally {
      release();
      await blocker;
      await impatient.destroy();
    }
    expect(await ordersOf('lock-')).toEqual(['lock-held']);
  });

  it('when the connection dies between rounds, then the error comes back, nothing stays, and the pool hands out a working connection', async () => {
    const error = await transactionInRounds(db, async (send) => {
      const [, session] = (await send([db('payments').insert(payment('killed-1')), db.raw('SELECT CONNECTION_ID() AS id')])) as [unknown, Array<{ id: number }>];
      await other.raw('KILL ?', [session[0]!.id]);
      await send([db('payments').insert(payment('killed-2'))], { commit: true });
    }).catch((err: unknown) => err);
    // The driver words it by timing (lost mid-query, socket ended, closed before the round): any
    // error will do, where a committed transaction would give undefined.
    expect(error).toHaveProperty('message');
    expect(await ordersOf('killed-')).toEqual([]);
    await transactionInRounds(db, (send) => send([db('payments').insert(payment('after-kill'))], { commit: true }));
    expect(await ordersOf('after-kill')).toEqual(['after-kill']);
  });

  it('when the work throws between rounds, then the first round is rolled back', async () => {
    await expect(
      transactionInRounds(db, async (send) => {
        await send([db('payments').insert(payment('throw-1'))]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await ordersOf('throw-')).toEqual([]);
    expect(await inTransaction()).toBe(0);
  });

  it('when the work returns without a round that commits, then it fails and nothing stays', async () => {
    await expect(transactionInRounds(db, async (send) => void (await send([db('payments').insert(payment('open-1'))])))).rejects.toThrow(/without a send that commits/);
    expect(await ordersOf('open-')).toEqual([]);
    expect(await inTransaction()).toBe(0);
  });

  it('when the work throws after its commit round, then the error comes back and the commit stands', async () => {
    await expect(
      transactionInRounds(db, async (send) => {
        await send([db('payments').insert(payment('late-1'))], { commit: true });
        throw new Error('after commit');
      }),
    ).rejects.toThrow('after commit');
    expect(await ordersOf('late-')).toEqual(['late-1']);
  });

  it('when a round follows the commit, or a query holds two statements, then it is refused', async () => {
    await expect(
      transactionInRounds(db, async (send) => {
        await send([db('payments').insert(payment('refused-1'))], { commit: true });
        await send([db('payments').insert(payment('refused-2'))]);
      }),
    ).rejects.toThrow(/already committed/);
    await expect(transactionInRounds(db, (send) => send([db.raw('SELECT 1; SELECT 2')], { commit: true }))).rejects.toThrow(/one non-empty statement/);
    expect(await ordersOf('refused-')).toEqual(['refused-1']);
    expect(await inTransaction()).toBe(0);
  });
});

describe('the pools\' session settings', () => {
  const config = testConfig();
  let plain: Knex;
  let rounds: Knex;
  beforeAll(() => {
    plain = createDatabase({ config, poolMax: 1 });
    rounds = createDatabase({ config, poolMax: 1, multipleStatements: true });
  });
  afterAll(async () => {
    await plain.destroy();
    await rounds.destroy();
  });

  it('when a query stacks a second statement on the ordinary pool, then the server refuses it, and transactionInRounds refuses that pool', async () => {
    await expect(plain.raw('SELECT 1; SELECT 2')).rejects.toMatchObject({ code: 'ER_PARSE_ERROR' });
    await expect(transactionInRounds(plain, async (send) => send([plain.raw('SELECT 1')], { commit: true }))).rejects.toThrow(/multipleStatements/);
  });

  it('when a value carries SQL, then it is stored as text, on either pool', async () => {
    const hostile = "x'; DROP TABLE payments; -- \\' \" `";
    const [row] = (await plain.raw('SELECT ? AS v', [hostile])) as unknown as [Array<{ v: string }>];
    expect(row[0]?.v).toBe(hostile);
    const [res] = await transactionInRounds(rounds, async (send) => send([rounds.raw('SELECT ? AS v', [hostile])], { commit: true }));
    expect((res as Array<{ v: string }>)[0]?.v).toBe(hostile);
  });

  it('when a session starts, then its sql_mode is pinned without NO_BACKSLASH_ESCAPES and it speaks utf8mb4', async () => {
    for (const pool of [plain, rounds]) {
      const [rows] = (await pool.raw('SELECT @@SESSION.sql_mode AS mode, @@character_set_client AS client, @@character_set_connection AS conn')) as unknown as [Array<{ mode: string; client: string; conn: string }>];
      expect(rows[0]?.mode).toBe('STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION');
      expect([rows[0]?.client, rows[0]?.conn]).toEqual(['utf8mb4', 'utf8mb4']);
    }
  });

  it('when a query fails, then its error names the SQL but no bound value', async () => {
    const secret = 'sealed-secret-that-must-not-be-logged';
    const err = (await plain('no_such_table').where({ v: secret }).select('*').catch((e: Error) => e)) as Error;
    expect(err.message).not.toContain(secret);
  });
});

// The service's user may only read and write rows; the schema belongs to the migrations' user
// (DATABASE_URL and MIGRATION_DATABASE_URL, both provisioned by scripts/stack.sh).
describe('database users: least privilege', () => {
  const config = testConfig();
  let runtime: Knex;
  let owner: Knex;
  beforeAll(() => {
    runtime = createDatabase({ config, poolMax: 1 });
    owner = createMigrationDatabase(config);
  });
  afterAll(async () => {
    await owner.raw('DROP TABLE IF EXISTS least_privilege_probe');
    await runtime.destroy();
    await owner.destroy();
  });

  it('the two URLs name different users', () => {
    expect(new URL(config.database.url).username).not.toBe(new URL(config.database.migrationUrl as string).username);
  });

  it.each([
    ['DROP TABLE', 'DROP TABLE payments'],
    ['ALTER TABLE', 'ALTER TABLE payments ADD COLUMN probe INT'],
    ['CREATE TABLE', 'CREATE TABLE least_privilege_probe (id INT)'],
    ['TRUNCATE', 'TRUNCATE TABLE payment_events'],
    ['CREATE INDEX', 'CREATE INDEX ix_probe ON payments (created_at)'],
    ['GRANT', 'GRANT SELECT ON payments TO CURRENT_USER'],
  ])('when the service\'s user tries %s, then the server refuses it', async (_what, sql) => {
    await expect(runtime.raw(sql)).rejects.toMatchObject({ code: expect.stringMatching(/^ER_(TABLEACCESS_DENIED_ERROR|DBACCESS_DENIED_ERROR|SPECIFIC_ACCESS_DENIED_ERROR|ACCESS_DENIED_ERROR|CANT_CREATE_USER_WITH_GRANT|PASSWORD_NO_MATCH)$/) });
    expect(await runtime.schema.hasColumn('payments', 'probe')).toBe(false);
  });

  it('the service\'s user reads and writes rows, and the owner may change the schema', async () => {
    const [rows] = (await runtime.raw('SELECT COUNT(*) AS n FROM payments')) as unknown as [Array<{ n: number }>];
    expect(Number(rows[0]?.n)).toBeGreaterThanOrEqual(0);
    await owner.raw('CREATE TABLE least_privilege_probe (id INT)');
    expect(await owner.schema.hasTable('least_privilege_probe')).toBe(true);
  });
});
