import type { Knex } from 'knex';
import type { Database } from '../infra/database';
import type { DelayScheduler, ScheduledMessage } from '../delay/delay-scheduler';
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
  /**
   * Publishes committed messages and deletes their rows by id; resolves when that is done.
   * Never throws: a row with any message the broker did not take stays in the table, and the
   * relay publishes it again (consumers take duplicates: a timer settles once, a notification
   * carries its event id).
   */
  flush(pending: Array<PendingOutboxMessage | undefined>): Promise<void>;
  /**
   * Like `flush`, but resolves as soon as the rows are queued for publishing, unless too many
   * messages already wait (then once there is room): a slow broker slows the caller down
   * instead of piling up memory.
   */
  enqueue(pending: Array<PendingOutboxMessage | undefined>): Promise<void>;
  /** Publishes leftovers older than the minimum age; returns how many went out. */
  relayOnce(): Promise<number>;
  /** Resolves when everything flushed or queued so far is published (graceful shutdown waits here). */
  idle(): Promise<void>;
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
  /** Messages queued for publishing beyond which `enqueue` makes its caller wait. */
  maxQueuedMessages?: number;
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

  /*
   * One publishing loop per process: each round takes every row queued so far, publishes their
   * messages side by side (confirms overlap) and deletes the rows the broker took with one
   * DELETE. Rows queued during a round go in the next one, so under load rounds grow and the
   * DELETEs per message fall (the same group commit as the creates).
   */
  const maxQueued = deps.maxQueuedMessages ?? 10_000;
  let queue: Array<{ row: PendingOutboxMessage; done: () => void }> = [];
  let queuedMessages = 0;
  let pumping = false;
  let pumped: Promise<void> = Promise.resolve();
  const roomWaiters: Array<() => void> = [];

  async function publishRound(round: Array<{ row: PendingOutboxMessage; done: () => void }>): Promise<void> {
    try {
      const published = await publishAll(round.map((q) => q.row));
      if (published.length > 0) await db('outbox').whereIn('id', published).delete();
    } catch (err) {
      logger.warn('outbox delete failed; the relay may publish these again', { error: (err as Error).message });
    }
    for (const q of round) {
      queuedMessages -= q.row.messages.length;
      q.done();
    }
    while (queuedMessages < maxQueued && roomWaiters.length > 0) roomWaiters.shift()?.();
  }

  function startPump(): void {
    if (pumping) return;
    pumping = true;
    pumped = (async () => {
      try {
        while (queue.length > 0) {
          const round = queue;
          queue = [];
          await publishRound(round);
        }
      } finally {
        pumping = false; // synchronously after the last round: a later call starts a new loop
      }
    })();
  }

  /** Queues the rows; returns when each is published (or left to the relay). */
  function publishQueued(maybePending: Array<PendingOutboxMessage | undefined>): Promise<void> {
    const rows = maybePending.filter((row): row is PendingOutboxMessage => row !== undefined);
    if (rows.length === 0) return Promise.resolve();
    const done = Promise.all(
      rows.map(
        (row) =>
          new Promise<void>((resolve) => {
            queue.push({ row, done: resolve });
            queuedMessages += row.messages.length;
          }),
      ),
    ).then(() => undefined);
    startPump();
    return done;
  }

  const outbox: Outbox = {
    async add(trx, messages) {
      if (messages.length === 0) return undefined;
      const kinds = new Set(messages.map((m) => m.destination));
      const kind = kinds.size === 1 ? messages[0]!.destination : 'mixed';
      const [id] = await trx('outbox').insert({ kind, message: JSON.stringify(messages), created_at: new Date() });
      return { id: Number(id), messages };
    },
    flush(pending) {
      return publishQueued(pending);
    },
    async enqueue(pending) {
      void publishQueued(pending);
      while (queuedMessages >= maxQueued) await new Promise<void>((resolve) => roomWaiters.push(resolve));
    },
    async idle() {
      while (pumping) await pumped;
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
        const published = await publishAll(rows.map((r) => ({ id: Number(r.id), messages: parseMessages(r.message) })));
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
          .then((n) => n > 0 && logger.info('outbox relay published leftovers', { rows: n }))
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
