import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import express from 'express';
import { z } from 'zod';

/**
 * A Stripe PaymentIntents fake for tests and the demo, speaking Stripe's wire format: form-encoded
 * requests under /v1 authenticated with the secret key (`Authorization: Bearer sk_...`, or Basic
 * with the key as the user, as Stripe accepts), JSON answers, errors as
 * `{ "error": { "type", "code", "message", ... } }`, Idempotency-Key replays, and webhooks signed
 * as Stripe signs them (`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(endpoint secret, "<t>.<body>")>`).
 *
 * Stripe's own routes:
 *   POST /v1/payment_intents               create (amount, currency, metadata[...], capture_method)
 *   GET  /v1/payment_intents/:id           retrieve (a script may answer instead, below)
 *   POST /v1/payment_intents/:id           update (metadata[...], amount)
 *   POST /v1/payment_intents/:id/cancel    cancel (cancellation_reason)
 * The test's routes (no key):
 *   PUT  /script/:intentId { "answers": [...] }   what the next retrieves answer; the last repeats:
 *        { "kind": "intent", "status"?, "amountReceived"?, "answerAs"?: { "id"?, "currency"?, "livemode"? } }
 *          moves the intent to `status` and answers it (answerAs changes the answer only, a lying channel);
 *        { "kind": "error", "status"? } 5xx api_error; { "kind": "throttled" } 429 rate_limit;
 *        { "kind": "slow", "ms" }; { "kind": "missing" } 404 resource_missing; { "kind": "wrong_mode" }
 *          the 404 of a key of the other mode
 *   POST /intents/:id/state { "status", "amountReceived"? }   moves an intent, as a customer paying would
 *   GET  /intents/:id                                         the intent as stored
 *   GET  /calls?intentId=                                     what the fake was asked, in order
 *   POST /webhooks/send { "url", "intentId", "type"?, "timestamp"?, "secret"?, "tamperBody"?, "object"?, "livemode"? }
 *        posts a signed event about the intent to `url` and answers { status, body, event }
 */

export const PAYMENT_INTENT_STATUSES = ['requires_payment_method', 'requires_confirmation', 'requires_action', 'processing', 'requires_capture', 'canceled', 'succeeded'] as const;
type IntentStatus = (typeof PAYMENT_INTENT_STATUSES)[number];
// Stripe also cancels a processing intent "in rare cases"; the fake never does, and the adapter never asks.
const CANCELLABLE: ReadonlySet<IntentStatus> = new Set(['requires_payment_method', 'requires_confirmation', 'requires_action', 'requires_capture']);
const CANCELLATION_REASONS = new Set(['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned']);
const API_VERSION = '2026-10-28.endive';

export interface FakeIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_capturable: number;
  amount_received: number;
  canceled_at: number | null;
  cancellation_reason: string | null;
  capture_method: string;
  client_secret: string;
  created: number;
  currency: string;
  last_payment_error: null | { code: string; message: string; type: string };
  latest_charge: string | null;
  livemode: boolean;
  metadata: Record<string, string>;
  payment_method_types: string[];
  status: IntentStatus;
  [field: string]: unknown;
}

export interface StripeFakeCall {
  op: 'create' | 'retrieve' | 'update' | 'cancel' | 'unknown';
  intentId: string | null;
  method: string;
  path: string;
  /** Whether the request carried this fake's secret key. */
  authorized: boolean;
  auth: 'bearer' | 'basic' | 'none' | 'other';
  stripeVersion: string | null;
  idempotencyKey: string | null;
  contentType: string | null;
  /** The decoded form body of a POST. */
  form: Record<string, unknown>;
  at: string;
  /** The HTTP status answered and, for scripted answers, the script's kind. */
  answered: string;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function stripeId(prefix: string, length = 24): string {
  return `${prefix}_${[...randomBytes(length)].map((b) => BASE62[b % 62]).join('')}`;
}

/** Stripe's webhook signature: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`, the secret's text as the key. */
export function signStripeWebhook(secret: string, payload: string, timestamp: number): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex')}`;
}

