import type { DelayScheduler } from '../delay/delay-scheduler';
import { timerMessage } from '../messaging/timer-message';
import type { Database } from '../infra/database';
import { createPaymentsRepository } from '../payments/payments-repository';

export interface OverduePayment {
  id: number;
  publicId: string;
  channel: string;
  expiresAt: string;
  overdueSeconds: number;
}

/**
 * The safety net and the proof: a read-only keyset scan by primary key, in small pages, listing
 * payments still PENDING past their deadline plus a grace period. With `requeue`, it publishes
 * their timers again by id; the workers settle them like any other due timer. Never an UPDATE.
 */
export async function auditOverdue(deps: {
  db: Database;
  scheduler?: DelayScheduler;
  graceSeconds: number;
  pageSize?: number;
  fromId?: number;
  /** Stop after this id (inclusive); scans to the end of the table when absent. */
  toId?: number;
  now?: () => number;
  onPage?: (lastId: number) => void;
}): Promise<{ scanned: number; overdue: OverduePayment[]; requeued: number }> {
  const pageSize = deps.pageSize ?? 500;
  const payments = createPaymentsRepository({ db: deps.db });
  const now = deps.now ?? Date.now;
  const cutoff = now() - deps.graceSeconds * 1000;
  const overdue: OverduePayment[] = [];
  let scanned = 0;
  let requeued = 0;
  let lastId = deps.fromId ?? 0;
  for (;;) {
    const rows = await payments.pageAfter(lastId, pageSize, deps.toId);
    if (rows.length === 0) break;
    scanned += rows.length;
    lastId = Number(rows[rows.length - 1]?.id);
    const page = rows.filter((r) => r.status === 'PENDING' && new Date(r.expires_at).getTime() < cutoff);
    for (const r of page) {
      const expiresAt = new Date(r.expires_at);
      overdue.push({ id: Number(r.id), publicId: r.public_id, channel: r.channel, expiresAt: expiresAt.toISOString(), overdueSeconds: Math.round((now() - expiresAt.getTime()) / 1000) });
      if (deps.scheduler) {
        await deps.scheduler.schedule(timerMessage({ paymentId: Number(r.id), deadline: now(), attempt: 1 }));
        requeued++;
      }
    }
    deps.onPage?.(lastId);
    if (rows.length < pageSize) break;
  }
  return { scanned, overdue, requeued };
}
