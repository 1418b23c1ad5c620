import type { ConsumeMessage } from 'amqplib';
import { z } from 'zod';
import { SCHEMA_VERSION, parseBody, parseScheduled, scheduledFields, type Parsed, type ScheduledMessage } from './envelope';
import { DESTINATIONS } from './topology';

/** A payment's timer: due at its deadline, then the compensation workers settle the payment. */
const timerSchema = z.object({ paymentId: z.number().int().positive(), ...scheduledFields });
export type TimerMessage = z.infer<typeof timerSchema>;

/** The one builder: the payment's first timer, a remedy retry, the rest of an early one, a replay. */
export function timerMessage(t: { paymentId: number; deadline: number; attempt: number; correlationId?: string }): ScheduledMessage {
  return { destination: DESTINATIONS.paymentTimer, deadline: t.deadline, attempt: t.attempt, correlationId: t.correlationId, body: { v: SCHEMA_VERSION, paymentId: t.paymentId } };
}

/** The one parser of a delivery. */
export function parseTimer(message: ConsumeMessage, now = Date.now()): Parsed<TimerMessage> {
  return parseScheduled(timerSchema, message, now);
}

/** A stored body (a parked item) read back, without its scheduling fields. */
export function parseTimerBody(json: unknown): Parsed<{ paymentId: number }> {
  return parseBody(timerSchema.pick({ paymentId: true, v: true }), json);
}
