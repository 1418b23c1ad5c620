import Stripe from 'stripe';
import type { AdapterConfig } from '../../config/config-schema';
import type { PaymentResource } from '../../payments/payment-resource';
import type { ChannelAdapter, QueryResult } from '../channel-adapter';
import type { RateLimiter } from '../rate-limiter';

type StripeAdapterConfig = Extract<AdapterConfig, { type: 'stripe' }>;

/** The payment's orderId is its PaymentIntent's id (docs/channels.md, "Stripe"). */
export const PAYMENT_INTENT_ID = /^pi_[A-Za-z0-9]{1,60}$/;
const SECRET_KEY = /^(sk|rk)_(test|live)_[A-Za-z0-9]{8,}$/;

/**
 * Whether a secret or restricted key is a live one. Objects never cross modes: a test key sees
 * test intents and test events only, so an answer or an event of the other mode is refused.
 */
export function isLiveKey(name: string, secretKey: string | undefined): boolean {
  const match = SECRET_KEY.exec(secretKey ?? '');
  if (!match) throw new Error(`channel ${name}: CHANNEL_${name.toUpperCase()}_SECRET_KEY must be a Stripe secret (sk_test_/sk_live_) or restricted (rk_test_/rk_live_) key`);
  return match[2] === 'live';
}

/**
 * The stripe package's connection settings for `baseUrl` (Stripe itself, or the fake in tests
 * and the demo). No retries inside the package: the remedy schedule decides when to ask again.
 */
export function stripeClientConfig(baseUrl: string, timeoutMs: number): Stripe.StripeConfig {
  const url = new URL(baseUrl);
  if (url.pathname !== '/' || url.search || url.username) throw new Error(`the stripe baseUrl must be an origin (the package adds /v1/...), got ${baseUrl}`);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port || (protocol === 'http' ? '80' : '443'),
    protocol,
    timeout: timeoutMs,
    maxNetworkRetries: 0,
    telemetry: false,
  };
}

const NOT_PAID: QueryResult = { status: 'NOT_PAID' };

function stripeErrorOf(err: unknown): InstanceType<typeof Stripe.errors.StripeError> | undefined {
  return err instanceof Stripe.errors.StripeError ? err : undefined;
}

/**
 * A 404 resource_missing: no such intent, so nothing was paid under it. Except when Stripe says
 * the intent exists in the other mode: then the key is the wrong one, and every payment would be
 * closed as unpaid, so that is an error (retried, then parked for a person).
 */
function isMissing(err: unknown): boolean {
  const e = stripeErrorOf(err);
  return e?.statusCode === 404 && e.code === 'resource_missing' && !/similar object exists in (live|test) mode/.test(e.message);
}

/** A short, secret-free line for the payment's timeline and the logs. */
function describe(op: string, intentId: string, err: unknown): Error {
  const e = stripeErrorOf(err);
  if (!e) return new Error(`stripe ${op} ${intentId}: ${(err as Error)?.message ?? String(err)}`);
  const status = e.statusCode ?? 'no answer';
  return new Error(`stripe ${op} ${intentId}: ${status} ${e.code ?? e.type}: ${e.message}`, { cause: err });
}

/**
 * Stripe PaymentIntents through the official stripe package (docs/channels.md, "Stripe"): retrieve the
 * intent named by the payment's orderId, and cancel it to close. Stripe does not sign its answers
 * (the key and TLS authenticate it), so instead an answer is believed only when it is about the
 * intent asked for, in the key's mode and the payment's currency. 429s, 5xx and transport errors
 * throw, and the worker retries on the remedy schedule.
 */
