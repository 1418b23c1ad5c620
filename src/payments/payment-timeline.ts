import type { PaymentEventRow, PaymentRow, PaymentsRepository } from './payments-repository';

/** One entry of `GET /v1/payments/:id/events` (README.md, "HTTP API"). */
export interface TimelineEvent {
  at: string;
  from: string | null;
  to: string;
  cause: string;
  details: Record<string, unknown> | null;
}

/** What the parking lot holds for a payment, as the timeline shows it (parking-repository.ts). */
export interface ParkedEntry {
  purpose: string;
  reason: string;
  attempts: number;
  parked_at: Date;
}

/** Internal keys never leave the service: another payment's numeric id says it exists. */
const INTERNAL_KEYS = new Set(['otherPaymentId']);

function publicDetails(stored: PaymentEventRow['details']): Record<string, unknown> | null {
  const value: unknown = typeof stored === 'string' ? JSON.parse(stored) : stored;
  if (value === null || typeof value !== 'object') return null;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !INTERNAL_KEYS.has(key)));
}

/**
 * "Where is payment X?" in one answer: its payment_events (transitions, remedy retries,
 * deliveries, conflicts) merged with what the parking lot holds for it, oldest first. A parked
 * item changes no state, so it shows the state the payment was in.
 */
export function createPaymentTimeline(deps: { payments: PaymentsRepository; parkedOf: (paymentId: number) => Promise<ParkedEntry[]> }) {
  return {
    async of(payment: PaymentRow): Promise<TimelineEvent[]> {
      const [events, parked] = await Promise.all([deps.payments.eventsOf(payment.id), deps.parkedOf(payment.id)]);
      const timeline: Array<TimelineEvent & { ms: number }> = events.map((e) => ({
        ms: new Date(e.at).getTime(),
        at: new Date(e.at).toISOString(),
        from: e.from_status,
        to: e.to_status,
        cause: e.cause,
        details: publicDetails(e.details),
      }));
      for (const item of parked) {
        const ms = new Date(item.parked_at).getTime();
        // The state it was in: that of the last event at or before the parking.
        const before = timeline.filter((e) => e.ms <= ms && e.cause !== 'parked').at(-1);
        const status = before?.to ?? payment.status;
        timeline.push({ ms, at: new Date(ms).toISOString(), from: status, to: status, cause: 'parked', details: { purpose: item.purpose, reason: item.reason, attempts: item.attempts } });
      }
      // A stable sort: at equal times the stored order holds, and a parking follows its event.
      return timeline.sort((a, b) => a.ms - b.ms).map(({ ms: _ms, ...event }) => event);
    },
  };
}
export type PaymentTimeline = ReturnType<typeof createPaymentTimeline>;
