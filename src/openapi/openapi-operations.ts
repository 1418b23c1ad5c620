import { z } from 'zod';
import { adminPaymentParams, adminPaymentQuery } from '../admin/admin-payments-schemas';
import { identifier } from '../shared/validation';
import { statsQuery } from '../admin/admin-schemas';
import { apiKeyParams, merchantParams, platformKeyParams, platformKeySchema, registerMerchantSchema } from '../merchants/merchants-schemas';
import { parkedItemParams, parkedListQuery } from '../parking/parking-schemas';
import { callbackSchema, cancelPaymentSchema, createPaymentSchema, findByOrderSchema } from '../payments/payments-schemas';
import type { ErrorCode } from '../shared/errors';
import {
  adminPaymentSchema,
  backlogSchema,
  healthSchema,
  issuedKeySchema,
  merchantListSchema,
  merchantSchema,
  parkedItemsSchema,
  paymentEventsSchema,
  paymentSchema,
  paymentStatsSchema,
  platformKeyListSchema,
  readySchema,
  registeredMerchantSchema,
  replayedSchema,
  webhookSecretSchema,
} from './openapi-schemas';

/** Where a route is served: with ADMIN_PORT set, the admin side has a listener of its own; unset, PORT serves both. */
export type Listener = 'public' | 'admin' | 'both';

export interface ApiResponse {
  description: string;
  /** A JSON body (a schema of openapi-schemas.ts); a text body; or both, for a channel's own answers. */
  schema?: z.ZodType;
  text?: 'text/plain' | 'text/html';
}

/** One route of the API: what validates its input, what it answers, and which errors it may answer. */
export interface ApiOperation {
  method: 'get' | 'post' | 'delete';
  /** In express's form, as the router declares it: /v1/payments/:id */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  auth: 'merchantKey' | 'adminToken' | 'none';
  listener: Listener;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Header parameters, described by hand: the service reads them itself. */
  headers?: Array<{ name: string; description: string }>;
  body?: { id: string; schema: z.ZodType; required: boolean };
  /** A body in a channel's own wire format, read as raw bytes (no JSON middleware, no zod schema). */
  rawBody?: { contentTypes: string[]; description: string };
  /** Mounted once per configured channel of these adapter types, at the channel's name. */
  perChannel?: Array<'wechatpay' | 'alipay' | 'stripe'>;
  responses: Record<number, ApiResponse>;
  errors: ErrorCode[];
}

/** The channel of the path: its name in the config (channels.<name>). */
const channelParams = z.object({ channel: identifier.meta({ description: 'The channel name, as configured' }) });

/** WeChat Pay retries a notification answered with this body and a 4xx or 5xx. */
const wechatPayFailSchema = z.object({ code: z.literal('FAIL'), message: z.string() }).strict();

/** The payment id of the path; any string, an unknown one is a 404. */
const paymentParams = z.object({ id: z.string().min(1).meta({ description: 'The payment id (pay_...)' }) });

// The errors every route of a kind may answer, besides its own.
const SERVER: ErrorCode[] = ['INTERNAL', 'UNAVAILABLE'];
const JSON_BODY: ErrorCode[] = ['VALIDATION_FAILED', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];
const MERCHANT: ErrorCode[] = ['UNAUTHORIZED', 'RATE_LIMITED', ...SERVER];
const ADMIN: ErrorCode[] = ['UNAUTHORIZED', ...SERVER];

const payment = (description: string): ApiResponse => ({ description, schema: paymentSchema });
const noContent: ApiResponse = { description: 'Done; no body' };

