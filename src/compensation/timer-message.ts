import { z } from 'zod';
import type { ConsumeMessage } from 'amqplib';
import { HEADERS } from '../infra/broker-topology';

const timerSchema = z.object({
  paymentId: z.number().int().positive(),
  deadline: z.number().int().positive(),
  attempt: z.number().int().min(1),
});
export type TimerMessage = z.infer<typeof timerSchema>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Reads a delivery's JSON body with a schema; anything unreadable is reported, never thrown. */
export function parseMessage<T>(schema: z.ZodType<T>, message: ConsumeMessage): Parsed<T> {
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

export function parseTimer(message: ConsumeMessage): Parsed<TimerMessage> {
  const parsed = parseMessage(timerSchema, message);
  return parsed.ok ? { ok: true, value: { ...parsed.value, attempt: attemptOf(message, parsed.value.attempt) } } : parsed;
}
