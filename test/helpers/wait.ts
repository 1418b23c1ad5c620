/**
 * The one poll with a deadline, for the tests and the benchmark (scripts/bench/common.ts): polls
 * until `check` returns a truthy value, or fails with `what` after `timeoutMs`. A check that
 * throws is tried again (the last error is in the timeout's message); `abort` runs before every
 * try and may throw to stop at once (the benchmark's signal handling).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 20000,
  intervalMs = 100,
  options: { abort?: () => void } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    options.abort?.();
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
