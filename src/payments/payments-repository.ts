import type { Knex } from 'knex';
import { consecutiveIdStep, insertIdOf, sqlIdList, type Database, type SendRound } from '../infra/database';
import { RECORDED_CAUSES, type PaymentStatus, type TransitionCause } from './payment-states';

export interface PaymentRow {
  id: number;
  public_id: string;
  merchant_id: string;
  order_id: string;
  amount: number;
  currency: string;
  channel: string;
  status: PaymentStatus;
  request_hash: string;
  notify_url: string | null;
  transaction_id: string | null;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
  paid_at: Date | null;
  closed_at: Date | null;
}

export interface PaymentEvent {
  paymentId: number;
  from: PaymentStatus | null;
  to: PaymentStatus;
  cause: TransitionCause;
  at: Date;
  details?: Record<string, unknown>;
}

/** One row of a payment's history as stored (payment_events). */
export interface PaymentEventRow {
  id: number;
  from_status: PaymentStatus | null;
  to_status: PaymentStatus;
  cause: string;
  at: Date;
  details: Record<string, unknown> | string | null;
}

export type NewPayment = Omit<PaymentRow, 'id' | 'transaction_id' | 'paid_at' | 'closed_at' | 'updated_at'>;

/** Fields a transition sets besides status; transaction ids may differ per payment. */
export interface TransitionFields {
  at: Date;
  transactionIds?: Map<number, string>;
}

type Runner = Database | Knex.Transaction;

function sortedIds(ids: Iterable<number>): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

/**
 * All SQL on payments and payment_events. Every UPDATE is by primary key, with sorted ids and
 * the expected status in the WHERE clause: its affected-row count says who won.
 */
