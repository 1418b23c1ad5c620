import type { ConsumeMessage } from 'amqplib';
import { z } from 'zod';
import { SCHEMA_VERSION, isPositiveInteger, parseBody, parseScheduled, scheduledFields, type Parsed, type ScheduledMessage } from './envelope';
import { DESTINATIONS } from './topology';

/** A payment's timer: due at its deadline, then the compensation workers settle the payment. */
const timerSchema = z.object({ paymentId: z.number().int().positive(), ...scheduledFields });
export type TimerMessage = z.infer<typeof timerSchema>;

/** The one builder: the payment's first timer, a remedy retry, the rest of an early one, a replay. */
export function timerMessage(t: { paymentId: number; deadline: number; attempt: number; correlationId?: string }): ScheduledMessage {
  return { destination: DESTINATIONS.paymentTimer, deadline: t.deadline, attempt: t.attempt, correlationId: t.correlationId, body: { v: SCHEMA_VERSION, paymentId: t.paymentId } };
}

/**
 * timerSchema's common case by hand: a worker parses every timer, and the schema's own check
 * cost it more than the rest of reading the message (npm run bench:worker). Anything else,
 * extra keys included, goes to the schema.
 */
export function timerFastCheck(json: unknown): TimerMessage | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const body = json as Record<string, unknown>;
  const { v, paymentId, deadline, attempt } = body;
  if (Object.keys(body).length !== (v === undefined ? 3 : 4)) return undefined;
  if ((v !== undefined && v !== SCHEMA_VERSION) || !isPositiveInteger(paymentId) || !isPositiveInteger(deadline) || !isPositiveInteger(attempt)) return undefined;
  return v === undefined ? { paymentId, deadline, attempt } : { paymentId, v, deadline, attempt };
}

/** The one parser of a delivery. */
export function parseTimer(message: ConsumeMessage, now = Date.now()): Parsed<TimerMessage> {
  return parseScheduled(timerSchema, message, now, timerFastCheck);
}

/** The schema itself, for the test that holds timerFastCheck to it. */
export const timerSchemaForTests = timerSchema;

/** A stored body (a parked item) read back, without its scheduling fields. */
export function parseTimerBody(json: unknown): Parsed<{ paymentId: number }> {
  return parseBody(timerSchema.pick({ paymentId: true, v: true }), json);
}