const scriptAnswer = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('intent'),
      status: z.enum(PAYMENT_INTENT_STATUSES).optional(),
      amountReceived: z.number().int().min(0).optional(),
      answerAs: z.object({ id: z.string(), currency: z.string(), livemode: z.boolean() }).partial().strict().optional(),
    })
    .strict(),
  z.object({ kind: z.literal('error'), status: z.number().int().min(500).max(599).default(500) }).strict(),
  z.object({ kind: z.literal('throttled') }).strict(),
  z.object({ kind: z.literal('slow'), ms: z.number().int().positive().max(120000) }).strict(),
  z.object({ kind: z.literal('missing') }).strict(),
  z.object({ kind: z.literal('wrong_mode') }).strict(),
]);
type ScriptAnswer = z.infer<typeof scriptAnswer>;
const scriptSchema = z.object({ answers: z.array(scriptAnswer).min(1) }).strict();
const stateSchema = z.object({ status: z.enum(PAYMENT_INTENT_STATUSES), amountReceived: z.number().int().min(0).optional() }).strict();
const sendSchema = z
  .object({
    url: z.string().url(),
    intentId: z.string().min(1),
    type: z.string().regex(/^[a-z_.]+$/).default('payment_intent.succeeded'),
    /** The signature's time (unix seconds); now unless told, e.g. ten minutes ago for a stale one. */
    timestamp: z.number().int().positive().optional(),
    /** Sign with another secret (a forger's). */
    secret: z.string().min(1).optional(),
    /** Change the body after signing it. */
    tamperBody: z.boolean().optional(),
    /** Fields of the event's intent snapshot to change (a snapshot Stripe would not send). */
    object: z.record(z.string(), z.unknown()).optional(),
    /** The event's mode, when not the key's (an endpoint of the other mode). */
    livemode: z.boolean().optional(),
  })
  .strict();

interface Answer {
  status: number;
  body: unknown;
}