export function createPaymentsRepository(deps: {
  db: Database;
  /** Never rely on consecutive ids (tests use it to run the interleaved path on MariaDB). */
  assumeInterleavedIds?: boolean;
}) {
  const { db } = deps;

  /** The INSERT of appendEvents (events not empty), to run or to send in a round. */
  function eventsInsert(events: PaymentEvent[]): Knex.QueryBuilder {
    return db('payment_events').insert(
      events.map((e) => ({
        payment_id: e.paymentId,
        from_status: e.from,
        to_status: e.to,
        cause: e.cause,
        at: e.at,
        details: e.details ? JSON.stringify(e.details) : null,
      })),
    );
  }

  return {
    async findById(id: number, runner: Runner = db): Promise<PaymentRow | undefined> {
      return runner<PaymentRow>('payments').where({ id }).first();
    },
    async findByPublicId(publicId: string): Promise<PaymentRow | undefined> {
      return db<PaymentRow>('payments').where({ public_id: publicId }).first();
    },
    async findByMerchantOrder(merchantId: string, orderId: string): Promise<PaymentRow | undefined> {
      return db<PaymentRow>('payments').where({ merchant_id: merchantId, order_id: orderId }).first();
    },
    /** The id of the payment that holds this transaction id of the channel, if any. */
    async findByTransactionId(runner: Runner, channel: string, transactionId: string): Promise<number | undefined> {
      const row = await runner('payments').where({ channel, transaction_id: transactionId }).first('id');
      return row ? Number(row.id) : undefined;
    },
    /** Which of these transaction ids of the channel are held, and by which payment. */
    async findByTransactionIds(channel: string, transactionIds: string[]): Promise<Map<string, number>> {
      if (transactionIds.length === 0) return new Map();
      const rows: Array<{ id: number; transaction_id: string }> = await db('payments').where({ channel }).whereIn('transaction_id', transactionIds).select('id', 'transaction_id');
      return new Map(rows.map((r) => [r.transaction_id, Number(r.id)]));
    },
    /** The payment's history, oldest first (by the append-only primary key). */
    async eventsOf(id: number): Promise<PaymentEventRow[]> {
      return db('payment_events').where({ payment_id: id }).orderBy('id').select('id', 'from_status', 'to_status', 'cause', 'at', 'details');
    },
    /** The latest event of these causes, if any (a cancel's repeat finds its own by it). */
    async lastEventOf(id: number, causes: string[]): Promise<PaymentEventRow | undefined> {
      return db('payment_events').where({ payment_id: id }).whereIn('cause', causes).orderBy('id', 'desc').first('id', 'from_status', 'to_status', 'cause', 'at', 'details');
    },
    /** Records events that change no state (remedy retries, deliveries), outside a transaction. */
    async recordEvents(events: PaymentEvent[]): Promise<void> {
      if (events.length > 0) await eventsInsert(events);
    },
    /** Whether the payment's audit trail has a transition into `status`. */
    async hasReached(id: number, status: PaymentStatus): Promise<boolean> {
      return (await db('payment_events').where({ payment_id: id, to_status: status }).whereNotIn('cause', [...RECORDED_CAUSES]).first('id')) !== undefined;
    },
    /** Public ids by internal id (the admin's parked items name payments by their public id). */
    async publicIdsOf(ids: number[]): Promise<Map<number, string>> {
      if (ids.length === 0) return new Map();
      const rows: Array<{ id: number; public_id: string }> = await db('payments').whereIn('id', sortedIds(ids)).select('id', 'public_id');
      return new Map(rows.map((r) => [Number(r.id), r.public_id]));
    },
    /** One page of a keyset scan by primary key (the audit's): ids after `afterId`, up to `toId`. */
    async pageAfter(afterId: number, limit: number, toId?: number): Promise<Array<Pick<PaymentRow, 'id' | 'public_id' | 'channel' | 'status' | 'expires_at'>>> {
      return db<PaymentRow>('payments')
        .select('id', 'public_id', 'channel', 'status', 'expires_at')
        .where('id', '>', afterId)
        .modify((q) => {
          if (toId !== undefined) q.andWhere('id', '<=', toId);
        })
        .orderBy('id')
        .limit(limit);
    },
    /** The most recent `window` payments by primary-key range (never a scan by status or time). */
    async recent(window: number): Promise<Array<Pick<PaymentRow, 'status' | 'expires_at' | 'closed_at' | 'paid_at'>>> {
      const top = await db('payments').max({ id: 'id' }).first();
      const maxId = Number(top?.id ?? 0);
      return db<PaymentRow>('payments').where('id', '>', Math.max(0, maxId - window)).select('status', 'expires_at', 'closed_at', 'paid_at');
    },
    async findByIds(ids: number[]): Promise<PaymentRow[]> {
      if (ids.length === 0) return [];
      // eslint-disable-next-line no-restricted-syntax -- sqlIdList is digits and commas only
      const [rows] = (await db.raw(`SELECT * FROM payments WHERE id IN (${sqlIdList(ids)})`)) as [PaymentRow[]];
      return rows;
    },
    /** Locks the rows by primary key in ascending order, the one lock order every writer uses. */
    async lockByIds(trx: Knex.Transaction, ids: number[]): Promise<PaymentRow[]> {
      if (ids.length === 0) return [];
      // eslint-disable-next-line no-restricted-syntax -- sqlIdList is digits and commas only
      const [rows] = (await trx.raw(`SELECT * FROM payments WHERE id IN (${sqlIdList(ids)}) ORDER BY id FOR UPDATE`)) as [PaymentRow[]];
      return rows;
    },
    /**
     * One multi-row INSERT as a round of a transaction in rounds; returns the new ids in the
     * order given. Consecutive ids follow from the first; interleaved ones are read back by the
     * unique public id in the same round.
     */
    async insertMany(send: SendRound, payments: NewPayment[]): Promise<number[]> {
      const step = payments.length === 1 ? 1 : deps.assumeInterleavedIds ? undefined : consecutiveIdStep(send.pool);
      const insert = db('payments').insert(payments.map((p) => ({ ...p, updated_at: p.created_at })));
      if (step !== undefined) {
        const [inserted] = await send([insert]);
        const firstId = insertIdOf(inserted);
        return payments.map((_, k) => firstId + k * step);
      }
      const readBack = db('payments').select('id', 'public_id').whereIn('public_id', payments.map((p) => p.public_id));
      const [, rows] = (await send([insert, readBack])) as [unknown, Array<{ id: number; public_id: string }>];
      const idOf = new Map(rows.map((r) => [r.public_id, Number(r.id)]));
      return payments.map((p) => idOf.get(p.public_id) as number);
    },
    /** One statement for one target state: UPDATE ... WHERE id IN (sorted) AND status = from. */
    async transition(trx: Knex.Transaction, ids: number[], from: PaymentStatus, to: PaymentStatus, fields: TransitionFields): Promise<number> {
      if (ids.length === 0) return 0;
      const set = ['status = ?', 'updated_at = ?'];
      const values: Knex.Value[] = [to, fields.at];
      if (to === 'PAID' || to === 'PAID_AFTER_CLOSE') set.push('paid_at = ?');
      if (to === 'CLOSED' || to === 'FAILED') set.push('closed_at = ?');
      if (set.length > 2) values.push(fields.at);
      const txIds = fields.transactionIds;
      const cases = txIds ? sortedIds(ids).filter((id) => txIds.has(id)) : [];
      if (txIds && cases.length > 0) {
        set.push(`transaction_id = CASE id ${cases.map(() => 'WHEN ? THEN ?').join(' ')} ELSE transaction_id END`);
        values.push(...cases.flatMap((id) => [id, txIds.get(id) as string]));
      }
      const [result] = (await trx.raw(
        // eslint-disable-next-line no-restricted-syntax -- column names, placeholders and sqlIdList's digits only
        `UPDATE payments SET ${set.join(', ')} WHERE id IN (${sqlIdList(ids)}) AND status = ?`,
        [...values, from],
      )) as [{ affectedRows: number }];
      return result.affectedRows;
    },
    /**
     * A transition's event rows without details, one per payment, built by the database from the
     * ids (INSERT ... SELECT by primary key, rows this transaction has just updated and holds):
     * the ids inlined instead of six bound values per payment, which a drain's worker felt (npm run bench:worker).
     */
    async appendTransitionEvents(trx: Knex.Transaction, ids: number[], from: PaymentStatus, to: PaymentStatus, cause: TransitionCause, at: Date): Promise<void> {
      if (ids.length === 0) return;
      await trx.raw(
        // eslint-disable-next-line no-restricted-syntax -- sqlIdList is digits and commas only
        `INSERT INTO payment_events (payment_id, from_status, to_status, cause, \`at\`, details) SELECT id, ?, ?, ?, ?, NULL FROM payments WHERE id IN (${sqlIdList(ids)}) ORDER BY id`,
        [from, to, cause, at],
      );
    },
    async appendEvents(trx: Knex.Transaction, events: PaymentEvent[]): Promise<void> {
      if (events.length === 0) return;
      await eventsInsert(events).transacting(trx);
    },
    eventsInsert,
  };
}
export type PaymentsRepository = ReturnType<typeof createPaymentsRepository>;
