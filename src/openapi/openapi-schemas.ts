import { z } from 'zod';
import type { ErrorCode } from '../shared/errors';

/*
 * The shapes the API answers with, as zod schemas, each registered under the component name the
 * OpenAPI document gives it (openapi-document.ts). The requests are validated by their own
 * components' schemas (payments-schemas.ts, merchants-schemas.ts, ...); the tests check every
 * answer of a real app against these (test/integration/openapi.test.ts, client.test.ts).
 */

/** Component schemas of answers, rendered with `io: 'output'`. */
export const responseSchemas = z.registry<{ id: string; description?: string }>();

/** Every error code with the HTTP status it is answered with (README.md, "HTTP API"). */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const satisfies Record<ErrorCode, number>;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

const timestamp = z.iso.datetime().meta({ description: 'ISO-8601 UTC with milliseconds' });

export const paymentStatusSchema = z.enum(['PENDING', 'PAID', 'FAILED', 'CLOSED', 'PAID_AFTER_CLOSE']).register(responseSchemas, {
  id: 'PaymentStatus',
  description: 'PENDING until the channel answers; PAID_AFTER_CLOSE is money taken after the timer closed the payment (surfaced for refund).',
});

export const paymentSchema = z
  .object({
    id: z.string().meta({ description: 'Opaque and non-sequential: "pay_" and 22 base62 characters', examples: ['pay_3kQ9xZ0aB1cD2eF3gH4iJ5'] }),
    merchantId: z.string(),
    orderId: z.string(),
    amount: z.number().int().meta({ description: 'Integer minor units' }),
    currency: z.string().meta({ description: 'ISO 4217 code', examples: ['CNY'] }),
    channel: z.string(),
    status: paymentStatusSchema,
    createdAt: timestamp,
    expiresAt: timestamp,
    paidAt: timestamp.nullable(),
    closedAt: timestamp.nullable(),
    transactionId: z.string().nullable().meta({ description: "The channel's transaction id once paid" }),
  })
  .strict()
  .register(responseSchemas, { id: 'Payment', description: 'The payment resource' });

export const errorCodeSchema = z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]).register(responseSchemas, {
  id: 'ErrorCode',
  description: ERROR_CODES.map((code) => `${code} (${ERROR_STATUS[code]})`).join(', '),
});

export const errorSchema = z
  .object({
    error: z
      .object({
        code: errorCodeSchema,
        message: z.string().meta({ description: 'For people; a 500 never carries internal messages' }),
        details: z.array(z.object({ path: z.string(), message: z.string() }).strict()).optional(),
      })
      .strict(),
  })
  .strict()
  .register(responseSchemas, { id: 'Error', description: 'Every error has this shape' });