export function createStripeFakeApp(options: { secretKey: string; webhookSecret: string }) {
  const live = options.secretKey.includes('_live_');
  const intents = new Map<string, FakeIntent>();
  const scripts = new Map<string, ScriptAnswer[]>();
  const calls: StripeFakeCall[] = [];
  const replays = new Map<string, Answer>();

  const app = express();
  app.disable('x-powered-by');

  const now = () => Math.floor(Date.now() / 1000);
  const stripeError = (status: number, error: { type: string; code?: string; message: string; param?: string; payment_intent?: FakeIntent }): Answer => ({
    status,
    body: { error: { ...error, ...(error.code ? { doc_url: `https://stripe.com/docs/error-codes/${error.code.replace(/_/g, '-')}` } : {}) } },
  });
  const missing = (id: string): Answer => stripeError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'intent', message: `No such payment_intent: '${id}'` });

  function moveTo(intent: FakeIntent, status: IntentStatus, amountReceived?: number): void {
    intent.status = status;
    intent.amount_capturable = status === 'requires_capture' ? intent.amount : 0;
    if (status === 'succeeded') {
      intent.amount_received = amountReceived ?? intent.amount;
      intent.latest_charge ??= stripeId('ch');
    } else if (amountReceived !== undefined) {
      intent.amount_received = amountReceived;
    }
    if (status === 'canceled') intent.canceled_at ??= now();
  }

  function keyOf(header: string | undefined): { auth: StripeFakeCall['auth']; key: string | null } {
    if (!header) return { auth: 'none', key: null };
    const [scheme = '', value = ''] = header.split(' ', 2);
    if (scheme.toLowerCase() === 'bearer') return { auth: 'bearer', key: value };
    if (scheme.toLowerCase() === 'basic') return { auth: 'basic', key: Buffer.from(value, 'base64').toString('utf8').split(':')[0] ?? '' };
    return { auth: 'other', key: null };
  }
  function isTheKey(key: string | null): boolean {
    if (key === null) return false;
    const a = Buffer.from(key);
    const b = Buffer.from(options.secretKey);
    return a.length === b.length && timingSafeEqual(a, b);
  }
  const masked = (key: string) => `${key.slice(0, key.indexOf('_', 3) + 1)}${'*'.repeat(4)}${key.slice(-4)}`;

  function send(res: express.Response, answer: Answer, call?: StripeFakeCall, kind?: string): void {
    if (call) call.answered = kind ? `${answer.status} ${kind}` : String(answer.status);
    res.status(answer.status).set({ 'request-id': stripeId('req', 14), 'stripe-version': API_VERSION }).json(answer.body);
  }

  // ---- Stripe's API ----
  const v1 = express.Router();
  v1.use(express.urlencoded({ extended: true, limit: '64kb' }));
  v1.use((req, res, next) => {
    const { auth, key } = keyOf(req.header('authorization'));
    const segments = req.path.split('/').filter(Boolean);
    const op: StripeFakeCall['op'] =
      segments[0] !== 'payment_intents' ? 'unknown' : segments.length === 1 && req.method === 'POST' ? 'create' : segments.length === 2 ? (req.method === 'GET' ? 'retrieve' : 'update') : segments[2] === 'cancel' ? 'cancel' : 'unknown';
    const call: StripeFakeCall = {
      op,
      intentId: segments[1] ?? null,
      method: req.method,
      path: req.path,
      authorized: isTheKey(key),
      auth,
      stripeVersion: req.header('stripe-version') ?? null,
      idempotencyKey: req.header('idempotency-key') ?? null,
      contentType: req.header('content-type') ?? null,
      form: req.method === 'POST' && req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {},
      at: new Date().toISOString(),
      answered: '',
    };
    calls.push(call);
    res.locals.call = call;
    if (key === null) {
      send(res, stripeError(401, { type: 'invalid_request_error', message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')." }), call);
      return;
    }
    if (!call.authorized) {
      send(res, stripeError(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${masked(key)}` }), call);
      return;
    }
    if (req.method === 'POST' && !req.is('application/x-www-form-urlencoded') && Number(req.header('content-length') ?? 0) > 0) {
      send(res, stripeError(400, { type: 'invalid_request_error', message: 'Invalid request: the body must be application/x-www-form-urlencoded.' }), call);
      return;
    }
    const replayKey = req.method === 'POST' && call.idempotencyKey ? `${req.path}|${call.idempotencyKey}` : undefined;
    const replay = replayKey ? replays.get(replayKey) : undefined;
    if (replay) {
      res.set('idempotent-replayed', 'true');
      send(res, replay, call, 'replay');
      return;
    }
    if (replayKey) res.locals.replayKey = replayKey;
    next();
  });
  const answer = (res: express.Response, result: Answer, kind?: string) => {
    const replayKey = res.locals.replayKey as string | undefined;
    if (replayKey && result.status < 500) replays.set(replayKey, result);
    send(res, result, res.locals.call as StripeFakeCall, kind);
  };
  const form = (req: express.Request) => (req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {});
  const metadataOf = (value: unknown): Record<string, string> | undefined =>
    value && typeof value === 'object' ? Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)])) : undefined;

  v1.post('/payment_intents', (req, res) => {
    const body = form(req);
    const amount = Number(body.amount);
    if (body.amount === undefined) return answer(res, stripeError(400, { type: 'invalid_request_error', code: 'parameter_missing', param: 'amount', message: 'Missing required param: amount.' }));
    if (!Number.isInteger(amount) || amount < 1) return answer(res, stripeError(400, { type: 'invalid_request_error', code: 'parameter_invalid_integer', param: 'amount', message: 'Invalid integer: amount' }));
    if (typeof body.currency !== 'string' || !/^[a-zA-Z]{3}$/.test(body.currency)) {
      return answer(res, stripeError(400, { type: 'invalid_request_error', code: 'parameter_missing', param: 'currency', message: 'Missing required param: currency.' }));
    }
    const id = stripeId('pi');
    const intent: FakeIntent = {
      id,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: typeof body.capture_method === 'string' ? body.capture_method : 'automatic_async',
      client_secret: `${id}_secret_${stripeId('x').slice(2)}`,
      created: now(),
      currency: body.currency.toLowerCase(),
      last_payment_error: null,
      latest_charge: null,
      livemode: live,
      metadata: metadataOf(body.metadata) ?? {},
      payment_method_types: ['card'],
      status: 'requires_payment_method',
    };
    intents.set(id, intent);
    (res.locals.call as StripeFakeCall).intentId = id;
    answer(res, { status: 200, body: intent });
  });

  v1.get('/payment_intents/:id', async (req, res) => {
    const id = req.params.id;
    const script = scripts.get(id);
    const next = script ? (script.length > 1 ? script.shift() : script[0]) : undefined;
    const intent = intents.get(id);
    switch (next?.kind) {
      case undefined:
        return answer(res, intent ? { status: 200, body: intent } : missing(id));
      case 'error':
        return answer(res, stripeError(next.status, { type: 'api_error', message: 'An unknown error occurred' }), 'error');
      case 'throttled':
        return answer(res, stripeError(429, { type: 'invalid_request_error', code: 'rate_limit', message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.' }), 'throttled');
      case 'missing':
        return answer(res, missing(id), 'missing');
      case 'wrong_mode':
        return answer(
          res,
          stripeError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'intent', message: `No such payment_intent: '${id}'; a similar object exists in ${live ? 'test' : 'live'} mode, but a ${live ? 'live' : 'test'} mode key was used to make this request.` }),
          'wrong_mode',
        );
      case 'slow':
        await new Promise((r) => setTimeout(r, next.ms).unref());
        if (res.writableEnded || req.socket.destroyed) return;
        return answer(res, intent ? { status: 200, body: intent } : missing(id), 'slow');
      case 'intent': {
        if (!intent) return answer(res, missing(id), 'intent');
        if (next.status) moveTo(intent, next.status, next.amountReceived);
        return answer(res, { status: 200, body: { ...intent, ...next.answerAs } }, next.answerAs ? 'tampered' : 'intent');
      }
    }
  });

  v1.post('/payment_intents/:id', (req, res) => {
    const intent = intents.get(req.params.id);
    if (!intent) return answer(res, missing(req.params.id));
    const body = form(req);
    if (intent.status === 'canceled' || intent.status === 'succeeded') {
      if (body.amount !== undefined) {
        return answer(res, stripeError(400, { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message: `This PaymentIntent's amount could not be updated because it has a status of ${intent.status}.`, payment_intent: intent }));
      }
    }
    const metadata = metadataOf(body.metadata);
    if (metadata) {
      for (const [k, v] of Object.entries(metadata)) {
        if (v === '') delete intent.metadata[k];
        else intent.metadata[k] = v;
      }
    }
    if (body.amount !== undefined) intent.amount = Number(body.amount);
    answer(res, { status: 200, body: intent });
  });

  v1.post('/payment_intents/:id/cancel', (req, res) => {
    const intent = intents.get(req.params.id);
    if (!intent) return answer(res, missing(req.params.id));
    const reason = form(req).cancellation_reason;
    if (reason !== undefined && !CANCELLATION_REASONS.has(String(reason))) {
      return answer(res, stripeError(400, { type: 'invalid_request_error', code: 'parameter_invalid_string', param: 'cancellation_reason', message: `Invalid cancellation_reason: must be one of ${[...CANCELLATION_REASONS].join(', ')}` }));
    }
    if (!CANCELLABLE.has(intent.status)) {
      return answer(
        res,
        stripeError(400, {
          type: 'invalid_request_error',
          code: 'payment_intent_unexpected_state',
          message: `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.`,
          payment_intent: intent,
        }),
      );
    }
    moveTo(intent, 'canceled');
    intent.cancellation_reason = reason === undefined ? null : String(reason);
    answer(res, { status: 200, body: intent });
  });
  v1.use((req, res) => answer(res, stripeError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: /v1${req.path}).` })));
  app.use('/v1', v1);

  // ---- The test's control routes ----
  const control = express.Router();
  control.use(express.json({ limit: '64kb' }));
  const bad = (res: express.Response, message: string, status = 400) => res.status(status).json({ error: { code: 'VALIDATION_FAILED', message } });

  control.put('/script/:intentId', (req, res) => {
    const parsed = scriptSchema.safeParse(req.body);
    if (!parsed.success) return void bad(res, parsed.error.issues[0]?.message ?? 'bad script');
    scripts.set(req.params.intentId, [...parsed.data.answers]);
    res.status(204).end();
  });
  control.delete('/script/:intentId', (req, res) => {
    scripts.delete(req.params.intentId);
    res.status(204).end();
  });
  control.get('/intents/:id', (req, res) => {
    const intent = intents.get(req.params.id);
    if (!intent) return void bad(res, 'no such intent', 404);
    res.json(intent);
  });
  control.post('/intents/:id/state', (req, res) => {
    const intent = intents.get(req.params.id);
    const parsed = stateSchema.safeParse(req.body);
    if (!intent) return void bad(res, 'no such intent', 404);
    if (!parsed.success) return void bad(res, parsed.error.issues[0]?.message ?? 'bad state');
    moveTo(intent, parsed.data.status, parsed.data.amountReceived);
    res.json(intent);
  });
  control.get('/calls', (req, res) => {
    const id = req.query.intentId;
    res.json({ calls: typeof id === 'string' ? calls.filter((c) => c.intentId === id) : calls.slice(-1000) });
  });
  control.post('/webhooks/send', async (req, res) => {
    const parsed = sendSchema.safeParse(req.body);
    if (!parsed.success) return void bad(res, parsed.error.issues[0]?.message ?? 'bad webhook');
    const { url, intentId, type, timestamp, secret, tamperBody, object, livemode } = parsed.data;
    const intent = intents.get(intentId);
    if (!intent) return void bad(res, 'no such intent', 404);
    // The event is what happened to the intent: a success or a failed attempt moves it first.
    if (type === 'payment_intent.succeeded' && intent.status !== 'canceled') moveTo(intent, 'succeeded');
    if (type === 'payment_intent.payment_failed' && intent.status !== 'canceled' && intent.status !== 'succeeded') {
      moveTo(intent, 'requires_payment_method');
      intent.last_payment_error = { code: 'card_declined', message: 'Your card was declined.', type: 'card_error' };
    }
    const event = {
      id: stripeId('evt'),
      object: 'event',
      api_version: API_VERSION,
      created: now(),
      data: { object: { ...intent, ...object } },
      livemode: livemode ?? live,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
    // Stripe posts its events pretty-printed; the signature covers these exact bytes.
    const payload = JSON.stringify(event, null, 2);
    const signature = signStripeWebhook(secret ?? options.webhookSecret, payload, timestamp ?? now());
    const sent = tamperBody ? payload.replace(`"amount_received": ${event.data.object.amount_received}`, `"amount_received": ${Number(event.data.object.amount_received) + 1}`) : payload;
    try {
      const answered = await fetch(url, {
        method: 'POST',
        body: sent,
        headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature, 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
        signal: AbortSignal.timeout(10000),
      });
      const text = await answered.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      res.json({ status: answered.status, body, event, signature });
    } catch (err) {
      res.status(502).json({ error: { code: 'UNAVAILABLE', message: (err as Error).message } });
    }
  });
  control.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(control);

  return app;
}

// `node dist/simulator/stripe-fake.js`: the fake on STRIPE_FAKE_PORT (default 4100), loopback
// unless told, with the keys of CHANNEL_STRIPE_SECRET_KEY and CHANNEL_STRIPE_WEBHOOK_SECRET.
if (require.main === module) {
  const secretKey = process.env.CHANNEL_STRIPE_SECRET_KEY;
  const webhookSecret = process.env.CHANNEL_STRIPE_WEBHOOK_SECRET;
  if (!secretKey || !webhookSecret) {
    process.stderr.write('set CHANNEL_STRIPE_SECRET_KEY (sk_test_...) and CHANNEL_STRIPE_WEBHOOK_SECRET (whsec_...), the same the service gets\n');
    process.exit(2);
  }
  const port = Number(process.env.STRIPE_FAKE_PORT ?? 4100);
  const host = process.env.STRIPE_FAKE_HOST ?? '127.0.0.1';
  const server = createStripeFakeApp({ secretKey, webhookSecret }).listen(port, host, () => {
    process.stdout.write(`stripe fake listening on http://${host}:${port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
