import type { Knex } from 'knex';
import type { Database } from '../infra/database';
import type { DelayScheduler } from '../delay/delay-scheduler';
import type { ScheduledMessage } from '../messaging/envelope';
import type { Logger } from '../shared/logger';

/** One outbox row: the messages one transaction wrote, published together after commit. */
export interface PendingOutboxMessage {
  id: number;
  messages: ScheduledMessage[];
}

export interface Outbox {
  /**
   * Writes the messages as one row in the caller's transaction (one round trip however many
   * there are); publish them with `flush` after commit. Nothing to write gives undefined.
   */
  add(trx: Knex.Transaction, messages: ScheduledMessage[]): Promise<PendingOutboxMessage | undefined>;
  /** add's INSERT (messages not empty), for a transaction sent in rounds; its insertId is the row's id. */
  addInsert(messages: ScheduledMessage[]): Knex.QueryBuilder;
  /**
   * Publishes committed messages; resolves once the broker confirmed them, and their rows are
   * deleted by id shortly after, together with other flushes' rows. Never throws: a row with any
   * message the broker did not take stays in the table, and the relay publishes it again
   * (consumers take duplicates: a timer settles once, a notification carries its event id).
   */
  flush(pending: Array<PendingOutboxMessage | undefined>): Promise<void>;
  /** Publishes this topology's leftovers older than the minimum age; returns how many went out. */
  relayOnce(): Promise<number>;
  /** Resolves when every flush started so far has finished and its rows are deleted (graceful shutdown waits here). */
  idle(): Promise<void>;
  /** Starts the relay; the function it returns stops it and resolves when a running pass ends. */
  startRelay(): () => Promise<void>;
}

/** Published rows wait at most this long for their DELETE, or until this many are waiting. */
const DELETE_DELAY_MS = 50;
const DELETE_MAX_IDS = 1000;

/**
 * Transactional outbox (docs/architecture.md): a broker outage never loses a timer and never blocks
 * checkout. The relay claims rows with FOR UPDATE SKIP LOCKED, so replicas never share a row.
 */
