import type { Broker, ConsumerHandle, Delivery } from './broker';
import type { Logger } from '../shared/logger';

export interface BatchingConsumer {
  /** Cancels the subscription, settles what is buffered and waits for in-flight batches. */
  stop(): Promise<void>;
}

/**
 * Collects deliveries into batches of up to `batchSize`, or whatever arrived within
 * `batchWaitMs`, and hands each batch to `handleBatch`, which acks what it settled. A batch that
 * throws (database down) is retried in-process with capped backoff: its messages stay unacked
 * and are never requeued in a tight loop; if the process dies the broker redelivers them.
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
}): Promise<BatchingConsumer> {
  const { logger } = deps;
  let buffer: Delivery[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();

  async function runWithRetry(batch: Delivery[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // A retry only carries what the failed attempt did not already settle.
        await deps.handleBatch(attempt === 0 ? batch : batch.filter((d) => !d.settled));
        return;
      } catch (err) {
        if (stopping) {
          logger.warn('batch failed during shutdown; the broker will redeliver it', { queue: deps.queue, error: String(err) });
          return;
        }
        const delay = Math.min(10000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2);
        logger.warn('batch failed; retrying', { queue: deps.queue, size: batch.length, attempt: attempt + 1, delayMs: Math.round(delay), error: String(err) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    deps.onBatch?.(batch.length);
    const p = runWithRetry(batch).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }

  const handle: ConsumerHandle = await deps.broker.consume(deps.queue, deps.prefetch, (delivery) => {
    buffer.push(delivery);
    if (buffer.length >= deps.batchSize) flush();
    else timer ??= setTimeout(flush, deps.batchWaitMs);
  });

  return {
    async stop() {
      await handle.cancel();
      stopping = false; // buffered deliveries are still settled normally
      flush();
      stopping = true;
      await Promise.all([...inFlight]);
    },
  };
}
