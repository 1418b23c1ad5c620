import type { PaymentsRepository } from '../payments/payments-repository';

export const LATENESS_BUCKETS_MS = [100, 250, 500, 1000, 2000, 5000, 10000, 60000];

/**
 * Payments by status and timer lateness over the most recent `window` payments. It reads a
 * primary-key range (never a scan by status or time), so its cost does not grow with the table.
 */
export async function readPaymentStats(payments: PaymentsRepository, window: number) {
  const rows = await payments.recent(window);
  const byStatus: Record<string, number> = { PENDING: 0, PAID: 0, FAILED: 0, CLOSED: 0, PAID_AFTER_CLOSE: 0 };
  const lateness = LATENESS_BUCKETS_MS.map((le) => ({ le, count: 0 }));
  let overflow = 0;
  let overdue = 0;
  const now = Date.now();
  for (const r of rows) {
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    if (r.status === 'PENDING' && new Date(r.expires_at).getTime() < now - 60000) overdue++;
    if (r.status === 'CLOSED' || r.status === 'PAID_AFTER_CLOSE') {
      const late = new Date(r.closed_at ?? r.paid_at ?? now).getTime() - new Date(r.expires_at).getTime();
      const bucket = lateness.find((b) => late <= b.le);
      if (bucket) bucket.count++;
      else overflow++;
    }
  }
  return { window: rows.length, byStatus, overdueOver60s: overdue, closedLatenessMs: { buckets: lateness, over: overflow } };
}
