import { z } from 'zod';
import type { ConsumeMessage } from 'amqplib';
import { HEADERS } from '../infra/broker-topology';
import { MAX_DELAY_SECONDS } from '../delay/delay-levels';

const timerSchema = z.object({
  paymentId: z.number().int().positive(),
  deadline: z.number().int().positive(),
  attempt: z.number().int().min(1),
});
export type TimerMessage = z.infer<typeof timerSchema>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Our messages are a few hundred bytes; anything this large is not one of them. */
export const MAX_MESSAGE_BYTES = 16 * 1024;

/** Reads a delivery's JSON body with a schema; anything unreadable is reported, never thrown. */
export function parseMessage<T>(schema: z.ZodType<T>, message: ConsumeMessage): Parsed<T> {
  if (message.content.length > MAX_MESSAGE_BYTES) return { ok: false, error: `body is ${message.content.length} bytes, more than ${MAX_MESSAGE_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(message.content.toString('utf8'));
  } catch {
    return { ok: false, error: 'body is not JSON' };
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    return { ok: false, error: result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') };
  }
  return { ok: true, value: result.data };
}

/** The attempt travels in our own header (never x-death); the body's copy is the fallback. */
export function attemptOf(message: ConsumeMessage, fallback: number): number {
  const header = Number(message.properties.headers?.[HEADERS.attempt]);
  return Number.isInteger(header) && header >= 1 ? header : fallback;
}

/**
 * A deadline the delay levels cannot hold (more than 30 days after `now`) is malformed: no
 * re-schedule could take it, so it is parked instead of failing its batch forever.
 */
export function deadlineProblem(deadline: number, now: number): string | undefined {
  return deadline - now > MAX_DELAY_SECONDS * 1000 ? `deadline ${new Date(deadline).toISOString()} is more than ${MAX_DELAY_SECONDS} s away` : undefined;
}

export function parseTimer(message: ConsumeMessage, now = Date.now()): Parsed<TimerMessage> {
  const parsed = parseMessage(timerSchema, message);
  if (!parsed.ok) return parsed;
  const problem = deadlineProblem(parsed.value.deadline, now);
  return problem ? { ok: false, error: problem } : { ok: true, value: { ...parsed.value, attempt: attemptOf(message, parsed.value.attempt) } };
}
