/**
 * Binary delay levels (NServiceBus / Kombu style). Level k is a queue whose x-message-ttl is
 * 2^k seconds; a message's remaining delay is written into its routing key as one word per
 * level, most significant first, so it only waits in the levels of its set bits.
 */
export const LEVEL_COUNT = 22; // levels 0..21: up to 2^22 - 1 s (48 days) fits
export const TOP_LEVEL = LEVEL_COUNT - 1;
export const MAX_DELAY_SECONDS = 2_592_000; // 30 days, the API's limit

export function assertValidDelay(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DELAY_SECONDS) {
    throw new RangeError(`delay must be a whole number of seconds from 1 to ${MAX_DELAY_SECONDS}, got ${seconds}`);
  }
}

/** The levels a delay passes through, highest first; their TTLs add up to the delay. */
export function decomposeDelay(seconds: number): number[] {
  assertValidDelay(seconds);
  const levels: number[] = [];
  for (let k = TOP_LEVEL; k >= 0; k--) if (seconds & (2 ** k)) levels.push(k);
  return levels;
}

/** The level of a delay's highest set bit: where it starts waiting. */
export function highestLevel(seconds: number): number {
  assertValidDelay(seconds);
  return Math.floor(Math.log2(seconds));
}

/** Routing key for a delay and a destination, e.g. "0.0.…1.0.1.payment.timer.due". */
export function delayRoutingKey(seconds: number, destination: string): string {
  const bits: string[] = [];
  for (let k = TOP_LEVEL; k >= 0; k--) bits.push(seconds > 0 && seconds & (2 ** k) ? '1' : '0');
  return `${bits.join('.')}.${destination}`;
}

/** Binding pattern on level k's exchange that matches bit k set (bitSet) or clear. */
export function levelBindingPattern(level: number, bitSet: boolean): string {
  return `${'*.'.repeat(TOP_LEVEL - level)}${bitSet ? '1' : '0'}.#`;
}

/** Whole seconds until a deadline, rounded up so a timer can never arrive early. */
export function secondsUntil(deadlineMs: number, nowMs: number): number {
  return Math.max(0, Math.ceil((deadlineMs - nowMs) / 1000));
}

export function levelTtlSeconds(level: number): number {
  return 2 ** level;
}
