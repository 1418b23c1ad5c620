import type { Knex } from 'knex';
import { createMigrationDatabase } from '../../src/db/migration-source';
import { consecutiveIdStep, createDatabase, transactionInRounds } from '../../src/infra/database';
import { createPaymentsRepository, type NewPayment } from '../../src/payments/payments-repository';
import { newPaymentRow } from '../helpers/fixtures';
import { testConfig } from '../helpers/test-app';

// insertMany answers the new ids without reading them back when the server promises
// consecutive auto-increment values; either way each id must belong to its own row.
describe('payments repository: ids of a multi-row insert', () => {
  const config = testConfig();
  const merchant = `ids_${process.pid}_${Date.now()}`;
  let db: Knex;
  let spaced: Knex;

  beforeAll(() => {
    db = createDatabase({ config, multipleStatements: true, poolMax: 2 });
    // auto_increment_increment is a session variable: a pool whose sessions step by 3.
    spaced = createDatabase({ config, multipleStatements: true, poolMax: 1, sessionSetup: 'SET SESSION auto_increment_increment = 3' });
  });
  afterAll(async () => {
    await db('payments').where({ merchant_id: merchant }).delete();
    await db.destroy();
    await spaced.destroy();
  });

  const newPayments = (n: number, tag: string): NewPayment[] =>
    Array.from({ length: n }, (_, k) => newPaymentRow(merchant, `${tag}-${k}`, { amount: 100 + k }));

  async function insertAndCheck(runner: Knex, repository: ReturnType<typeof createPaymentsRepository>, tag: string): Promise<number[]> {
    const payments = newPayments(25, tag);
    const ids = await transactionInRounds(runner, async (send) => {
      const inserted = await repository.insertMany(send, payments);
      await send([], { commit: true });
      return inserted;
    });
    const rows: Array<{ id: number; public_id: string }> = await db('payments').select('id', 'public_id').whereIn('public_id', payments.map((p) => p.public_id));
    const idOf = new Map(rows.map((r) => [r.public_id, Number(r.id)]));
    expect(ids).toEqual(payments.map((p) => idOf.get(p.public_id)));
    expect(new Set(ids).size).toBe(25);
    return ids;
  }

  it('when the server hands out consecutive ids (MariaDB default), then the ids are computed and each matches its row', async () => {
    await insertAndCheck(db, createPaymentsRepository({ db }), 'consecutive');
  });

  it('when the session steps auto-increment values by 3, then the computed ids step by 3 and still match', async () => {
    const ids = await insertAndCheck(spaced, createPaymentsRepository({ db: spaced }), 'step3');
    expect(ids.slice(1).map((id, k) => id - (ids[k] as number))).toEqual(Array(24).fill(3));
  });

  it('when the sessions of a pool report different steps (a failover, a SET GLOBAL), then ids are read back and match', async () => {
    // A sequence makes the sessions alternate between steps 1 and 2, deterministically.
    const sequence = `ids_step_seq_${process.pid}`;
    // The service's user may not create one (least privilege): the schema's owner does.
    const owner = createMigrationDatabase(config);
    await owner.raw(`CREATE SEQUENCE IF NOT EXISTS ${sequence}`);
    const mixed = createDatabase({ config, multipleStatements: true, poolMax: 2, sessionSetup: `SET SESSION auto_increment_increment = 1 + MOD(NEXTVAL(${sequence}), 2)` });
    try {
      // Two transactions open at once: two sessions, one of each step.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = mixed.transaction(async (trx) => {
        await trx.raw('SELECT 1');
        await held;
      });
      await mixed.transaction(async (trx) => {
        await trx.raw('SELECT 1');
        release();
      });
      await first;
      expect(consecutiveIdStep(mixed)).toBeUndefined();
      // Both sessions at once: a computed step would be wrong on one of them.
      const repository = createPaymentsRepository({ db: mixed });
      await Promise.all([insertAndCheck(mixed, repository, 'mixed-a'), insertAndCheck(mixed, repository, 'mixed-b')]);
    } finally {
      await mixed.destroy();
      await owner.raw(`DROP SEQUENCE IF EXISTS ${sequence}`);
      await owner.destroy();
    }
  });

  it('when ids may interleave (MySQL 8 default), then they are read back by public id and match', async () => {
    await insertAndCheck(db, createPaymentsRepository({ db, assumeInterleavedIds: true }), 'interleaved');
  });
});
