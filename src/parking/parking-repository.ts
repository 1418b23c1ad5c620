import type { Database } from '../infra/database';

export type ParkPurpose = 'compensation' | 'notification' | 'intake';

export interface ParkedItemInput {
  purpose: ParkPurpose;
  reason: string;
  paymentId: number | null;
  attempts: number;
  lastError?: string;
  /** The message as received, so a replay can re-enter the flow. */
  message: string;
  correlationId?: string;
}

export interface ParkedItemRow {
  id: number;
  purpose: ParkPurpose;
  reason: string;
  payment_id: number | null;
  attempts: number;
  last_error: string | null;
  message: string;
  correlation_id: string | null;
  parked_at: Date;
}

/** TEXT columns hold 65,535 bytes; keep a margin for the note that says a value was cut. */
const MESSAGE_MAX_BYTES = 60_000;
const ERROR_MAX_BYTES = 4_000;
const CORRELATION_ID_MAX = 64;
const REASON_MAX = 64;

/** At most `maxBytes` of UTF-8, never splitting a character; a cut value says so. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const note = ' [truncated]';
  const cut = Buffer.from(text, 'utf8').subarray(0, maxBytes - note.length).toString('utf8');
  // A split multi-byte character decodes as U+FFFD at the end: drop it.
  return `${cut.replace(/\uFFFD+$/, '')}${note}`;
}

function toRow(i: ParkedItemInput, at: Date) {
  return {
    purpose: i.purpose,
    reason: i.reason.slice(0, REASON_MAX),
    payment_id: i.paymentId,
    attempts: i.attempts,
    last_error: i.lastError === undefined ? null : truncateUtf8(i.lastError, ERROR_MAX_BYTES),
    message: truncateUtf8(i.message, MESSAGE_MAX_BYTES),
    // An id longer than the column is not ours to keep: drop it rather than fail the park.
    correlation_id: i.correlationId && i.correlationId.length <= CORRELATION_ID_MAX ? i.correlationId : null,
    parked_at: at,
  };
}

/**
 * The parking lot is a table, not a queue: a person pages through it, replays one item by id and
 * deletes another, which a queue cannot do without consuming everything in front.
 */
export function createParkingRepository(deps: { db: Database }) {
  const { db } = deps;
  return {
    /**
     * Parks the items in one INSERT; if that fails, one at a time, so one item the table cannot
     * take never keeps the others out. Fields are cut to what their columns hold, in bytes (a
     * TEXT holds 65,535 bytes, not characters). Throws only when an item cannot be parked at all
     * (the database is down): the caller then retries, and nothing is acked unparked.
     */
    async park(items: ParkedItemInput[]): Promise<void> {
      if (items.length === 0) return;
      const at = new Date();
      const rows = items.map((i) => toRow(i, at));
      try {
        await db('parked_items').insert(rows);
      } catch {
        for (const row of rows) await db('parked_items').insert(row);
      }
    },
    /** Keyset paging by id, newest first. */
    async list(options: { limit: number; beforeId?: number; purpose?: ParkPurpose }): Promise<ParkedItemRow[]> {
      const q = db<ParkedItemRow>('parked_items').orderBy('id', 'desc').limit(options.limit);
      if (options.beforeId) q.where('id', '<', options.beforeId);
      if (options.purpose) q.where('purpose', options.purpose);
      return q;
    },
    /** A payment's parked items, oldest first (for its timeline). */
    async ofPayment(paymentId: number): Promise<ParkedItemRow[]> {
      return db<ParkedItemRow>('parked_items').where({ payment_id: paymentId }).orderBy('id');
    },
    async findById(id: number): Promise<ParkedItemRow | undefined> {
      return db<ParkedItemRow>('parked_items').where({ id }).first();
    },
    async deleteById(id: number): Promise<boolean> {
      return (await db('parked_items').where({ id }).delete()) > 0;
    },
  };
}
export type ParkingRepository = ReturnType<typeof createParkingRepository>;
