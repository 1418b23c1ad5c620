/**
 * A per-channel cap on queries (channels throttle merchants that call too fast). A caller over
 * the cap waits for its turn rather than failing: a burst of due timers then drains at the
 * channel's rate instead of spending its retries on our own limit. The batch's channel
 * concurrency bounds how many wait.
 */
export interface RateLimiter {
  /** Resolves when the call may go. */
  take(): Promise<void>;
}

export function createRateLimiter(perSecond: number, now: () => number = Date.now): RateLimiter {
  const interval = 1000 / perSecond;
  let next = 0; // when the next call may go
  return {
    async take() {
      const at = now();
      const slot = Math.max(at, next);
      next = slot + interval;
      if (slot > at) await new Promise((resolve) => setTimeout(resolve, slot - at));
    },
  };
}
