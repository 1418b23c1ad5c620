import type { DelayScheduler } from '../delay/delay-scheduler';
import { DESTINATIONS } from '../infra/broker-topology';
import type { Database } from '../infra/database';

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
  const now = deps.now ?? Date.now;
  const cutoff = now() - deps.graceSeconds * 1000;
  const overdue: OverduePayment[] = [];
  let scanned = 0;
  let requeued = 0;
  let lastId = deps.fromId ?? 0;
  for (;;) {
    const rows: Array<{ id: number; public_id: string; channel: string; status: string; expires_at: Date }> = await deps
      .db('payments')
      .select('id', 'public_id', 'channel', 'status', 'expires_at')
      .where('id', '>', lastId)
      .modify((q) => {
        if (deps.toId !== undefined) q.andWhere('id', '<=', deps.toId);
      })
      .orderBy('id')
      .limit(pageSize);
    if (rows.length === 0) break;
    scanned += rows.length;
    lastId = Number(rows[rows.length - 1]?.id);
    const page = rows.filter((r) => r.status === 'PENDING' && new Date(r.expires_at).getTime() < cutoff);
    for (const r of page) {
      const expiresAt = new Date(r.expires_at);
      overdue.push({ id: Number(r.id), publicId: r.public_id, channel: r.channel, expiresAt: expiresAt.toISOString(), overdueSeconds: Math.round((now() - expiresAt.getTime()) / 1000) });
      if (deps.scheduler) {
        await deps.scheduler.schedule({ destination: DESTINATIONS.paymentTimer, deadline: now(), attempt: 1, body: { paymentId: Number(r.id) } });
        requeued++;
      }
    }
    deps.onPage?.(lastId);
    if (rows.length < pageSize) break;
  }
  return { scanned, overdue, requeued };
}