export function createStripeAdapter(options: { name: string; config: StripeAdapterConfig; credentials: Record<string, string>; limiter: RateLimiter }): ChannelAdapter {
  const { name, limiter } = options;
  const live = isLiveKey(name, options.credentials.SECRET_KEY);
  const stripe = new Stripe(options.credentials.SECRET_KEY as string, stripeClientConfig(options.config.baseUrl, options.config.timeoutMs));

  async function retrieve(intentId: string): Promise<Stripe.PaymentIntent> {
    await limiter.take();
    return stripe.paymentIntents.retrieve(intentId);
  }

  /** Refuses an answer that is not about this payment's intent: nothing is decided on it. */
  function assertAbout(intent: Stripe.PaymentIntent, payment: PaymentResource): void {
    if (intent.id !== payment.orderId) throw new Error(`stripe answered for intent ${String(intent.id)} when asked for ${payment.orderId}: refused`);
    if (intent.livemode !== live) throw new Error(`stripe answered with a ${intent.livemode ? 'live' : 'test'} intent to a ${live ? 'live' : 'test'} key: refused`);
    if (intent.currency !== payment.currency.toLowerCase()) throw new Error(`intent ${intent.id} is in ${String(intent.currency)}, the payment in ${payment.currency}: refused`);
    // The orderId is the merchant's word; the intent's metadata is the checkout's, set on the
    // intent itself. Without it, one merchant could name another's intent and have us cancel or
    // settle it: refused (and retried, then parked) until the intent names this payment.
    if (intent.metadata?.payment_id !== payment.id) throw new Error(`intent ${intent.id} does not name payment ${payment.id} in metadata.payment_id: refused`);
  }

  return {
    name,
    callsChannel: true,
    async queryOrder(payment) {
      if (!PAYMENT_INTENT_ID.test(payment.orderId)) {
        return { status: 'UNKNOWN', reason: `orderId ${payment.orderId} is not a PaymentIntent id (pi_...): the checkout must create the payment with its intent's id` };
      }
      let intent: Stripe.PaymentIntent;
      try {
        intent = await retrieve(payment.orderId);
      } catch (err) {
        if (isMissing(err)) return { status: 'NOT_PAID', orderMissing: true };
        throw describe('retrieve', payment.orderId, err);
      }
      assertAbout(intent, payment);
      switch (intent.status) {
        case 'succeeded':
          // The intent id, not latest_charge: the webhook and this query name the same id, and
          // the (channel, transaction id) index then lets one intent pay one payment only.
          return { status: 'PAID', transactionId: intent.id, paidAmount: intent.amount_received };
        case 'processing':
          return { status: 'UNKNOWN', reason: 'the intent is processing: the money may be moving, so it is never canceled' };
        case 'requires_capture':
          // Cancelling would release the customer's authorised money without a word.
          return { status: 'UNKNOWN', reason: 'the intent is authorised and waits for capture (requires_capture): capture or cancel it at Stripe' };
        case 'requires_payment_method':
        case 'requires_confirmation':
        case 'requires_action':
        case 'canceled':
          return NOT_PAID;
        default:
          throw new Error(`stripe answered an unknown intent status ${JSON.stringify(intent.status)} for ${intent.id}`);
      }
    },

    async closeOrder(payment) {
      const intentId = payment.orderId;
      if (!PAYMENT_INTENT_ID.test(intentId)) throw new Error(`orderId ${intentId} is not a PaymentIntent id (pi_...): nothing to cancel`);
      try {
        await limiter.take();
        await stripe.paymentIntents.cancel(intentId, { cancellation_reason: 'abandoned' });
        return;
      } catch (err) {
        if (isMissing(err)) return; // nothing at Stripe can be paid under it
        const e = stripeErrorOf(err);
        if (e?.code !== 'payment_intent_unexpected_state') throw describe('cancel', intentId, err);
        // Not cancellable: already canceled (a repeat after a crash: done), or it moved on since
        // the query (succeeded, processing): not closed, and the next attempt asks again.
        const reported = e.payment_intent?.id === intentId ? e.payment_intent : undefined;
        let status = reported?.status;
        if (!status) {
          let intent: Stripe.PaymentIntent;
          try {
            intent = await retrieve(intentId);
          } catch (again) {
            throw describe('retrieve', intentId, again);
          }
          assertAbout(intent, payment);
          status = intent.status;
        }
        if (status === 'canceled') return;
        throw new Error(`stripe cancel ${intentId}: the intent is ${status}, not cancellable; not closed, asking again on the next attempt`);
      }
    },
  };
}
