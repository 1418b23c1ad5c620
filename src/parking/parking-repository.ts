import type { Database } from '../infra/database';

export type ParkPurpose = 'compensation' | 'notification';

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

/**
 * The parking lot is a table, not a queue: a person pages through it, replays one item by id and
 * deletes another, which a queue cannot do without consuming everything in front.
 */
export function createParkingRepository(deps: { db: Database }) {
  const { db } = deps;
  return {
    async park(items: ParkedItemInput[]): Promise<void> {
      if (items.length === 0) return;
      const at = new Date();
      await db('parked_items').insert(
        items.map((i) => ({
          purpose: i.purpose,
          reason: i.reason,
          payment_id: i.paymentId,
          attempts: i.attempts,
          last_error: i.lastError?.slice(0, 4000) ?? null,
          message: i.message.slice(0, 60000),
          correlation_id: i.correlationId ?? null,
          parked_at: at,
        })),
      );
    },
    /** Keyset paging by id, newest first. */
    async list(options: { limit: number; beforeId?: number; purpose?: ParkPurpose }): Promise<ParkedItemRow[]> {
      const q = db<ParkedItemRow>('parked_items').orderBy('id', 'desc').limit(options.limit);
      if (options.beforeId) q.where('id', '<', options.beforeId);
      if (options.purpose) q.where('purpose', options.purpose);
      return q;
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
