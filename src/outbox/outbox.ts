import type { Knex } from 'knex';
import type { Database } from '../infra/database';
import type { DelayScheduler, ScheduledMessage } from '../delay/delay-scheduler';
import type { Logger } from '../shared/logger';

export interface PendingOutboxMessage {
  id: number;
  message: ScheduledMessage;
}

export interface Outbox {
  /** Writes the message in the caller's transaction; publish it with `flush` after commit. */
  add(trx: Knex.Transaction, message: ScheduledMessage): Promise<PendingOutboxMessage>;
  /**
   * Publishes committed messages and deletes their rows by id. Never throws: what fails to
   * publish stays in the table for the relay.
   */
  flush(pending: PendingOutboxMessage[]): Promise<void>;
  /** Publishes leftovers older than the minimum age; returns how many went out. */
  relayOnce(): Promise<number>;
  startRelay(): () => void;
}

/**
 * Transactional outbox (DESIGN section 2): a broker outage never loses a timer and never blocks
 * checkout. The relay claims rows with FOR UPDATE SKIP LOCKED, so replicas never share a row.
 */
export function createOutbox(deps: {
  db: Database;
  scheduler: DelayScheduler;
  logger: Logger;
  relayIntervalMs: number;
  relayMinAgeMs: number;
  relayBatchSize: number;
}): Outbox {
  const { db, scheduler, logger } = deps;

  /** Publishes side by side (each waits for its confirm); returns the ids the broker took. */
  async function publishAll(pending: PendingOutboxMessage[]): Promise<number[]> {
    const results = await Promise.allSettled(pending.map((item) => scheduler.schedule(item.message)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      logger.warn('outbox publish failed; the relay will retry', { failed: failed.length, of: pending.length, error: String(failed[0]?.reason?.message ?? failed[0]?.reason) });
    }
    return pending.filter((_, i) => results[i]?.status === 'fulfilled').map((item) => item.id);
  }

  const outbox: Outbox = {
    async add(trx, message) {
      const [id] = await trx('outbox').insert({ kind: message.destination, message: JSON.stringify(message), created_at: new Date() });
      return { id: Number(id), message };
    },
    async flush(pending) {
      if (pending.length === 0) return;
      const published = await publishAll(pending);
      if (published.length === 0) return;
      try {
        await db('outbox').whereIn('id', published).delete();
      } catch (err) {
        logger.warn('outbox delete failed; the relay may publish these again', { error: (err as Error).message });
      }
    },
    async relayOnce() {
      return db.transaction(async (trx) => {
        const cutoff = new Date(Date.now() - deps.relayMinAgeMs);
        const rows: Array<{ id: number; message: string }> = await trx('outbox')
          .select('id', 'message')
          .where('created_at', '<', cutoff)
          .orderBy('id')
          .limit(deps.relayBatchSize)
          .forUpdate()
          .skipLocked();
        if (rows.length === 0) return 0;
        const published = await publishAll(rows.map((r) => ({ id: Number(r.id), message: JSON.parse(r.message) as ScheduledMessage })));
        if (published.length > 0) await trx('outbox').whereIn('id', published).delete();
        return published.length;
      });
    },
    startRelay() {
      let running = false;
      // Full batches go again at once, so a backlog after an outage drains at publish speed.
      const drain = async (): Promise<number> => {
        let total = 0;
        for (;;) {
          const n = await outbox.relayOnce();
          total += n;
          if (n < deps.relayBatchSize) return total;
        }
      };
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        drain()
          .then((n) => n > 0 && logger.info('outbox relay published leftovers', { count: n }))
          .catch((err) => logger.warn('outbox relay failed', { error: (err as Error).message }))
          .finally(() => {
            running = false;
          });
      }, deps.relayIntervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
  return outbox;
}
