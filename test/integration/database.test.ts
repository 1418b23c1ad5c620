import type { Knex } from 'knex';
import { createDatabase, insertIdOf, transactionInRounds } from '../../src/infra/database';
import { newPaymentRow } from '../helpers/fixtures';
import { testConfig } from '../helpers/test-app';

// transactionInRounds sends each round as one multi-statement query: results come back per
// query, a failure anywhere rolls the whole transaction back, and the pooled connection is
// clean for the next user.
describe('database: a transaction in rounds', () => {
  const config = testConfig();
  const merchant = `rounds_${process.pid}_${Date.now()}`;
  let db: Knex;

  // One connection: every test reuses the session the one before it left behind.
  beforeAll(() => {
    db = createDatabase({ config, poolMax: 1 });
  });
  afterAll(async () => {
    await db('payments').where({ merchant_id: merchant }).delete();
    await db.destroy();
  });

  const payment = (orderId: string) => ({ ...newPaymentRow(merchant, orderId), updated_at: new Date() });
  const ordersOf = async (): Promise<string[]> => (await db('payments').where({ merchant_id: merchant }).orderBy('id').pluck('order_id')) as string[];
  const inTransaction = async (): Promise<number> => Number(((await db.raw('SELECT @@in_transaction AS t')) as [Array<{ t: number }>])[0][0]?.t);

  it('when two rounds commit, then each query gets its own result in order and a later round can use an earlier one', async () => {
    const [a, b] = [payment('keep-a'), payment('keep-b')];
    const readBack = await transactionInRounds(db, async (send) => {
      const [inserted, selected] = await send([db('payments').insert(a), db('payments').select('public_id').where({ public_id: a.public_id })]);
      const id = insertIdOf(inserted);
      expect(selected).toEqual([{ public_id: a.public_id }]);
      const [second, byId] = await send([db('payments').insert(b), db('payments').select('order_id').where({ id })], { commit: true });
      expect(insertIdOf(second)).toBeGreaterThan(id);
      return byId;
    });
    expect(readBack).toEqual([{ order_id: 'keep-a' }]);
    expect(await ordersOf()).toEqual(['keep-a', 'keep-b']);
    expect(await inTransaction()).toBe(0);
  });

  it('when a statement of the committing round fails, then the error keeps its errno and nothing of the transaction stays', async () => {
    const before = await ordersOf();
    const error = await transactionInRounds(db, async (send) => {
      await send([db('payments').insert(payment('dropped-1'))]);
      // A duplicate (merchant, order) stops the round before its COMMIT.
      await send([db('payments').insert(payment('dropped-2')), db('payments').insert(payment('keep-a'))], { commit: true });
    }).catch((err: unknown) => err);
    expect((error as { errno?: number }).errno).toBe(1062);
    expect(await ordersOf()).toEqual(before);
    expect(await inTransaction()).toBe(0);
  });

  it('when the work throws between rounds, then the first round is rolled back', async () => {
    const before = await ordersOf();
    await expect(
      transactionInRounds(db, async (send) => {
        await send([db('payments').insert(payment('dropped-3'))]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await ordersOf()).toEqual(before);
    expect(await inTransaction()).toBe(0);
  });

  it('when the work returns without a round that commits, then it fails and nothing stays', async () => {
    const before = await ordersOf();
    await expect(transactionInRounds(db, async (send) => void (await send([db('payments').insert(payment('dropped-4'))])))).rejects.toThrow(/without a send that commits/);
    expect(await ordersOf()).toEqual(before);
    expect(await inTransaction()).toBe(0);
  });

  it('when a round follows the commit, then it is refused', async () => {
    await expect(
      transactionInRounds(db, async (send) => {
        await send([db('payments').insert(payment('keep-c'))], { commit: true });
        await send([db('payments').insert(payment('too-late'))]);
      }),
    ).rejects.toThrow(/already committed/);
    expect(await ordersOf()).toEqual(['keep-a', 'keep-b', 'keep-c']);
  });
});
