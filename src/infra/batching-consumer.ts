import type { Broker, ConsumerHandle, Delivery } from './broker';
import { databaseErrorKind } from './database';
import type { Logger } from '../shared/logger';

/**
 * How a failed batch recovers (rascal's model, one decision per error): `retry` tries it again
 * in place with capped backoff, for what passes with time (a database or broker away, a lock
 * conflict); `park` isolates the failing message at once and parks it, for what never passes
 * (a value the database refuses). The attempt cap turns a `retry` into `park` too. Anything a
 * component can answer itself (a channel's error, a merchant's 500) it answers through the
 * delay levels before it ever throws.
 */
export type FailureKind = 'retry' | 'park';

/** The classifier the components use: only a bad value is known never to pass. */
export function failureKindOf(err: unknown): FailureKind {
  return databaseErrorKind(err) === 'bad_value' ? 'park' : 'retry';
}

export interface BatchingConsumer {
  /** Cancels the subscription, settles what is buffered and waits for in-flight batches. */
  stop(): Promise<void>;
}

/**
 * Collects deliveries into batches and hands each batch to `handleBatch`, which acks what it
 * settled. At most prefetch / batchSize batches run at once (group commit, as for creates): a
 * delivery that finds a slot free waits only `batchWaitMs` for others to join it (0: the rest of
 * the current socket read), while deliveries that arrive when every slot is busy wait for one
 * to finish and then go together, up to `batchSize`. So a quiet queue settles at once and a
 * backlog in full batches. A batch that throws (database down) is retried in-process with
 * capped backoff: its messages stay unacked and are never requeued in a tight loop; if the
 * process dies the broker redelivers them. A batch that keeps failing, or fails in a way that
 * never passes (`classify`), is split until the message that fails is alone, and that one is
 * parked (see runWithRetry).
 */
export async function startBatchingConsumer(deps: {
  broker: Broker;
  queue: string;
  prefetch: number;
  batchSize: number;
  batchWaitMs: number;
  logger: Logger;
  handleBatch: (deliveries: Delivery[]) => Promise<void>;
  onBatch?: (size: number) => void;
  /** Attempts before a failing batch is split, and a failing single message poisoned (default 8). */
  maxAttempts?: number;
  /** Parks and acks one message that failed `maxAttempts` times alone; without it, retries never stop. */
  onPoison?: (delivery: Delivery, error: unknown) => Promise<void>;
  /** The component's recovery by error kind (default: always retry, up to the cap). */
  classify?: (err: unknown) => FailureKind;
}): Promise<BatchingConsumer> {
  const { logger } = deps;
  const maxInFlight = Math.max(1, Math.ceil(deps.prefetch / deps.batchSize));
  let buffer: Delivery[] = [];
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();

  const maxAttempts = deps.maxAttempts ?? 8;
  const backoff = (attempt: number) => Math.min(10000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2);

  /**
   * Retries a failing batch with capped backoff. After `maxAttempts` it is split in halves that
   * retry on their own, so one message that always fails cannot hold up the others; a single
   * message that still fails goes to `onPoison` (which parks and acks it). When that fails too
   * (the database is down) it keeps retrying: nothing is acked that is not settled or parked.
   */
  async function runWithRetry(batch: Delivery[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      // A retry only carries what the failed attempt did not already settle.
      const pending = attempt === 0 ? batch : batch.filter((d) => !d.settled);
      if (pending.length === 0) return;
      try {
        await deps.handleBatch(pending);
        return;
      } catch (err) {
        if (stopping) {
          logger.warn('batch failed during shutdown; the broker will redeliver it', { queue: deps.queue, error: String(err) });
          return;
        }
        if (deps.onPoison && (attempt + 1 >= maxAttempts || deps.classify?.(err) === 'park')) {
          if (pending.length > 1) {
            const half = Math.ceil(pending.length / 2);
            logger.warn('batch keeps failing; splitting it', { queue: deps.queue, size: pending.length, attempts: attempt + 1, error: String(err) });
            await Promise.all([runWithRetry(pending.slice(0, half)), runWithRetry(pending.slice(half))]);
            return;
          }
          const poisoned = await deps.onPoison(pending[0] as Delivery, err).then(
            () => true,
            (parkErr: unknown) => {
              logger.warn('a message that keeps failing could not be parked; retrying', { queue: deps.queue, error: String(parkErr) });
              return false;
            },
          );
          if (poisoned) return;
        }
        const delay = backoff(Math.min(attempt, 6));
        logger.warn('batch failed; retrying', { queue: deps.queue, size: pending.length, attempt: attempt + 1, delayMs: Math.round(delay), error: String(err) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  function cancelTimer(): void {
    if (timer === undefined) return;
    if (deps.batchWaitMs > 0) clearTimeout(timer as NodeJS.Timeout);
    else clearImmediate(timer as NodeJS.Immediate);
    timer = undefined;
  }

  function flush(): void {
    cancelTimer();
    if (buffer.length === 0) return;
    const batch = buffer.slice(0, deps.batchSize);
    buffer = buffer.slice(batch.length);
    deps.onBatch?.(batch.length);
    const p = runWithRetry(batch).finally(() => {
      inFlight.delete(p);
      // What arrived while every slot was busy goes now.
      if (buffer.length > 0) flushSoon();
    });
    inFlight.add(p);
  }

  /** Starts a batch after the wait, if a slot is free; otherwise a finishing batch will. */
  function flushSoon(): void {
    if (timer !== undefined || inFlight.size >= maxInFlight) return;
    timer = deps.batchWaitMs > 0 ? setTimeout(flush, deps.batchWaitMs) : setImmediate(flush);
  }

  const handle: ConsumerHandle = await deps.broker.consume(deps.queue, deps.prefetch, (delivery) => {
    buffer.push(delivery);
    if (buffer.length >= deps.batchSize) flush();
    else flushSoon();
  });

  return {
    async stop() {
      await handle.cancel();
      stopping = false; // buffered deliveries are still settled normally
      while (buffer.length > 0) flush();
      stopping = true;
      await Promise.all([...inFlight]);
    },
  };
}

/**
 * One message at a time, `prefetch` of them in flight (notifications, intents): each is handled
 * on its own, with the batching consumer's retry, classification and poison parking.
 */
export function startMessageConsumer(deps: {
  broker: Broker;
  queue: string;
  prefetch: number;
  logger: Logger;
  handle: (delivery: Delivery) => Promise<void>;
  onPoison: (delivery: Delivery, error: unknown) => Promise<void>;
}): Promise<BatchingConsumer> {
  return startBatchingConsumer({
    broker: deps.broker,
    queue: deps.queue,
    prefetch: deps.prefetch,
    batchSize: 1,
    batchWaitMs: 0,
    logger: deps.logger,
    handleBatch: async (deliveries) => {
      await Promise.all(deliveries.map((d) => deps.handle(d)));
    },
    onPoison: deps.onPoison,
    classify: failureKindOf,
  });
}

