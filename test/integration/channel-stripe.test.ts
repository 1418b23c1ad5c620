import type { Knex } from 'knex';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { loadConfig, deepMerge } from '../../src/config/config-loader';
import type { Config } from '../../src/config/config-schema';
import type { ChannelAdapter, QueryResult } from '../../src/channels/channel-adapter';
import { createStripeAdapter, stripeClientConfig } from '../../src/channels/stripe/stripe-adapter';
import type { PaymentResource } from '../../src/payments/payment-resource';
import { generatePublicId } from '../../src/payments/payments-service';
import { createStripeFakeApp, signStripeWebhook, type FakeIntent, type StripeFakeCall } from '../../src/simulator/stripe-fake';
import { createPayment, getPayment, paymentBody, request } from '../helpers/api';
import { eventsOf, internalIdOf, openTestDatabase } from '../helpers/fixtures';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/*
 * The Stripe channel against its fake (src/simulator/stripe-fake.ts) and the real stack.
 *
 * Stripe does not sign its API answers (the secret key and TLS authenticate the exchange), so the
 * issue's "a tampered response signature is refused" has no Stripe counterpart. What stands in for
 * it: an answer about another intent than the one asked for, in another currency, or of the other
 * mode is refused by the adapter, and the payment is never PAID on it. The request side is Stripe's
 * own: the fake checks the secret key on every request and refuses a wrong one.
 */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const random62 = (n: number) => [...randomBytes(n)].map((b) => BASE62[b % 62]).join('');

