import { createBatcher } from '../../src/shared/concurrency';

/** A run whose batches the test releases by hand, recording what each batch held. */
function controlledRun() {
  const batches: number[][] = [];
  const releases: Array<() => void> = [];
  const run = async (items: number[], answer: (results: Array<PromiseSettledResult<number>>) => void) => {
    batches.push(items);
    await new Promise<void>((resolve) => releases.push(resolve));
    answer(items.map((value) => (value < 0 ? { status: 'rejected', reason: new Error(`bad ${value}`) } : { status: 'fulfilled', value: value * 10 })));
  };
  return { batches, releases, run };
}

/** Room for every call these tests make. */
const roomy = { maxWaiting: 100, whenFull: () => new Error('full') };

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 2 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('createBatcher (group commit)', () => {
  it('when a call arrives alone, then it runs at once as a batch of one', async () => {
    const { batches, releases, run } = controlledRun();
    const call = createBatcher({ maxSize: 10, maxInFlight: 1, ...roomy, run });
    const result = call(1);
    expect(batches).toEqual([[1]]);
    releases[0]?.();
    await expect(result).resolves.toBe(10);
  });

  it('when calls arrive while the slots are busy, then they go together as the next batch, capped at maxSize', async () => {
    const { batches, releases, run } = controlledRun();
    const call = createBatcher({ maxSize: 3, maxInFlight: 1, ...roomy, run });
    const results = [1, 2, 3, 4, 5, 6].map((n) => call(n));
    expect(batches).toEqual([[1]]);
    releases[0]?.();
    await until(() => batches.length === 2);
    expect(batches[1]).toEqual([2, 3, 4]);
    releases[1]?.();
    await until(() => batches.length === 3);
    expect(batches[2]).toEqual([5, 6]);
    releases[2]?.();
    await expect(Promise.all(results)).resolves.toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('when maxInFlight is 2, then two batches run side by side and no third starts', async () => {
    const { batches, releases, run } = controlledRun();
    const call = createBatcher({ maxSize: 10, maxInFlight: 2, ...roomy, run });
    const results = [1, 2, 3, 4].map((n) => call(n));
    expect(batches).toEqual([[1], [2]]);
    releases[0]?.();
    await until(() => batches.length === 3);
    expect(batches[2]).toEqual([3, 4]);
    releases[1]?.();
    releases[2]?.();
    await expect(Promise.all(results)).resolves.toEqual([10, 20, 30, 40]);
  });

  it('when one item of a batch fails, then only its caller gets the error', async () => {
    const { releases, run } = controlledRun();
    const call = createBatcher({ maxSize: 10, maxInFlight: 1, ...roomy, run });
    const first = call(1);
    const rest = [call(2), call(-3), call(4)];
    releases[0]?.();
    await first;
    await until(() => releases.length === 2);
    releases[1]?.();
    const settled = await Promise.allSettled(rest);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('bad -3');
  });

  it('when the run throws before answering, then every caller of that batch gets the error and the next batch still runs', async () => {
    let calls = 0;
    const call = createBatcher<number, number>({
      maxSize: 10,
      maxInFlight: 1,
      ...roomy,
      run: async (items, answer) => {
        calls++;
        if (items.includes(13)) throw new Error('database down');
        answer(items.map((value) => ({ status: 'fulfilled', value })));
      },
    });
    const failing = Promise.allSettled([call(13)]);
    await expect(failing).resolves.toEqual([{ status: 'rejected', reason: new Error('database down') }]);
    await expect(call(7)).resolves.toBe(7);
    expect(calls).toBe(2);
  });

  it('when the run answers and then goes on working, then callers have their answer while the slot is still held', async () => {
    let finishFollowUp!: () => void;
    const started: number[][] = [];
    const call = createBatcher<number, number>({
      maxSize: 10,
      maxInFlight: 1,
      ...roomy,
      run: async (items, answer) => {
        started.push(items);
        answer(items.map((value) => ({ status: 'fulfilled', value })));
        await new Promise<void>((resolve) => {
          finishFollowUp = resolve;
        });
      },
    });
    await expect(call(1)).resolves.toBe(1);
    const second = call(2);
    expect(started).toEqual([[1]]); // the slot is held by the follow-up work
    finishFollowUp();
    await until(() => started.length === 2);
    finishFollowUp();
    await expect(second).resolves.toBe(2);
  });

  it('when maxWaiting calls already wait, then the next is refused at once and the waiting ones still run', async () => {
    const { batches, releases, run } = controlledRun();
    const call = createBatcher({ maxSize: 10, maxInFlight: 1, maxWaiting: 2, whenFull: () => new Error('too many waiting'), run });
    const running = call(1);
    const waiting = [call(2), call(3)];
    await expect(call(4)).rejects.toThrow('too many waiting');
    releases[0]?.();
    await until(() => batches.length === 2);
    releases[1]?.();
    await expect(Promise.all([running, ...waiting])).resolves.toEqual([10, 20, 30]);
    expect(batches).toEqual([[1], [2, 3]]);
  });
});
