import type { RequestHandler, Response } from 'express';
import Stripe from 'stripe';
import { isLiveKey } from './stripe-adapter';
import { ConflictError } from '../../shared/errors';
import type { NotifyHandlerOptions } from '../notify-handler';

/** Our payment ids: `pay_` and 22 base62 characters (payments-service.ts generatePublicId). */
const PAYMENT_ID = /^pay_[0-9A-Za-z]{22}$/;

/** Stripe's own default: a signature older than this is refused, so a captured event cannot be replayed later. */
const TOLERANCE_SECONDS = 300;

/** Any 4xx or 5xx makes Stripe deliver the event again (for up to three days); a 2xx ends it. */
function refuse(res: Response, status: 400 | 500, message: string): void {
  res.status(status).json({ error: { code: status === 400 ? 'VALIDATION_FAILED' : 'INTERNAL', message } });
}

/**
 * `POST /v1/channels/<name>/webhook` (docs/channels.md, "Stripe"): Stripe's signed events. The signature
 * (`Stripe-Signature: t=...,v1=...`, HMAC-SHA256 with the endpoint secret over "t.body") is checked
 * by the stripe package on the raw body, within 300 s. Only `payment_intent.succeeded` settles a
 * payment: the one its metadata.payment_id names, if it belongs to this channel and its orderId is
 * that intent, for the intent's amount_received in the payment's currency. Other events, and
 * intents without metadata.payment_id (another integration's on the same account), answer 200 and
 * change nothing; everything else that cannot be applied answers 400, which Stripe retries.
 */
export function createStripeWebhookHandler(options: NotifyHandlerOptions<'stripe'>): RequestHandler {
  const { name, payments, logger } = options;
  const secret = options.credentials.WEBHOOK_SECRET ?? '';
  if (!/^whsec_[A-Za-z0-9+/=_-]{16,}$/.test(secret)) throw new Error(`channel ${name}: CHANNEL_${name.toUpperCase()}_WEBHOOK_SECRET must be the endpoint's signing secret (whsec_...)`);
  const live = isLiveKey(name, options.credentials.SECRET_KEY);
  const now = options.now ?? Date.now;

  return async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let event: Stripe.Event;
    try {
      event = Stripe.webhooks.constructEvent(raw, req.header('stripe-signature') ?? '', secret, TOLERANCE_SECONDS, undefined, now());
    } catch (err) {
      logger.warn('stripe webhook refused: its signature does not verify', { error: (err as Error).message.split('\n')[0] });
      refuse(res, 400, 'the Stripe-Signature does not verify for this body, or is older than 300 s');
      return;
    }
    const context = { eventId: event.id, type: event.type };
    if (event.livemode !== live) {
      logger.warn('stripe webhook refused: an event of the other mode than the key', context);
      refuse(res, 400, `a ${event.livemode ? 'live' : 'test'} event for a ${live ? 'live' : 'test'} channel`);
      return;
    }
    // payment_intent.payment_failed is not final at Stripe (the customer may try another card),
    // and a cancel is followed by our own close: neither changes a payment.
    if (event.type !== 'payment_intent.succeeded') {
      logger.info('stripe webhook ignored', context);
      res.json({ received: true });
      return;
    }
    const intent = event.data.object;
    const paymentId = intent.metadata?.payment_id;
    // Not one of ours: no payment_id, or one that is not our id's shape (another integration on
    // the account using the same key). A 400 would make Stripe retry it for days and may get the
    // endpoint disabled, our own events with it.
    if (!paymentId || !PAYMENT_ID.test(paymentId)) {
      logger.info('stripe webhook ignored: the intent names no payment of ours in metadata.payment_id', { ...context, intentId: intent.id });
      res.json({ received: true });
      return;
    }
    if (intent.object !== 'payment_intent' || intent.status !== 'succeeded') {
      refuse(res, 400, 'payment_intent.succeeded without a succeeded payment intent');
      return;
    }
    const payment = await payments.findForChannel(paymentId, name);
    if (!payment || payment.order_id !== intent.id) {
      logger.warn('stripe webhook refused: no payment of this channel for the intent', { ...context, paymentId, intentId: intent.id, found: Boolean(payment) });
      refuse(res, 400, `no payment ${paymentId} of channel ${name} for intent ${intent.id}`);
      return;
    }
    if (intent.currency !== payment.currency.toLowerCase()) {
      // Not applied: the timer's query refuses it too, and parks the payment for a person.
      logger.error('stripe webhook refused: the intent is in another currency than the payment', { ...context, paymentId, intentId: intent.id, currency: intent.currency });
      refuse(res, 400, `intent ${intent.id} is in ${intent.currency}, payment ${paymentId} in ${payment.currency}`);
      return;
    }
    try {
      // The intent id is the transaction id, as the adapter's query says (stripe-adapter.ts).
      const row = await payments.applyCallback(payment, { result: 'SUCCESS', transactionId: intent.id, paidAmount: intent.amount_received });
      logger.info('stripe webhook applied', { ...context, paymentId, status: row.status });
    } catch (err) {
      // Recorded in payment_events for a person (an amount mismatch, a conflicting transaction):
      // nothing Stripe could change by sending it again.
      if (!(err instanceof ConflictError)) throw err;
      logger.warn('stripe webhook recorded as a conflict', { ...context, paymentId, error: err.message });
    }
    res.json({ received: true });
  };
}
