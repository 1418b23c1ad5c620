import type { DelayScheduler } from '../delay/delay-scheduler';
import { notificationMessage, parseNotificationBody } from '../messaging/notification-message';
import { parseTimerBody, timerMessage } from '../messaging/timer-message';
import type { PaymentsRepository } from '../payments/payments-repository';
import type { ParkingRepository, ParkedItemRow, ParkPurpose } from './parking-repository';
import { ConflictError, NotFoundError } from '../shared/errors';

export interface ParkedItemView {
  id: number;
  purpose: string;
  reason: string;
  paymentId: string | null;
  attempts: number;
  lastError: string | null;
  parkedAt: string;
  correlationId: string | null;
  message: string;
}

/** List, replay and delete parked items. Replay re-enters the normal flow at attempt 1. */
export function createParkingService(deps: { parking: ParkingRepository; payments: PaymentsRepository; scheduler: DelayScheduler }) {
  const publicIds = (rows: ParkedItemRow[]) => deps.payments.publicIdsOf(rows.map((r) => r.payment_id).filter((id): id is number => id !== null).map(Number));

  return {
    async list(options: { limit: number; beforeId?: number; purpose?: ParkPurpose }) {
      const rows = await deps.parking.list(options);
      const names = await publicIds(rows);
      const items: ParkedItemView[] = rows.map((r) => ({
        id: Number(r.id),
        purpose: r.purpose,
        reason: r.reason,
        paymentId: r.payment_id === null ? null : (names.get(Number(r.payment_id)) ?? null),
        attempts: r.attempts,
        lastError: r.last_error,
        parkedAt: new Date(r.parked_at).toISOString(),
        correlationId: r.correlation_id,
        message: r.message,
      }));
      return { items, nextBefore: rows.length === options.limit ? items[items.length - 1]?.id : undefined };
    },

    /** Publishes the item again (attempt 1, due now), then removes it: at-least-once, never lost. */
    async replay(id: number): Promise<void> {
      const row = await deps.parking.findById(id);
      if (!row) throw new NotFoundError(`parked item ${id} not found`);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(row.message) as Record<string, unknown>;
      } catch {
        throw new ConflictError(`parked item ${id} is not a readable message (${row.reason}); delete it instead`);
      }
      if (typeof body.paymentId !== 'number') throw new ConflictError(`parked item ${id} names no payment (${row.reason}); delete it instead`);
      // Attempt 1, due now; the message is built anew, so a replay is always of today's version.
      const due = { deadline: Date.now(), attempt: 1, correlationId: row.correlation_id ?? undefined };
      const unreadable = (error: string) => new ConflictError(`parked item ${id} is not a ${row.purpose === 'notification' ? 'notification' : 'timer'} (${error}); delete it instead`);
      if (row.purpose === 'notification') {
        const read = parseNotificationBody(body);
        if (!read.ok) throw unreadable(read.error);
        await deps.scheduler.schedule(notificationMessage({ ...read.value, ...due }));
      } else {
        const read = parseTimerBody(body);
        if (!read.ok) throw unreadable(read.error);
        await deps.scheduler.schedule(timerMessage({ paymentId: read.value.paymentId, ...due }));
      }
      await deps.parking.deleteById(id);
    },

    async remove(id: number): Promise<void> {
      if (!(await deps.parking.deleteById(id))) throw new NotFoundError(`parked item ${id} not found`);
    },
  };
}
export type ParkingService = ReturnType<typeof createParkingService>;
