import type { Config } from '../config/config-schema';
import type { DelayScheduler } from '../delay/delay-scheduler';
import { nextAttempt } from '../delay/retry-schedule';
import type { Delivery } from '../infra/broker';
import type { Metrics } from '../shared/metrics';
import type { ParkingRepository } from '../parking/parking-repository';
import { notificationMessage, parseNotification, type NotificationMessage } from '../messaging/notification-message';
import type { Logger } from '../shared/logger';
import type { MerchantsService } from '../merchants/merchants-service';
import type { PaymentStatus } from '../payments/payment-states';
import type { PaymentsRepository } from '../payments/payments-repository';
import { OutboundError, type OutboundHttp } from '../shared/outbound-http';
import { webhookHeaders } from './notification-signing';

/**
 * Delivers one merchant notification (docs/design.md, "Merchant notifications"): 2xx is delivered; anything else retries
 * through the delay levels on the notification schedule, then parks. At-least-once: the event id
 * is the same on every attempt so the merchant can drop duplicates.
 */
export function createNotificationService(deps: {
  config: Config;
  scheduler: DelayScheduler;
  parking: ParkingRepository;
  merchants: MerchantsService;
  payments: PaymentsRepository;
  /** The outbound client for merchant endpoints (address filter, capped reads, per-host cap). */
  http: OutboundHttp;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}) {
  const { config, metrics, logger } = deps;
  const now = deps.now ?? Date.now;

/** Why a delivery did not happen; `busy` (the merchant's host has every slot taken) is no attempt. */
  type Failure = { error: string; busy?: boolean; notBefore?: number };

  /** Undefined when delivered; otherwise why not. */
  async function send(n: NotificationMessage, secrets: string[]): Promise<Failure | undefined> {
    const body = JSON.stringify({ eventId: n.eventId, type: n.type, payment: n.payment });
    try {
      const res = await deps.http.post(n.notifyUrl, body, { 'content-type': 'application/json', ...webhookHeaders(secrets, n.eventId, new Date(now()), body) }, config.notifications.timeoutMs);
      return res.status >= 200 && res.status < 300 ? undefined : { error: `merchant answered ${res.status}` };
    } catch (err) {
      if (err instanceof OutboundError) return { error: err.message, busy: err.kind === 'busy', notBefore: err.retryAt };
      return { error: (err as Error).message };
    }
  }

  /**
   * Where to send and with which secrets, from the database rather than the message: a message
   * is believed only when it names its payment's merchant, and the payment's notifyUrl still has
   * the merchant's registered origin, so a message published by anyone else never gets a
   * merchant's signature. Anything else is a failure that retries, then parks.
   */
  async function targetOf(n: NotificationMessage): Promise<{ url: string; secrets: string[] } | string> {
    const row = await deps.payments.findById(n.paymentId);
    if (!row || row.public_id !== n.payment.id || row.merchant_id !== n.payment.merchantId) return 'the message does not match its payment';
    // The event must be one the payment went through: a forged "payment.paid" is never signed.
    const status = String(n.payment.status);
    if (n.type !== `payment.${status.toLowerCase()}` || !(await deps.payments.hasReached(row.id, status as PaymentStatus))) {
      return `the payment never became ${status}`;
    }
    if (!row.notify_url) return 'the payment has no notifyUrl';
    const registered = await deps.merchants.registeredNotifyUrl(row.merchant_id);
    if (!registered) return `merchant ${row.merchant_id} is not registered`;
    if (new URL(row.notify_url).origin !== new URL(registered).origin) return `the payment's notifyUrl is not on merchant ${row.merchant_id}'s registered origin`;
    const secrets = await deps.merchants.signingSecrets(row.merchant_id);
    return secrets.length > 0 ? { url: row.notify_url, secrets } : `merchant ${row.merchant_id} has no webhook secret that opens`;
  }

  /**
   * The delivery goes into the payment's timeline. It is delivered either way: a failure to
   * record it is logged, never a reason to send the merchant the notification again.
   */
  async function recordDelivery(n: NotificationMessage): Promise<void> {
    const status = String(n.payment.status) as PaymentStatus;
    try {
      await deps.payments.recordEvents([{ paymentId: n.paymentId, from: status, to: status, cause: 'notification_delivered', at: new Date(now()), details: { eventId: n.eventId, type: n.type, attempt: n.attempt } }]);
    } catch (err) {
      logger.warn('a delivered notification was not recorded in the timeline', { eventId: n.eventId, error: (err as Error).message });
    }
  }

  return {
    /** A message that failed every attempt on its own: parked with the error, then acked. */
    async parkPoison(delivery: Delivery, error: unknown): Promise<void> {
      const read = parseNotification(delivery.message, now());
      metrics.parked.inc({ purpose: 'notification', reason: 'poison' });
      await deps.parking.park([{ purpose: 'notification', reason: 'poison', paymentId: read.ok ? read.value.paymentId : null, attempts: read.ok ? read.value.attempt : 0, lastError: String((error as Error)?.message ?? error), message: delivery.message.content.toString('utf8'), correlationId: delivery.message.properties.correlationId as string | undefined }]);
      delivery.ack();
    },

    async handle(delivery: Delivery): Promise<void> {
      const correlationId = delivery.message.properties.correlationId as string | undefined;
      const parsed = parseNotification(delivery.message, now());
      if (!parsed.ok) {
        metrics.parked.inc({ purpose: 'notification', reason: 'malformed' });
        await deps.parking.park([{ purpose: 'notification', reason: 'malformed', paymentId: null, attempts: 0, lastError: parsed.error, message: delivery.message.content.toString('utf8'), correlationId }]);
        delivery.ack();
        return;
      }
      const n = parsed.value;
      const reschedule = (deadline: number, attempt: number) => deps.scheduler.schedule(notificationMessage({ ...n, deadline, attempt, correlationId }));

      if (n.deadline > now()) {
        await reschedule(n.deadline, n.attempt); // never early
        delivery.ack();
        return;
      }
      const target = await targetOf(n);
      const failure = typeof target === 'string' ? { error: target } : await send({ ...n, notifyUrl: target.url }, target.secrets);
      if (!failure) {
        metrics.notifications.inc({ outcome: 'delivered' });
        logger.info('notification delivered', { eventId: n.eventId, type: n.type, paymentId: n.payment.id, attempt: n.attempt, correlationId });
        await recordDelivery(n);
        delivery.ack();
        return;
      }
      if (failure.busy) {
        // The merchant's host already has its calls in flight: try again in a few seconds, as
        // the same attempt, so a burst to one merchant never uses up its retries.
        metrics.notifications.inc({ outcome: 'deferred' });
        await reschedule(now() + 1000 + Math.floor(Math.random() * 2000), n.attempt);
        delivery.ack();
        return;
      }
      const scheduled = nextAttempt(config.retry.notification, n.attempt, now());
      // An open breaker: the next attempt waits at least until the host may be called again.
      const next = scheduled && failure.notBefore ? { ...scheduled, deadline: Math.max(scheduled.deadline, failure.notBefore) } : scheduled;
      if (next) {
        metrics.notifications.inc({ outcome: 'retry' });
        metrics.retries.inc({ purpose: 'notification', attempt: String(next.attempt) });
        logger.warn('notification failed; retrying', { eventId: n.eventId, attempt: n.attempt, nextAttempt: next.attempt, error: failure.error, correlationId });
        await reschedule(next.deadline, next.attempt);
      } else {
        metrics.notifications.inc({ outcome: 'parked' });
        metrics.parked.inc({ purpose: 'notification', reason: 'retries_exhausted' });
        logger.warn('notification parked', { eventId: n.eventId, attempts: n.attempt, error: failure.error, correlationId });
        await deps.parking.park([{ purpose: 'notification', reason: 'retries_exhausted', paymentId: n.paymentId, attempts: n.attempt, lastError: failure.error, message: delivery.message.content.toString('utf8'), correlationId }]);
      }
      delivery.ack();
    },
  };
}
export type NotificationService = ReturnType<typeof createNotificationService>;
