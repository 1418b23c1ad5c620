import { OutboundError } from '../shared/outbound-http';

/**
 * A per-channel cap on queries (channels throttle merchants that call too fast). A caller over
 * the cap waits for its turn rather than failing, so a burst of due timers drains at the
 * channel's rate instead of spending its retries on our own limit; the batch's channel
 * concurrency bounds how many wait. The wait itself is bounded: past `maxWaitMs` (a flood of
 * cancels, say) the call is refused as `busy`, which the worker retries later and a cancel
 * answers 503, so one caller cannot queue every other behind it for minutes.
 */
export interface RateLimiter {
  /** Resolves when the call may go; throws OutboundError('busy') when that is too far off. */
  take(): Promise<void>;
}

export function createRateLimiter(perSecond: number, maxWaitMs = 5000, now: () => number = Date.now): RateLimiter {
  const interval = 1000 / perSecond;
  let next = 0; // when the next call may go
  return {
    async take() {
      const at = now();
      const slot = Math.max(at, next);
      if (slot - at > maxWaitMs) throw new OutboundError('busy', `more than ${perSecond} channel calls per second are waiting; try again later`);
      next = slot + interval;
      if (slot > at) await new Promise((resolve) => setTimeout(resolve, slot - at));
    },
  };
}
