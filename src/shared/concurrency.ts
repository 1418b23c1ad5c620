/** Maps with at most `limit` calls in flight; results keep the input order. */
export async function mapWithConcurrency<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function groupBy<T, K>(items: T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/**
 * Group commit: calls that arrive while `maxInFlight` batches are running wait and then go
 * together as one batch of at most `maxSize`. Alone, a call runs at once, so a quiet system
 * adds no delay; under load the batches grow and the round trips per call shrink.
 * `run` answers each item of its batch (same order) through `answer`, and may go on with
 * follow-up work that still holds the batch's slot (that is the backpressure). If it throws
 * before answering, every item gets the error.
 */
export function createBatcher<In, Out>(options: {
  maxSize: number;
  maxInFlight: number;
  /** Calls waiting beyond this are refused at once with `whenFull()` (the database is slow or down). */
  maxWaiting: number;
  whenFull: () => Error;
  run: (items: In[], answer: (results: Array<PromiseSettledResult<Out>>) => void) => Promise<void>;
}): (item: In) => Promise<Out> {
  type Waiting = { item: In; resolve: (value: Out) => void; reject: (reason: unknown) => void };
  const queue: Waiting[] = [];
  let inFlight = 0;

  function runBatch(batch: Waiting[]): void {
    let answered = false;
    const answer = (results: Array<PromiseSettledResult<Out>>) => {
      if (answered) return;
      answered = true;
      batch.forEach((b, i) => {
        const r = results[i];
        if (r?.status === 'fulfilled') b.resolve(r.value);
        else b.reject(r ? r.reason : new Error('the batch gave no answer for this call'));
      });
    };
    inFlight++;
    options
      .run(batch.map((b) => b.item), answer)
      .then(
        () => answer([]),
        (err: unknown) => answer(batch.map(() => ({ status: 'rejected', reason: err }))),
      )
      .finally(() => {
        inFlight--;
        startBatches();
      });
  }

  function startBatches(): void {
    while (inFlight < options.maxInFlight && queue.length > 0) runBatch(queue.splice(0, options.maxSize));
  }

  return (item) =>
    new Promise<Out>((resolve, reject) => {
      if (queue.length >= options.maxWaiting) {
        reject(options.whenFull());
        return;
      }
      queue.push({ item, resolve, reject });
      startBatches();
    });
}
