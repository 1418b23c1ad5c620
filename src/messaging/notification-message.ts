import type { ConsumeMessage } from 'amqplib';
import { z } from 'zod';
import { SCHEMA_VERSION, parseBody, parseScheduled, scheduledFields, type Parsed, type ScheduledMessage } from './envelope';
import { DESTINATIONS } from './topology';

/** A merchant notification: one event of one payment, delivered at-least-once under its event id. */
const contentSchema = z.object({
  eventId: z.string().min(1),
  type: z.string().min(1),
  paymentId: z.number().int().positive(),
  notifyUrl: z.string().url(),
  payment: z.record(z.string(), z.unknown()),
});
const notificationSchema = contentSchema.extend(scheduledFields);
export type NotificationContent = z.infer<typeof contentSchema>;
export type NotificationMessage = z.infer<typeof notificationSchema>;

/** The one builder: the first delivery (written by the settling transaction), a retry, a replay. */
export function notificationMessage(n: NotificationContent & { deadline: number; attempt: number; correlationId?: string }): ScheduledMessage {
  const { eventId, type, paymentId, notifyUrl, payment } = n;
  return { destination: DESTINATIONS.notification, deadline: n.deadline, attempt: n.attempt, correlationId: n.correlationId, body: { v: SCHEMA_VERSION, eventId, type, paymentId, notifyUrl, payment } };
}

/** The one parser of a delivery. */
export function parseNotification(message: ConsumeMessage, now = Date.now()): Parsed<NotificationMessage> {
  return parseScheduled(notificationSchema, message, now);
}

/** A stored body (a parked item) read back, without its scheduling fields. */
export function parseNotificationBody(json: unknown): Parsed<NotificationContent> {
  return parseBody(contentSchema.extend({ v: scheduledFields.v }), json);
}
