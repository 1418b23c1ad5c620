import type { Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../src/config/config-schema';
import { createDatabase } from '../../src/infra/database';
import type { NewPayment } from '../../src/payments/payments-repository';
import { generatePublicId } from '../../src/payments/payments-service';
import { RECORDED_CAUSES } from '../../src/payments/payment-states';

export interface EventRow {
  payment_id: number;
  from_status: string | null;
  to_status: string;
  cause: string;
  at: Date;
}

/** A knex pool for reading what the service wrote; close it in afterAll. */
export function openTestDatabase(config: Config): Knex {
  return createDatabase({ config, poolMax: 4 });
}

/**
 * The payments' transitions and conflicts, in order. The timeline's records of what changed no
 * state (remedy retries, deliveries: RECORDED_CAUSES) are left out; the timeline's tests read them.
 */
export async function eventsOf(db: Knex, paymentIds: number[]): Promise<EventRow[]> {
  if (paymentIds.length === 0) return [];
  const rows: EventRow[] = [];
  for (let i = 0; i < paymentIds.length; i += 1000) {
    rows.push(...(await db<EventRow>('payment_events').whereIn('payment_id', paymentIds.slice(i, i + 1000)).whereNotIn('cause', [...RECORDED_CAUSES]).orderBy('id')));
  }
  return rows;
}

export async function internalIdOf(db: Knex, publicId: string): Promise<number> {
  const row = await db('payments').where({ public_id: publicId }).first('id');
  return Number(row.id);
}

/** A PENDING payment row as the create path writes it, expiring in a minute unless told. */
export function newPaymentRow(merchantId: string, orderId: string, fields: Partial<NewPayment> = {}): NewPayment {
  return {
    public_id: generatePublicId(),
    merchant_id: merchantId,
    order_id: orderId,
    amount: 100,
    currency: 'CNY',
    channel: 'wechat',
    status: 'PENDING',
    request_hash: 'x'.repeat(64),
    notify_url: null,
    expires_at: new Date(Date.now() + 60000),
    created_at: new Date(),
    ...fields,
  };
}

const PAYMENT_COLUMNS = ['public_id', 'merchant_id', 'order_id', 'amount', 'currency', 'channel', 'status', 'request_hash', 'notify_url', 'expires_at', 'created_at', 'updated_at'] as const;

/**
 * The one bulk inserter of payment rows, for the tests and the benchmark (scripts/bench/timers.ts):
 * one multi-row INSERT through `query` (a knex raw or a mysql2 pool), into `table` (the bench's
 * batch job has copies of payments). Answers the first id: a multi-row INSERT gets consecutive
 * ids under innodb_autoinc_lock_mode 0 or 1 (MariaDB's default).
 */
export async function insertPaymentRows(query: (sql: string, values: unknown[]) => Promise<unknown>, rows: NewPayment[], table = 'payments'): Promise<number> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
  const values = rows.flatMap((r) => PAYMENT_COLUMNS.map((c) => (c === 'updated_at' ? r.created_at : r[c])));
  const tuple = `(${PAYMENT_COLUMNS.map(() => '?').join(',')})`;
  const [result] = (await query(`INSERT INTO ${table} (${PAYMENT_COLUMNS.join(', ')}) VALUES ${rows.map(() => tuple).join(',')}`, values)) as [{ insertId: number }];
  return Number(result.insertId);
}

/**
 * Inserts PENDING payments straight into the table, expiring at `expiresAt` (or at what it gives
 * for each index), up to 500 per INSERT.
 */
export async function insertPendingPayments(db: Knex, count: number, expiresAt: Date | ((index: number) => Date), channel = 'wechat'): Promise<number[]> {
  const merchant = `bulk_${randomUUID().slice(0, 8)}`;
  const now = new Date();
  const expiryOf = typeof expiresAt === 'function' ? expiresAt : () => expiresAt;
  for (let i = 0; i < count; i += 500) {
    const rows = Array.from({ length: Math.min(500, count - i) }, (_, j) => newPaymentRow(merchant, `o-${i + j}`, { channel, expires_at: expiryOf(i + j), created_at: now }));
    await insertPaymentRows((sql, values) => db.raw(sql, values as Knex.RawBinding[]), rows);
  }
  const inserted = await db('payments').where({ merchant_id: merchant }).orderBy('id').select('id');
  return inserted.map((r: { id: number }) => Number(r.id));
}