/** Every route of the service, once (README.md, "HTTP API"). A test compares it with the app's routers both ways. */
export const API_OPERATIONS: ApiOperation[] = [
  // Payments, with a merchant's API key (or a platform key for that merchant).
  {
    method: 'post',
    path: '/v1/payments',
    operationId: 'createPayment',
    tag: 'payments',
    summary: 'Create a payment and its timer',
    description:
      'The merchant comes from the key; `merchantId` is optional with a merchant key (another one is 403) and required with a platform key. ' +
      'Idempotent on (merchantId, orderId): the same body again answers 200 with the same payment, a different body 409 (naming no payment id).',
    auth: 'merchantKey',
    listener: 'public',
    body: { id: 'CreatePaymentRequest', schema: createPaymentSchema, required: true },
    responses: { 201: payment('Created'), 200: payment('A repeat of the same (merchantId, orderId) with the same body') },
    errors: [...JSON_BODY, 'FORBIDDEN', 'CONFLICT', ...MERCHANT],
  },
  {
    method: 'get',
    path: '/v1/payments',
    operationId: 'findPaymentByOrder',
    tag: 'payments',
    summary: "The merchant's payment for an order",
    description: 'A platform key names the merchant with `merchantId`. No payment for that order: 404.',
    auth: 'merchantKey',
    listener: 'public',
    query: findByOrderSchema,
    responses: { 200: payment('The payment of that order') },
    errors: ['VALIDATION_FAILED', 'FORBIDDEN', 'NOT_FOUND', ...MERCHANT],
  },
  {
    method: 'get',
    path: '/v1/payments/:id',
    operationId: 'getPayment',
    tag: 'payments',
    summary: 'Read a payment',
    description: "Another merchant's payment answers 404, like an unknown id.",
    auth: 'merchantKey',
    listener: 'public',
    params: paymentParams,
    responses: { 200: payment('The payment') },
    errors: ['NOT_FOUND', ...MERCHANT],
  },
  {
    method: 'get',
    path: '/v1/payments/:id/events',
    operationId: 'listPaymentEvents',
    tag: 'payments',
    summary: "A payment's timeline",
    description: 'Its transitions, remedy answers and retries, notifications delivered, conflicts and parkings, oldest first.',
    auth: 'merchantKey',
    listener: 'public',
    params: paymentParams,
    responses: { 200: { description: 'The timeline, oldest first', schema: paymentEventsSchema } },
    errors: ['NOT_FOUND', ...MERCHANT],
  },
  {
    method: 'post',
    path: '/v1/payments/:id/cancel',
    operationId: 'cancelPayment',
    tag: 'payments',
    summary: 'Cancel a pending payment',
    description:
      'The channel is asked first, as for a due timer: PAID when it says paid, otherwise closed at the channel and CLOSED (cause merchant_cancel). ' +
      'A repeat answers 200 with the same state. A payment already FAILED, CLOSED by its timer or PAID answers 409 with its status in `details` ' +
      '(`[{ "path": "status", "message": "PAID" }]`); 503 when the channel could not confirm its state (retry).',
    auth: 'merchantKey',
    listener: 'public',
    params: paymentParams,
    body: { id: 'CancelPaymentRequest', schema: cancelPaymentSchema, required: false },
    responses: { 200: payment('PAID or CLOSED') },
    errors: [...JSON_BODY, 'NOT_FOUND', 'CONFLICT', ...MERCHANT],
  },
  // The generic gateway's callback, signed by the channel.
  {
    method: 'post',
    path: '/v1/payments/:id/callback',
    operationId: 'paymentCallback',
    tag: 'channels',
    summary: "The channel's callback (generic gateway)",
    description:
      'SUCCESS moves PENDING to PAID (CLOSED to PAID_AFTER_CLOSE), FAILED moves PENDING to FAILED; repeats answer 200 and change nothing. ' +
      'A paidAmount other than the amount, a second transaction id for a paid payment, or a transaction id that paid another payment of the channel: 409, recorded in the timeline.',
    auth: 'none',
    listener: 'public',
    params: paymentParams,
    headers: [
      {
        name: 'X-Signature',
        description:
          't=<unix seconds>,v1=<hex HMAC-SHA256(channelSecret, "<t>.<paymentId>.<rawBody>")>, where paymentId is the id of the path and rawBody the exact bytes sent. ' +
          'Missing, malformed, for another payment or body, or t more than 300 s from the server clock: 401, and nothing changes.',
      },
    ],
    body: { id: 'CallbackRequest', schema: callbackSchema, required: true },
    responses: { 200: payment('The payment after the callback') },
    errors: [...JSON_BODY, 'UNAUTHORIZED', 'NOT_FOUND', 'CONFLICT', ...SERVER],
  },
  // The channels' native notifications, each verified the way its channel signs.
  {
    method: 'post',
    path: '/v1/channels/:channel/notify',
    operationId: 'channelNotify',
    tag: 'channels',
    summary: 'A WeChat Pay or Alipay notification',
    description:
      'Mounted for each channel configured with adapter type wechatpay or alipay, at its name. WeChat Pay: its JSON notification, verified by its ' +
      'Wechatpay-* signature headers (the platform key, within 300 s) and decrypted (AEAD_AES_256_GCM); answered 204, or 4xx/5xx with ' +
      '`{"code":"FAIL","message":...}` so WeChat Pay retries. Alipay: its form-encoded notification, verified by RSA2 with Alipay\'s public key; ' +
      'answered `success`, or `fail` so Alipay retries. A notification that does not verify or names no payment of the channel changes nothing.',
    auth: 'none',
    listener: 'public',
    perChannel: ['wechatpay', 'alipay'],
    params: channelParams,
    rawBody: { contentTypes: ['application/json', 'application/x-www-form-urlencoded'], description: "The channel's notification as it sends it" },
    responses: {
      200: { description: 'Alipay: applied (or nothing to apply)', text: 'text/plain' },
      204: { description: 'WeChat Pay: applied (or nothing to apply)' },
      400: { description: 'Refused, nothing changed; the channel retries', schema: wechatPayFailSchema, text: 'text/plain' },
      401: { description: 'WeChat Pay: the signature does not verify', schema: wechatPayFailSchema },
      404: { description: 'WeChat Pay: no payment of this channel for the order', schema: wechatPayFailSchema },
      500: { description: 'WeChat Pay: an internal error; it retries', schema: wechatPayFailSchema },
      503: { description: 'Alipay: the database did not answer; it retries', text: 'text/plain' },
    },
    errors: [],
  },
  {
    method: 'post',
    path: '/v1/channels/:channel/webhook',
    operationId: 'channelWebhook',
    tag: 'channels',
    summary: "A Stripe event (the channel's webhook endpoint)",
    description:
      'Mounted for each channel configured with adapter type stripe, at its name. The Stripe-Signature header (HMAC-SHA256 with the endpoint secret, ' +
      'within 300 s) is checked on the raw body. Only payment_intent.succeeded settles a payment, the one its metadata.payment_id names; other events answer 200 and change nothing. ' +
      'A 4xx or 5xx makes Stripe deliver the event again.',
    auth: 'none',
    listener: 'public',
    perChannel: ['stripe'],
    params: channelParams,
    headers: [{ name: 'Stripe-Signature', description: 't=<unix seconds>,v1=<hex HMAC-SHA256(endpoint secret, "<t>.<body>")>' }],
    rawBody: { contentTypes: ['application/json'], description: 'The Stripe event as Stripe sends it' },
    responses: { 200: { description: 'Received', schema: z.object({ received: z.literal(true) }).strict() } },
    errors: ['VALIDATION_FAILED', 'INTERNAL', 'UNAVAILABLE'],
  },
  // Admin: merchants and credentials.
  {
    method: 'post',
    path: '/v1/admin/merchants',
    operationId: 'registerMerchant',
    tag: 'admin',
    summary: 'Register a merchant',
    description: 'Answers its first API key and its webhook secret, shown only here. An existing merchantId is 409.',
    auth: 'adminToken',
    listener: 'admin',
    body: { id: 'RegisterMerchantRequest', schema: registerMerchantSchema, required: true },
    responses: { 201: { description: 'Registered', schema: registeredMerchantSchema } },
    errors: [...JSON_BODY, 'CONFLICT', ...ADMIN],
  },
  {
    method: 'get',
    path: '/v1/admin/merchants',
    operationId: 'listMerchants',
    tag: 'admin',
    summary: 'The merchants with their key ids',
    auth: 'adminToken',
    listener: 'admin',
    responses: { 200: { description: 'The merchants', schema: merchantListSchema } },
    errors: ADMIN,
  },
  {
    method: 'get',
    path: '/v1/admin/merchants/:merchantId',
    operationId: 'getMerchant',
    tag: 'admin',
    summary: 'A merchant with its key ids, never a secret',
    auth: 'adminToken',
    listener: 'admin',
    params: merchantParams,
    responses: { 200: { description: 'The merchant', schema: merchantSchema } },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...ADMIN],
  },
  {
    method: 'post',
    path: '/v1/admin/merchants/:merchantId/api-keys',
    operationId: 'addMerchantApiKey',
    tag: 'admin',
    summary: 'A new API key for the merchant; the old ones stay valid',
    auth: 'adminToken',
    listener: 'admin',
    params: merchantParams,
    responses: { 201: { description: 'The new key, shown only here', schema: issuedKeySchema } },
    errors: [...JSON_BODY, 'NOT_FOUND', ...ADMIN],
  },
  {
    method: 'delete',
    path: '/v1/admin/merchants/:merchantId/api-keys/:keyId',
    operationId: 'revokeMerchantApiKey',
    tag: 'admin',
    summary: 'Revoke a key: it stops working at once',
    auth: 'adminToken',
    listener: 'admin',
    params: apiKeyParams,
    responses: { 204: noContent },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...ADMIN],
  },
  {
    method: 'post',
    path: '/v1/admin/merchants/:merchantId/webhook-secrets',
    operationId: 'rotateWebhookSecret',
    tag: 'admin',
    summary: 'A new webhook secret',
    description: 'The old secret keeps signing (a second signature) for notifications.secretRotationOverlapSeconds.',
    auth: 'adminToken',
    listener: 'admin',
    params: merchantParams,
    responses: { 201: { description: 'The new secret, shown only here', schema: webhookSecretSchema } },
    errors: [...JSON_BODY, 'NOT_FOUND', 'CONFLICT', ...ADMIN],
  },
  {
    method: 'get',
    path: '/v1/admin/api-keys',
    operationId: 'listPlatformKeys',
    tag: 'admin',
    summary: 'The platform keys and their merchants',
    auth: 'adminToken',
    listener: 'admin',
    responses: { 200: { description: 'The platform keys', schema: platformKeyListSchema } },
    errors: ADMIN,
  },
  {
    method: 'post',
    path: '/v1/admin/api-keys',
    operationId: 'createPlatformKey',
    tag: 'admin',
    summary: 'A platform key, for a checkout serving several merchants',
    description:
      'Such a key must name merchantId in every create; `["*"]` acts for every merchant. With `amqpUser`, the payment intents that RabbitMQ user publishes (its validated user-id) act with this key.',
    auth: 'adminToken',
    listener: 'admin',
    body: { id: 'PlatformKeyRequest', schema: platformKeySchema, required: true },
    responses: { 201: { description: 'The key, shown only here', schema: issuedKeySchema } },
    errors: [...JSON_BODY, ...ADMIN],
  },
  {
    method: 'delete',
    path: '/v1/admin/api-keys/:keyId',
    operationId: 'revokePlatformKey',
    tag: 'admin',
    summary: 'Revoke a platform key',
    auth: 'adminToken',
    listener: 'admin',
    params: platformKeyParams,
    responses: { 204: noContent },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...ADMIN],
  },
  // Admin: operations.
  {
    method: 'get',
    path: '/v1/admin/stats',
    operationId: 'getPaymentStats',
    tag: 'admin',
    summary: 'Payments by status and timer lateness over the newest payments',
    auth: 'adminToken',
    listener: 'admin',
    query: statsQuery,
    responses: { 200: { description: 'The stats', schema: paymentStatsSchema } },
    errors: ['VALIDATION_FAILED', ...ADMIN],
  },
  {
    method: 'get',
    path: '/v1/admin/backlog',
    operationId: 'getBacklog',
    tag: 'admin',
    summary: 'Per queue: ready, unacked, dead-letter pending, rates, consumers; timers due soon',
    description: 'Read from the RabbitMQ management API: 503 when it is not configured or does not answer.',
    auth: 'adminToken',
    listener: 'admin',
    responses: { 200: { description: 'The backlog', schema: backlogSchema } },
    errors: ADMIN,
  },
  {
    method: 'get',
    path: '/v1/admin/payments/:id',
    operationId: 'getAdminPayment',
    tag: 'admin',
    summary: "Any merchant's payment by its id, with its timeline",
    auth: 'adminToken',
    listener: 'admin',
    params: adminPaymentParams,
    responses: { 200: { description: 'The payment and its timeline', schema: adminPaymentSchema } },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...ADMIN],
  },
  {
    method: 'get',
    path: '/v1/admin/payments',
    operationId: 'findAdminPaymentByOrder',
    tag: 'admin',
    summary: "A merchant's payment by its order id, with its timeline",
    auth: 'adminToken',
    listener: 'admin',
    query: adminPaymentQuery,
    responses: { 200: { description: 'The payment and its timeline', schema: adminPaymentSchema } },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...ADMIN],
  },
  {
    method: 'get',
    path: '/v1/admin/parked',
    operationId: 'listParkedItems',
    tag: 'admin',
    summary: 'Parked items, newest first, keyset-paged',
    auth: 'adminToken',
    listener: 'admin',
    query: parkedListQuery,
    responses: { 200: { description: 'A page of parked items', schema: parkedItemsSchema } },
    errors: ['VALIDATION_FAILED', ...ADMIN],
  },
  {
    method: 'post',
    path: '/v1/admin/parked/:id/replay',
    operationId: 'replayParkedItem',
    tag: 'admin',
    summary: 'Re-enter the normal flow at attempt 1',
    description: 'An item that is not a readable timer or notification is 409: delete it instead.',
    auth: 'adminToken',
    listener: 'admin',
    params: parkedItemParams,
    responses: { 202: { description: 'Published again and removed from the parking lot', schema: replayedSchema } },
    errors: [...JSON_BODY, 'NOT_FOUND', 'CONFLICT', ...ADMIN],
  },
  {
    method: 'delete',
    path: '/v1/admin/parked/:id',
    operationId: 'deleteParkedItem',
    tag: 'admin',
    summary: 'Drop a parked item',
    auth: 'adminToken',
    listener: 'admin',
    params: parkedItemParams,
    responses: { 204: noContent },
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...ADMIN],
  },
  // Ops.
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    tag: 'ops',
    summary: 'Alive',
    auth: 'none',
    listener: 'both',
    responses: { 200: { description: 'The process is alive', schema: healthSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'ready',
    tag: 'ops',
    summary: 'Ready: the database and the broker answer',
    description: 'The checks by name only on the admin side; 503 (UNAVAILABLE, with the failed checks in details on the admin side) when one fails.',
    auth: 'none',
    listener: 'both',
    responses: { 200: { description: 'Ready', schema: readySchema } },
    errors: ['UNAVAILABLE'],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'ops',
    summary: 'Prometheus metrics (text format)',
    auth: 'none',
    listener: 'admin',
    responses: { 200: { description: 'Prometheus text exposition format', text: 'text/plain' } },
    errors: [],
  },
  {
    method: 'get',
    path: '/ops',
    operationId: 'opsPage',
    tag: 'ops',
    summary: 'The ops page',
    description: 'A self-contained HTML page over the admin API; it asks for the admin token once.',
    auth: 'none',
    listener: 'admin',
    responses: { 200: { description: 'The page', text: 'text/html' } },
    errors: [],
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openApiDocument',
    tag: 'ops',
    summary: 'This document',
    auth: 'none',
    listener: 'public',
    responses: { 200: { description: 'The OpenAPI 3.1 description of the API', schema: z.record(z.string(), z.unknown()) } },
    errors: [],
  },
];
