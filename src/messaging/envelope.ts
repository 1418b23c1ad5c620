import type { ConsumeMessage } from 'amqplib';
import { z } from 'zod';
import { MAX_DELAY_SECONDS } from './delay-levels';
import { HEADERS, type Destination } from './topology';

/**
 * What every message that crosses the broker shares: a destination, an absolute deadline and an
 * attempt (in our own headers and in the body), and a schema version in the body. The message
 * types are timer-message.ts and notification-message.ts; each has one builder and one parser.
 */

/** The body's schema version. A body without one was published before versions existed: v1. */
export const SCHEMA_VERSION = 1;
export const versionField = z.literal(SCHEMA_VERSION).optional();

/** A message to deliver to `destination` no earlier than `deadline` (epoch ms). */
export interface ScheduledMessage {
  destination: Destination;
  deadline: number;
  attempt: number;
  body: Record<string, unknown>;
  correlationId?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Our messages are a few hundred bytes; anything this large is not one of them. */
export const MAX_MESSAGE_BYTES = 16 * 1024;

/** Checks a decoded body against a schema; anything else is reported, never thrown. */
export function parseBody<T>(schema: z.ZodType<T>, json: unknown): Parsed<T> {
  const result = schema.safeParse(json);
  if (!result.success) {
    return { ok: false, error: result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') };
  }
  return { ok: true, value: result.data };
}

/**
 * A message type's check of its common shape by hand, for a hot path: the value when the body
 * is plainly valid, undefined to let the schema decide (and word the error). It must accept
 * only what the schema accepts, with the same result; a test holds each one to its schema.
 */
export type FastCheck<T> = (json: unknown) => T | undefined;

/** Reads a delivery's JSON body with a schema; anything unreadable is reported, never thrown. */
export function parseDelivery<T>(schema: z.ZodType<T>, message: ConsumeMessage, fast?: FastCheck<T>): Parsed<T> {
  if (message.content.length > MAX_MESSAGE_BYTES) return { ok: false, error: `body is ${message.content.length} bytes, more than ${MAX_MESSAGE_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(message.content.toString('utf8'));
  } catch {
    return { ok: false, error: 'body is not JSON' };
  }
  const value = fast?.(json);
  return value !== undefined ? { ok: true, value } : parseBody(schema, json);
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

/**
 * A delivery of a scheduled message: its body by the schema, its deadline within reach, and the
 * attempt from our header. `deadline` and `attempt` are the scheduler's fields of every body.
 */
export function parseScheduled<T extends { deadline: number; attempt: number }>(schema: z.ZodType<T>, message: ConsumeMessage, now: number, fast?: FastCheck<T>): Parsed<T> {
  const parsed = parseDelivery(schema, message, fast);
  if (!parsed.ok) return parsed;
  const problem = deadlineProblem(parsed.value.deadline, now);
  return problem ? { ok: false, error: problem } : { ok: true, value: { ...parsed.value, attempt: attemptOf(message, parsed.value.attempt) } };
}

/** What `z.number().int().positive()` accepts, for the fast checks. */
export const isPositiveInteger = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;

/** The scheduler's fields, in every body (delay/delay-scheduler.ts writes them). */
export const scheduledFields = {
  v: versionField,
  deadline: z.number().int().positive(),
  attempt: z.number().int().min(1),
};