export function createOutbox(deps: {
  db: Database;
  /** The broker prefix these rows are published into; a relay takes only its own rows. */
  topology: string;
  scheduler: DelayScheduler;
  logger: Logger;
  relayIntervalMs: number;
  relayMinAgeMs: number;
  relayBatchSize: number;
  /** How long published rows wait for their shared DELETE (default DELETE_DELAY_MS). */
  deleteDelayMs?: number;
}): Outbox {
  const { db, scheduler, logger } = deps;

  /**
   * Publishes side by side (each waits for its confirm); returns the ids of the rows whose
   * messages the broker all took.
   */
  async function publishAll(pending: PendingOutboxMessage[]): Promise<number[]> {
    const rows = await Promise.all(pending.map((row) => Promise.allSettled(row.messages.map((m) => scheduler.schedule(m)))));
    const failed = rows.flat().filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      const of = pending.reduce((n, row) => n + row.messages.length, 0);
      logger.warn('outbox publish failed; the relay will retry', { failed: failed.length, of, error: String(failed[0]?.reason?.message ?? failed[0]?.reason) });
    }
    return pending.filter((_, i) => rows[i]?.every((r) => r.status === 'fulfilled')).map((row) => row.id);
  }

  /** A row written before messages were grouped holds one message object, not a list. */
  function parseMessages(text: string): ScheduledMessage[] {
    const parsed = JSON.parse(text) as ScheduledMessage | ScheduledMessage[];
    return Array.isArray(parsed) ? parsed : [parsed];
  }

  const inFlight = new Set<Promise<void>>();
  /** Runs `work` as in flight, so that `idle` waits for it. */
  async function tracked(work: Promise<void>): Promise<void> {
    inFlight.add(work);
    try {
      await work;
    } finally {
      inFlight.delete(work);
    }
  }

  /**
   * Rows whose messages all went out leave the table together: one DELETE for the flushes of
   * the last `deleteDelayMs`, not one per flush. That is a round trip fewer per create batch,
   * and a batch's slot is free once the broker confirms. A crash in between leaves rows that the
   * relay publishes again (at least relayMinAgeMs later), which consumers take as duplicates.
   */
  let toDelete: number[] = [];
  let deleteTimer: NodeJS.Timeout | undefined;
  function deleteSoon(ids: number[]): void {
    if (ids.length === 0) return;
    toDelete.push(...ids);
    if (toDelete.length >= DELETE_MAX_IDS) void deleteNow();
    else if (!deleteTimer) deleteTimer = setTimeout(() => void deleteNow(), deps.deleteDelayMs ?? DELETE_DELAY_MS).unref();
  }
  async function deleteNow(): Promise<void> {
    clearTimeout(deleteTimer);
    deleteTimer = undefined;
    const ids = toDelete;
    toDelete = [];
    if (ids.length === 0) return;
    await tracked(
      db('outbox')
        .whereIn('id', ids)
        .delete()
        .then(
          () => undefined,
          (err: unknown) => {
            logger.warn('outbox delete failed; the relay may publish these again', { rows: ids.length, error: (err as Error).message });
          },
        ),
    );
  }

  const outbox: Outbox = {
    async add(trx, messages) {
      if (messages.length === 0) return undefined;
      const [id] = await outbox.addInsert(messages).transacting(trx);
      return { id: Number(id), messages };
    },
    addInsert(messages) {
      const kinds = new Set(messages.map((m) => m.destination));
      const kind = kinds.size === 1 ? messages[0]!.destination : 'mixed';
      return db('outbox').insert({ kind, topology: deps.topology, message: JSON.stringify(messages), created_at: new Date() });
    },
    async flush(maybePending) {
      const pending = maybePending.filter((row): row is PendingOutboxMessage => row !== undefined);
      if (pending.length === 0) return;
      await tracked(publishAll(pending).then(deleteSoon));
    },
    async idle() {
      // A flush that ends meanwhile may start a DELETE (its timer, or the size cap): wait for that too.
      while (inFlight.size > 0 || toDelete.length > 0) {
        await Promise.allSettled([...inFlight]);
        await deleteNow();
      }
    },
    async relayOnce() {
      // READ COMMITTED: the claim locks only the rows it takes, with no gap locks, so it never
      // holds up (or deadlocks with) the creates that insert new rows behind it.
      return db.transaction(async (trx) => {
        const cutoff = new Date(Date.now() - deps.relayMinAgeMs);
        const rows: Array<{ id: number; message: string }> = await trx('outbox')
          .select('id', 'message')
          .where((q) => q.where('topology', deps.topology).orWhereNull('topology'))
          .andWhere('created_at', '<', cutoff)
          .orderBy('id')
          .limit(deps.relayBatchSize)
          .forUpdate()
          .skipLocked();
        if (rows.length === 0) return 0;
        const published = await publishAll(rows.map((r) => ({ id: Number(r.id), messages: parseMessages(r.message) })));
        if (published.length > 0) await trx('outbox').whereIn('id', published).delete();
        return published.length;
      }, { isolationLevel: 'read committed' });
    },
    startRelay() {
      let running: Promise<void> | undefined;
      let stopped = false;
      // Full batches go again at once, so a backlog after an outage drains at publish speed.
      const drain = async (): Promise<number> => {
        let total = 0;
        while (!stopped) {
          const n = await outbox.relayOnce();
          total += n;
          if (n < deps.relayBatchSize) break;
        }
        return total;
      };
      const timer = setInterval(() => {
        if (running || stopped) return;
        running = drain()
          .then((n) => {
            if (n > 0) logger.info('outbox relay published leftovers', { rows: n });
          })
          .catch((err) => {
            logger.warn('outbox relay failed', { error: (err as Error).message });
          })
          .finally(() => {
            running = undefined;
          });
      }, deps.relayIntervalMs);
      timer.unref();
      return async () => {
        stopped = true;
        clearInterval(timer);
        await running; // a pass that holds rows finishes its publishes and its DELETE
      };
    },
  };
  return outbox;
}