describe('the Stripe channel (PaymentIntents)', () => {
  // Generated for this run, never committed: the fake and the service share them, as Stripe and a merchant would.
  const secretKey = `sk_test_${random62(32)}`;
  const webhookSecret = `whsec_${random62(32)}`;
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  let fake: Server;
  let fakeUrl: string;
  let config: Config;
  let t: TestApp;
  let db: Knex;
  /** The checkout's own Stripe client, pointed at the fake. */
  let checkoutStripe: Stripe;

  beforeAll(async () => {
    fake = await new Promise<Server>((resolve) => {
      const s = createStripeFakeApp({ secretKey, webhookSecret }).listen(0, '127.0.0.1', () => resolve(s));
    });
    fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    checkoutStripe = new Stripe(secretKey, stripeClientConfig(fakeUrl, 2000));
    // Credentials through the environment, as in production (CHANNEL_<NAME>_<CREDENTIAL>).
    config = loadConfig({
      env: { ...process.env, NODE_ENV: 'test', ADMIN_TOKEN: TEST_ADMIN_TOKEN, CHANNEL_STRIPE_SECRET_KEY: secretKey, CHANNEL_STRIPE_WEBHOOK_SECRET: webhookSecret },
      overrides: deepMerge(
        { http: { port: 0 }, broker: { prefix: `t${randomUUID().slice(0, 8)}` } },
        { channels: { stripe: { timeoutSeconds: 900, adapter: { type: 'stripe', baseUrl: fakeUrl, timeoutMs: 1000, queriesPerSecond: 50 } } } },
      ),
    }).config;
    t = await startTestApp(config);
    db = openTestDatabase(config);
  });
  afterAll(async () => {
    await t?.stop();
    await db?.destroy();
    await new Promise<void>((resolve) => {
      fake.closeAllConnections();
      fake.close(() => resolve());
    });
    await deleteTestTopology(config);
  });

  // ---- the fake's test routes ----
  async function script(intentId: string, answers: unknown[]): Promise<void> {
    const res = await fetch(`${fakeUrl}/script/${intentId}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ answers }) });
    expect(res.status).toBe(204);
  }
  async function callsOf(intentId: string): Promise<StripeFakeCall[]> {
    return ((await (await fetch(`${fakeUrl}/calls?intentId=${intentId}`)).json()) as { calls: StripeFakeCall[] }).calls;
  }
  async function storedIntent(intentId: string): Promise<FakeIntent> {
    return (await (await fetch(`${fakeUrl}/intents/${intentId}`)).json()) as FakeIntent;
  }
  const webhookUrl = () => `${t.baseUrl}/v1/channels/stripe/webhook`;
  async function sendWebhook(body: Record<string, unknown>): Promise<{ status: number; body: any; event: any; signature: string }> {
    const res = await fetch(`${fakeUrl}/webhooks/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: webhookUrl(), ...body }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { status: number; body: any; event: any; signature: string };
  }

  /**
   * What the checkout does (README.md, "Channels"; docs/channels.md, "Stripe"): create the PaymentIntent, create our payment with
   * orderId = the intent's id, then put our payment id in the intent's metadata.payment_id.
   */
  async function checkout(options: { amount?: number; currency?: string; timeoutSeconds?: number; metadata?: boolean; channel?: string } = {}) {
    const amount = options.amount ?? 1999;
    const currency = options.currency ?? 'USD';
    const intent = await checkoutStripe.paymentIntents.create({ amount, currency: currency.toLowerCase() });
    const res = await createPayment(t.baseUrl, paymentBody({ channel: options.channel ?? 'stripe', orderId: intent.id, amount, currency, timeoutSeconds: options.timeoutSeconds ?? 900 }));
    expect(res.status).toBe(201);
    const payment = res.body as PaymentResource;
    if (options.metadata !== false) await checkoutStripe.paymentIntents.update(intent.id, { metadata: { payment_id: payment.id } });
    return { intent, payment };
  }

  const statusOf = async (id: string) => (await getPayment(t.baseUrl, id)).body as PaymentResource;
  const untilStatus = (id: string, status: string, ms = 15000) =>
    waitFor(`${id} to be ${status}`, async () => {
      const p = await statusOf(id);
      return p.status === status ? p : undefined;
    }, ms, 50);
  const parkedItem = (paymentId: string, ms = 20000) =>
    waitFor(`${paymentId} to be parked`, async () => {
      const res = await request(t.baseUrl, 'GET', '/v1/admin/parked?purpose=compensation&limit=100', undefined, admin);
      return (res.body.items as Array<{ paymentId: string; reason: string; attempts: number; lastError: string }>).find((i) => i.paymentId === paymentId);
    }, ms, 200);
  const transitionsOf = async (publicId: string) => (await eventsOf(db, [await internalIdOf(db, publicId)])).map((e) => [e.from_status, e.to_status, e.cause]);

  describe('the adapter', () => {
    let takes = 0;
    let adapter: ChannelAdapter;
    beforeAll(() => {
      adapter = createStripeAdapter({
        name: 'stripe',
        config: { type: 'stripe', baseUrl: fakeUrl, timeoutMs: 500, queriesPerSecond: 50 },
        credentials: { SECRET_KEY: secretKey, WEBHOOK_SECRET: webhookSecret },
        limiter: {
          take: async () => {
            takes += 1;
          },
        },
      });
    });
    /** A payment resource as the worker builds it, for an intent of the fake. */
    const resourceFor = (intent: { id: string; amount: number; metadata?: Record<string, string> | null }, currency = 'USD'): PaymentResource => ({
      id: intent.metadata?.payment_id ?? generatePublicId(),
      merchantId: 'm_stripe',
      orderId: intent.id,
      amount: intent.amount,
      currency,
      channel: 'stripe',
      status: 'PENDING',
      createdAt: new Date().toISOString(),
      expiresAt: new Date().toISOString(),
      paidAt: null,
      closedAt: null,
      transactionId: null,
    });
    // As a checkout makes them: the intent names our payment in metadata.payment_id.
    const newIntent = (amount = 1999, currency = 'usd') => checkoutStripe.paymentIntents.create({ amount, currency, metadata: { payment_id: generatePublicId() } });
    const query = (payment: PaymentResource) => adapter.queryOrder(payment, { attempt: 1 });

    it.each<[string, (id: string) => QueryResult]>([
      ['succeeded', (id) => ({ status: 'PAID', transactionId: id, paidAmount: 1999 })],
      ['processing', () => ({ status: 'UNKNOWN', reason: expect.stringMatching(/processing/) as unknown as string })],
      ['requires_capture', () => ({ status: 'UNKNOWN', reason: expect.stringMatching(/requires_capture/) as unknown as string })],
      ['requires_payment_method', () => ({ status: 'NOT_PAID' })],
      ['requires_confirmation', () => ({ status: 'NOT_PAID' })],
      ['requires_action', () => ({ status: 'NOT_PAID' })],
      ['canceled', () => ({ status: 'NOT_PAID' })],
    ])('when the intent is %s, then the query maps it as README.md says', async (status, expected) => {
      const intent = await newIntent();
      await script(intent.id, [{ kind: 'intent', status }]);
      expect(await query(resourceFor(intent))).toEqual(expected(intent.id));
    });

    it('when the intent succeeded for less than its amount, then PAID carries amount_received (the worker parks the mismatch)', async () => {
      const intent = await newIntent();
      await script(intent.id, [{ kind: 'intent', status: 'succeeded', amountReceived: 1500 }]);
      expect(await query(resourceFor(intent))).toEqual({ status: 'PAID', transactionId: intent.id, paidAmount: 1500 });
    });

    it('when Stripe has no such intent (404 resource_missing), then it is NOT_PAID, but a 404 that names the other mode is an error', async () => {
      expect(await query(resourceFor({ id: `pi_${random62(24)}`, amount: 1999 }))).toEqual({ status: 'NOT_PAID', orderMissing: true });
      const intent = await newIntent();
      await script(intent.id, [{ kind: 'missing' }, { kind: 'wrong_mode' }]);
      expect(await query(resourceFor(intent))).toEqual({ status: 'NOT_PAID', orderMissing: true });
      await expect(query(resourceFor(intent))).rejects.toThrow(/404 resource_missing: .*similar object exists in live mode/);
    });

    it('when the orderId is not a PaymentIntent id, then the query is UNKNOWN without asking Stripe, and close refuses', async () => {
      const payment = resourceFor({ id: 'A-1001', amount: 1999 });
      expect(await query(payment)).toEqual({ status: 'UNKNOWN', reason: expect.stringMatching(/not a PaymentIntent id/) });
      await expect(adapter.closeOrder(payment, { attempt: 1 })).rejects.toThrow(/not a PaymentIntent id/);
    });

    it('when Stripe answers about another intent, in another currency or of the other mode, then the answer is refused and nothing is PAID', async () => {
      const intent = await newIntent();
      const other = await newIntent();
      await script(intent.id, [
        { kind: 'intent', status: 'succeeded', answerAs: { id: other.id } },
        { kind: 'intent', answerAs: { currency: 'eur' } },
        { kind: 'intent', answerAs: { livemode: true } },
      ]);
      await expect(query(resourceFor(intent))).rejects.toThrow(new RegExp(`answered for intent ${other.id} when asked for ${intent.id}: refused`));
      await expect(query(resourceFor(intent))).rejects.toThrow(/in eur, the payment in USD: refused/);
      await expect(query(resourceFor(intent))).rejects.toThrow(/live intent to a test key: refused/);
      // The payment's own currency is compared too: a USD intent never pays a JPY payment.
      await script(intent.id, [{ kind: 'intent' }]);
      await expect(query(resourceFor(intent, 'JPY'))).rejects.toThrow(/in usd, the payment in JPY: refused/);
    });

    it('when Stripe throttles (429), fails (5xx), is slower than the timeout or cannot be reached, then the query throws so the worker retries', async () => {
      const intent = await newIntent();
      await script(intent.id, [{ kind: 'throttled' }, { kind: 'error', status: 503 }, { kind: 'slow', ms: 1500 }, { kind: 'intent' }]);
      await expect(query(resourceFor(intent))).rejects.toThrow(/429 rate_limit/);
      await expect(query(resourceFor(intent))).rejects.toThrow(/503 StripeAPIError/);
      await expect(query(resourceFor(intent))).rejects.toThrow(/timeout/);
      expect(await query(resourceFor(intent))).toEqual({ status: 'NOT_PAID' });
      const unreachable = createStripeAdapter({ name: 'stripe', config: { type: 'stripe', baseUrl: 'http://127.0.0.1:9', timeoutMs: 500, queriesPerSecond: 50 }, credentials: { SECRET_KEY: secretKey }, limiter: { take: async () => undefined } });
      await expect(unreachable.queryOrder(resourceFor(intent), { attempt: 1 })).rejects.toThrow(/no answer/);
    });

    it('when a payment names an intent that names another payment (one merchant naming another\'s intent), then the query refuses it and nothing is canceled or paid', async () => {
      const intent = await newIntent();
      const intruder = { ...resourceFor(intent), id: generatePublicId(), merchantId: 'm_other' };
      await expect(query(intruder)).rejects.toThrow(/does not name payment .* in metadata\.payment_id: refused/);
      const bare = await checkoutStripe.paymentIntents.create({ amount: 1999, currency: 'usd' });
      await expect(query(resourceFor(bare))).rejects.toThrow(/metadata\.payment_id: refused/);
      expect((await checkoutStripe.paymentIntents.retrieve(intent.id)).status).not.toBe('canceled');
    });

    it('when the adapter asks, then each request carries the secret key the Stripe way and takes the limiter first; a wrong key is refused by the fake', async () => {
      const intent = await newIntent();
      const before = takes;
      await query(resourceFor(intent));
      await adapter.closeOrder(resourceFor(intent), { attempt: 1 });
      expect(takes - before).toBe(2);
      const [retrieve, cancel] = await callsOf(intent.id).then((calls) => calls.filter((c) => c.op !== 'create'));
      expect(retrieve).toEqual(expect.objectContaining({ op: 'retrieve', method: 'GET', auth: 'bearer', authorized: true, answered: '200', stripeVersion: expect.any(String) }));
      expect(cancel).toEqual(
        expect.objectContaining({ op: 'cancel', method: 'POST', auth: 'bearer', authorized: true, answered: '200', contentType: 'application/x-www-form-urlencoded', form: { cancellation_reason: 'abandoned' }, idempotencyKey: expect.any(String) }),
      );

      const forger = createStripeAdapter({ name: 'stripe', config: { type: 'stripe', baseUrl: fakeUrl, timeoutMs: 500, queriesPerSecond: 50 }, credentials: { SECRET_KEY: `sk_test_${random62(32)}` }, limiter: { take: async () => undefined } });
      await expect(forger.queryOrder(resourceFor(intent), { attempt: 1 })).rejects.toThrow(/401 StripeAuthenticationError: Invalid API Key provided/);
      expect((await callsOf(intent.id)).pop()).toEqual(expect.objectContaining({ op: 'retrieve', authorized: false, answered: '401' }));
    });

    it('when a request authenticates with Basic (the key as the user), as Stripe allows, then the fake accepts it; none or another key is 401 in Stripe’s error shape', async () => {
      const intent = await newIntent();
      const get = (authorization?: string) => fetch(`${fakeUrl}/v1/payment_intents/${intent.id}`, { headers: authorization ? { authorization } : {} });
      const basic = await get(`Basic ${Buffer.from(`${secretKey}:`).toString('base64')}`);
      expect(basic.status).toBe(200);
      expect(await basic.json()).toEqual(expect.objectContaining({ id: intent.id, object: 'payment_intent' }));
      for (const auth of [undefined, `Bearer sk_test_${random62(32)}`, `Basic ${Buffer.from('sk_test_nope:').toString('base64')}`]) {
        const res = await get(auth);
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ error: { type: 'invalid_request_error', message: expect.any(String) } });
      }
    });

    it('when close is repeated (a crash between the call and the commit), or the intent is gone, then it succeeds; when the intent succeeded meanwhile, then close throws and cancels nothing', async () => {
      const intent = await newIntent();
      await adapter.closeOrder(resourceFor(intent), { attempt: 1 });
      await adapter.closeOrder(resourceFor(intent), { attempt: 2 });
      expect((await storedIntent(intent.id)).status).toBe('canceled');
      expect((await callsOf(intent.id)).filter((c) => c.op === 'cancel').map((c) => c.answered)).toEqual(['200', '400']);

      await adapter.closeOrder(resourceFor({ id: `pi_${random62(24)}`, amount: 1999 }), { attempt: 1 });

      const paid = await newIntent();
      await script(paid.id, [{ kind: 'intent', status: 'succeeded' }]);
      await query(resourceFor(paid));
      await expect(adapter.closeOrder(resourceFor(paid), { attempt: 1 })).rejects.toThrow(/the intent is succeeded, not cancellable; not closed/);
      expect((await storedIntent(paid.id)).status).toBe('succeeded');
    });
  });

  describe('the remedy at the deadline', () => {
    it('when the intent still requires a payment method, then it is canceled at Stripe and the payment becomes CLOSED', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await untilStatus(payment.id, 'CLOSED');
      expect((await callsOf(intent.id)).map((c) => c.op)).toEqual(['create', 'update', 'retrieve', 'cancel']);
      expect(await storedIntent(intent.id)).toEqual(expect.objectContaining({ status: 'canceled', cancellation_reason: 'abandoned' }));
    });

    it('when the intent succeeded, then the payment becomes PAID by remedy with the intent id as its transaction id, and nothing is canceled', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await script(intent.id, [{ kind: 'intent', status: 'succeeded' }]);
      const paid = await untilStatus(payment.id, 'PAID');
      expect(paid.transactionId).toBe(intent.id);
      expect(await transitionsOf(payment.id)).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'PAID', 'remedy'],
      ]);
      expect((await callsOf(intent.id)).map((c) => c.op)).not.toContain('cancel');
    });

    it('when Stripe has no such intent, then the payment becomes CLOSED', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await script(intent.id, [{ kind: 'missing' }]);
      await untilStatus(payment.id, 'CLOSED');
    });

    it('when the intent is processing, or authorised and waiting for capture, then it is never canceled, asked again on the schedule, and parked for a person', async () => {
      const processing = await checkout({ timeoutSeconds: 1 });
      const authorised = await checkout({ timeoutSeconds: 1 });
      await script(processing.intent.id, [{ kind: 'intent', status: 'processing' }]);
      await script(authorised.intent.id, [{ kind: 'intent', status: 'requires_capture' }]);
      for (const { intent, payment } of [processing, authorised]) {
        const item = await parkedItem(payment.id);
        expect(item.reason).toBe('retries_exhausted');
        expect(item.attempts).toBe(config.retry.remedy.length + 1);
        expect((await statusOf(payment.id)).status).toBe('PENDING');
        const calls = (await callsOf(intent.id)).filter((c) => c.op === 'retrieve' || c.op === 'cancel');
        expect(calls.map((c) => c.op)).toEqual(Array(config.retry.remedy.length + 1).fill('retrieve'));
        const at = calls.map((c) => Date.parse(c.at));
        for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(1000);
      }
      expect((await storedIntent(authorised.intent.id)).status).toBe('requires_capture');
    });

    it('when Stripe errors twice and then says the intent is unpaid, then it closes on the third attempt, each retry on schedule', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await script(intent.id, [{ kind: 'error' }, { kind: 'error' }, { kind: 'intent' }]);
      await untilStatus(payment.id, 'CLOSED');
      const retrieves = (await callsOf(intent.id)).filter((c) => c.op === 'retrieve');
      expect(retrieves.map((c) => c.answered)).toEqual(['500 error', '500 error', '200 intent']);
      const at = retrieves.map((c) => Date.parse(c.at));
      expect(at[0]!).toBeGreaterThanOrEqual(Date.parse(payment.expiresAt));
      // The test schedule is [1, 1, 2] seconds: each retry is due no earlier than 1 s after the failure.
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1000);
      // Each failure is logged with Stripe's status and the intent it was about.
      const failures = t.logs.filter((l) => l.includes('"channel call failed"') && l.includes(payment.id));
      expect(failures).toHaveLength(2);
      for (const line of failures) expect(JSON.parse(line).error).toMatch(new RegExp(`^stripe retrieve ${intent.id}: 500 StripeAPIError`));
    });

    it('when Stripe throttles and then says succeeded, then the payment becomes PAID on the retry', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await script(intent.id, [{ kind: 'throttled' }, { kind: 'intent', status: 'succeeded' }]);
      expect((await untilStatus(payment.id, 'PAID')).transactionId).toBe(intent.id);
      const retrieves = (await callsOf(intent.id)).filter((c) => c.op === 'retrieve');
      expect(retrieves.map((c) => c.answered)).toEqual(['429 throttled', '200 intent']);
      expect(Date.parse(retrieves[1]!.at) - Date.parse(retrieves[0]!.at)).toBeGreaterThanOrEqual(1000);
    });

    it('when the intent received another amount, then the payment is parked as amount_mismatch and stays PENDING', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await script(intent.id, [{ kind: 'intent', status: 'succeeded', amountReceived: 1000 }]);
      expect((await parkedItem(payment.id)).reason).toBe('amount_mismatch');
      expect((await statusOf(payment.id)).status).toBe('PENDING');
    });

    it('when Stripe’s answer is about another intent or in another currency, then the payment is never PAID and is parked with the refusal', async () => {
      const other = await checkout();
      const wrongId = await checkout({ timeoutSeconds: 1 });
      const wrongCurrency = await checkout({ timeoutSeconds: 1 });
      await script(wrongId.intent.id, [{ kind: 'intent', status: 'succeeded', answerAs: { id: other.intent.id } }]);
      await script(wrongCurrency.intent.id, [{ kind: 'intent', status: 'succeeded', answerAs: { currency: 'jpy' } }]);
      for (const { payment } of [wrongId, wrongCurrency]) {
        const item = await parkedItem(payment.id);
        expect(item.reason).toBe('retries_exhausted');
        expect(item.lastError).toMatch(/refused/);
        expect((await statusOf(payment.id)).status).toBe('PENDING');
      }
    });
  });

  describe('the webhook', () => {
    const sign = (payload: string, timestamp: number) => signStripeWebhook(webhookSecret, payload, timestamp);

    it('signs its events as Stripe does: the fake’s Stripe-Signature is the one the stripe package computes', async () => {
      const payload = JSON.stringify({ id: 'evt_1', object: 'event' });
      expect(sign(payload, 1_700_000_000)).toBe(Stripe.webhooks.generateTestHeaderString({ payload, secret: webhookSecret, timestamp: 1_700_000_000 }));
    });

    it('when a valid payment_intent.succeeded arrives, then the payment becomes PAID with the intent id; the same event again changes nothing', async () => {
      const { intent, payment } = await checkout();
      const first = await sendWebhook({ intentId: intent.id });
      expect(first.status).toBe(200);
      expect(first.event.data.object).toEqual(expect.objectContaining({ id: intent.id, status: 'succeeded', amount_received: 1999, metadata: { payment_id: payment.id } }));
      const paid = await statusOf(payment.id);
      expect(paid).toEqual(expect.objectContaining({ status: 'PAID', transactionId: intent.id }));
      const again = await sendWebhook({ intentId: intent.id });
      expect(again.status).toBe(200);
      expect(await statusOf(payment.id)).toEqual(paid);
      expect(await transitionsOf(payment.id)).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'PAID', 'callback'],
      ]);
    });

    it('when the signature is made with another secret, the body was changed after signing, or the header is missing, then it answers 400 and nothing changes', async () => {
      const { intent, payment } = await checkout();
      expect((await sendWebhook({ intentId: intent.id, secret: `whsec_${random62(32)}` })).status).toBe(400);
      expect((await sendWebhook({ intentId: intent.id, tamperBody: true })).status).toBe(400);
      const bare = await fetch(webhookUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'payment_intent.succeeded', data: { object: { id: intent.id, metadata: { payment_id: payment.id } } } }) });
      expect(bare.status).toBe(400);
      expect(await statusOf(payment.id)).toEqual(expect.objectContaining({ status: 'PENDING', transactionId: null }));
    });

    it('when a signed event is replayed after the 300 s tolerance, then it answers 400 and nothing changes', async () => {
      const { intent, payment } = await checkout();
      const stale = await sendWebhook({ intentId: intent.id, timestamp: Math.floor(Date.now() / 1000) - 301 });
      expect(stale.status).toBe(400);
      expect(stale.body.error.message).toMatch(/300 s/);
      expect((await statusOf(payment.id)).status).toBe('PENDING');
    });

    it('when the event names an unknown payment, another channel’s payment, or a payment of another intent, then it answers 400 (Stripe retries) and nothing changes', async () => {
      const unknown = await checkoutStripe.paymentIntents.create({ amount: 1999, currency: 'usd', metadata: { payment_id: generatePublicId() } });
      expect((await sendWebhook({ intentId: unknown.id })).status).toBe(400);

      const wechat = await createPayment(t.baseUrl, paymentBody({ channel: 'wechat', amount: 1999, currency: 'USD' }));
      const crossChannel = await checkoutStripe.paymentIntents.create({ amount: 1999, currency: 'usd', metadata: { payment_id: wechat.body.id } });
      expect((await sendWebhook({ intentId: crossChannel.id })).status).toBe(400);
      expect((await statusOf(wechat.body.id)).status).toBe('PENDING');

      const { payment } = await checkout();
      const otherIntent = await checkoutStripe.paymentIntents.create({ amount: 1999, currency: 'usd', metadata: { payment_id: payment.id } });
      expect((await sendWebhook({ intentId: otherIntent.id })).status).toBe(400);
      expect(await statusOf(payment.id)).toEqual(expect.objectContaining({ status: 'PENDING', transactionId: null }));
    });

    it('when a signed event is of the other mode than the key (a live event to a test channel), then it answers 400 and nothing changes', async () => {
      const { intent, payment } = await checkout();
      expect((await sendWebhook({ intentId: intent.id, livemode: true })).status).toBe(400);
      expect((await statusOf(payment.id)).status).toBe('PENDING');
    });

    it('when the intent has no metadata.payment_id (another integration on the account), then it answers 200 and changes nothing', async () => {
      const { intent, payment } = await checkout({ metadata: false });
      expect((await sendWebhook({ intentId: intent.id })).status).toBe(200);
      expect((await statusOf(payment.id)).status).toBe('PENDING');
      // Another integration using the same key with its own ids is not ours either: 200, no retries for days.
      const foreign = await checkoutStripe.paymentIntents.create({ amount: 1999, currency: 'usd', metadata: { payment_id: 'order_123' } });
      expect((await sendWebhook({ intentId: foreign.id })).status).toBe(200);
    });

    it('when the intent received another amount, then it answers 200, records amount_mismatch and the payment stays PENDING', async () => {
      const { intent, payment } = await checkout();
      expect((await sendWebhook({ intentId: intent.id, object: { amount_received: 1000 } })).status).toBe(200);
      expect((await statusOf(payment.id)).status).toBe('PENDING');
      expect(await transitionsOf(payment.id)).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'PENDING', 'amount_mismatch'],
      ]);
    });

    it('when the intent is in another currency than the payment, then it answers 400 and nothing changes', async () => {
      const { intent, payment } = await checkout();
      const res = await sendWebhook({ intentId: intent.id, object: { currency: 'eur' } });
      expect(res.status).toBe(400);
      expect((await statusOf(payment.id)).status).toBe('PENDING');
    });

    it('when payment_intent.payment_failed or another event arrives, then it answers 200 and the payment stays PENDING (the customer may still pay)', async () => {
      const { intent, payment } = await checkout();
      expect((await sendWebhook({ intentId: intent.id, type: 'payment_intent.payment_failed' })).status).toBe(200);
      expect((await sendWebhook({ intentId: intent.id, type: 'payment_intent.created' })).status).toBe(200);
      expect((await statusOf(payment.id)).status).toBe('PENDING');
      expect(await transitionsOf(payment.id)).toEqual([[null, 'PENDING', 'created']]);
    });

    it('when a success arrives after the payment was closed, then the payment becomes PAID_AFTER_CLOSE', async () => {
      const { intent, payment } = await checkout({ timeoutSeconds: 1 });
      await untilStatus(payment.id, 'CLOSED');
      // Stripe cannot succeed a canceled intent; the snapshot plays a success that did happen (the
      // handler must map it as the generic callback does).
      const late = await sendWebhook({ intentId: intent.id, object: { status: 'succeeded', amount_received: 1999 } });
      expect(late.status).toBe(200);
      expect(await statusOf(payment.id)).toEqual(expect.objectContaining({ status: 'PAID_AFTER_CLOSE', transactionId: intent.id }));
    });
  });
});
