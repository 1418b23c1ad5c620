/**
 * The retry schedule shared by remedy and notification retries: after attempt n fails, attempt
 * n+1 is due schedule[n-1] seconds later; once the schedule runs out the item is parked.
 */
export function nextAttempt(schedule: readonly number[], failedAttempt: number, nowMs: number): { attempt: number; deadline: number } | undefined {
  const delaySeconds = schedule[failedAttempt - 1];
  if (delaySeconds === undefined) return undefined;
  return { attempt: failedAttempt + 1, deadline: nowMs + delaySeconds * 1000 };
}
