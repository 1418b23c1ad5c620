import { createRateLimiter } from '../../src/channels/rate-limiter';

describe('the per-channel query limiter', () => {
  it('when calls come faster than the rate, then they are spaced at the rate, and past the wait cap refused as busy without taking a slot', async () => {
    let clock = 1_000_000;
    const limiter = createRateLimiter(20, 1000, () => clock);
    // 20/s is a slot every 50 ms: with the clock held, slots 0..1000 ms ahead are taken, then refused.
    const taken: Array<Promise<void>> = [];
    for (let i = 0; i <= 20; i++) taken.push(limiter.take());
    await expect(limiter.take()).rejects.toMatchObject({ name: 'OutboundError', kind: 'busy' });
    // Once time passes, calls are taken again, from the first free slot.
    clock += 2000;
    await expect(limiter.take()).resolves.toBeUndefined();
    await Promise.all(taken);
  });
});