export const paymentEventSchema = z
  .object({
    at: timestamp,
    from: paymentStatusSchema.nullable().meta({ description: 'null for the creation' }),
    to: paymentStatusSchema.meta({ description: 'Equal to from for a recorded non-transition (a remedy retry, a delivered notification, a parking)' }),
    cause: z.string().meta({ examples: ['created', 'callback', 'late_callback', 'remedy', 'timeout', 'merchant_cancel', 'amount_mismatch', 'callback_conflict', 'remedy_retry', 'notification_delivered', 'parked'] }),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .strict()
  .register(responseSchemas, { id: 'PaymentEvent', description: "One entry of a payment's timeline" });

export const paymentEventsSchema = z.object({ events: z.array(paymentEventSchema) }).strict().register(responseSchemas, { id: 'PaymentEvents', description: 'Oldest first' });

/** The body merchants receive at their notifyUrl (signed per Standard Webhooks). */
export const notificationEventSchema = z
  .object({
    eventId: z.string().meta({ description: 'The same as the webhook-id header, the same on every attempt' }),
    type: z.enum(['payment.paid', 'payment.failed', 'payment.closed', 'payment.paid_after_close']),
    payment: paymentSchema,
  })
  .strict()
  .register(responseSchemas, { id: 'NotificationEvent' });

// Admin: merchants and their credentials.
const issuedKeyShape = { id: z.string().meta({ examples: ['key_0123456789abcdef'] }), key: z.string().meta({ description: 'sk_...; shown only in this answer' }) };
export const issuedKeySchema = z.object(issuedKeyShape).strict().register(responseSchemas, { id: 'IssuedKey' });

export const registeredMerchantSchema = z
  .object({
    merchantId: z.string(),
    name: z.string(),
    notifyUrl: z.string(),
    createdAt: timestamp,
    apiKey: issuedKeySchema,
    webhookSecret: z.string().meta({ description: 'whsec_ and base64 of 32 bytes; shown only in this answer' }),
  })
  .strict()
  .register(responseSchemas, { id: 'RegisteredMerchant' });

export const merchantSchema = z
  .object({
    merchantId: z.string(),
    name: z.string(),
    notifyUrl: z.string(),
    createdAt: timestamp,
    apiKeys: z.array(z.object({ id: z.string(), createdAt: timestamp, revokedAt: timestamp.nullable() }).strict()),
  })
  .strict()
  .register(responseSchemas, { id: 'Merchant', description: 'A merchant with its key ids, never a secret' });

export const merchantListSchema = z.object({ merchants: z.array(merchantSchema) }).strict().register(responseSchemas, { id: 'MerchantList' });

export const webhookSecretSchema = z.object({ webhookSecret: z.string() }).strict().register(responseSchemas, { id: 'WebhookSecret' });

export const platformKeyListSchema = z
  .object({
    platformKeys: z.array(
      z
        .object({
          id: z.string(),
          merchants: z.array(z.string()),
          amqpUser: z.string().nullable().meta({ description: 'The RabbitMQ user whose payment intents act with this key' }),
          createdAt: timestamp,
          revokedAt: timestamp.nullable(),
        })
        .strict(),
    ),
  })
  .strict()
  .register(responseSchemas, { id: 'PlatformKeyList' });

// Admin: operations.
export const adminPaymentSchema = z
  .object({ payment: paymentSchema, events: z.array(paymentEventSchema) })
  .strict()
  .register(responseSchemas, { id: 'AdminPayment', description: 'Any merchant\'s payment with its timeline, oldest first' });

const count = z.number().int().min(0);
export const paymentStatsSchema = z
  .object({
    window: count,
    byStatus: z.record(z.string(), count),
    overdueOver60s: count,
    closedLatenessMs: z.object({ buckets: z.array(z.object({ le: z.number(), count }).strict()), over: count }).strict(),
  })
  .strict()
  .register(responseSchemas, { id: 'PaymentStats' });

export const backlogSchema = z
  .object({
    queues: z.array(
      z
        .object({
          name: z.string(),
          ready: count,
          unacked: count,
          deadLetterPending: count,
          publishRate: z.number(),
          deliverRate: z.number(),
          consumers: count,
          consoleUrl: z.string(),
        })
        .strict(),
    ),
    delayLevels: z.object({ queues: count, messages: count, deadLetterPending: count }).strict(),
    timersDueWithin32s: count,
    timersDueWithin64s: count,
    consoleUrl: z.string(),
  })
  .strict()
  .register(responseSchemas, { id: 'Backlog' });

export const parkedItemsSchema = z
  .object({
    items: z.array(
      z
        .object({
          id: z.number().int(),
          purpose: z.string(),
          reason: z.string(),
          paymentId: z.string().nullable(),
          attempts: count,
          lastError: z.string().nullable(),
          parkedAt: timestamp,
          correlationId: z.string().nullable(),
          message: z.string(),
        })
        .strict(),
    ),
    nextBefore: z.number().int().optional().meta({ description: 'Pass as `before` for the next page; absent on the last one' }),
  })
  .strict()
  .register(responseSchemas, { id: 'ParkedItems' });

export const replayedSchema = z.object({ replayed: z.number().int() }).strict().register(responseSchemas, { id: 'Replayed' });

// Ops.
export const healthSchema = z.object({ status: z.literal('ok') }).strict().register(responseSchemas, { id: 'Health' });
export const readySchema = z
  .object({ status: z.literal('ready'), checks: z.record(z.string(), z.string()).optional().meta({ description: 'By name, on the admin side only' }) })
  .strict()
  .register(responseSchemas, { id: 'Ready' });

