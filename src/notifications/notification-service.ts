import { z } from 'zod';
import type { Config } from '../config/config-schema';
import type { DelayScheduler } from '../delay/delay-scheduler';
import { nextAttempt } from '../delay/retry-schedule';
import type { Delivery } from '../infra/broker';
import { DESTINATIONS } from '../infra/broker-topology';
import type { Metrics } from '../ops/metrics';
import type { ParkingRepository } from '../parking/parking-repository';
import { attemptOf, parseMessage } from '../compensation/timer-message';
import type { Logger } from '../shared/logger';
import type { MerchantsService } from '../merchants/merchants-service';
import { webhookHeaders } from './notification-signing';

const notificationSchema = z.object({
  eventId: z.string().min(1),
  type: z.string().min(1),
  paymentId: z.number().int().positive(),
  notifyUrl: z.string().url(),
  payment: z.record(z.string(), z.unknown()),
  deadline: z.number().int().positive(),
  attempt: z.number().int().min(1),
});
export type NotificationMessage = z.infer<typeof notificationSchema>;

/**
 * Delivers one merchant notification (DESIGN section 7): 2xx is delivered; anything else retries
 * through the delay levels on the notification schedule, then parks. At-least-once: the event id
 * is the same on every attempt so the merchant can drop duplicates.
 */
export function createNotificationService(deps: {
  config: Config;
  scheduler: DelayScheduler;
  parking: ParkingRepository;
  merchants: MerchantsService;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}) {
  const { config, metrics, logger } = deps;
  const now = deps.now ?? Date.now;

  /** Undefined when delivered; otherwise why not. */
  async function send(n: NotificationMessage, secrets: string[]): Promise<string | undefined> {
    const body = JSON.stringify({ eventId: n.eventId, type: n.type, payment: n.payment });
    try {
      const res = await fetch(n.notifyUrl, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', ...webhookHeaders(secrets, n.eventId, new Date(now()), body) },
        signal: AbortSignal.timeout(config.notifications.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? undefined : `merchant answered ${res.status}`;
    } catch (err) {
      return (err as Error).name === 'TimeoutError' ? `no answer within ${config.notifications.timeoutMs} ms` : (err as Error).message;
    }
  }

  /** The merchant's live secrets; none (an unknown merchant) is a failure that retries, then parks. */
  async function secretsOf(n: NotificationMessage): Promise<string[] | string> {
    const merchantId = n.payment.merchantId;
    if (typeof merchantId !== 'string') return 'the notification names no merchant';
    const secrets = await deps.merchants.signingSecrets(merchantId);
    return secrets.length > 0 ? secrets : `merchant ${merchantId} has no webhook secret`;
  }

  return {
    async handle(delivery: Delivery): Promise<void> {
      const correlationId = delivery.message.properties.correlationId as string | undefined;
      const parsed = parseMessage(notificationSchema, delivery.message);
      if (!parsed.ok) {
        metrics.parked.inc({ purpose: 'notification', reason: 'malformed' });
        await deps.parking.park([{ purpose: 'notification', reason: 'malformed', paymentId: null, attempts: 0, lastError: parsed.error, message: delivery.message.content.toString('utf8'), correlationId }]);
        delivery.ack();
        return;
      }
      const n = { ...parsed.value, attempt: attemptOf(delivery.message, parsed.value.attempt) };
      const reschedule = (deadline: number, attempt: number) =>
        deps.scheduler.schedule({ destination: DESTINATIONS.notification, deadline, attempt, correlationId, body: { eventId: n.eventId, type: n.type, paymentId: n.paymentId, notifyUrl: n.notifyUrl, payment: n.payment } });

      if (n.deadline > now()) {
        await reschedule(n.deadline, n.attempt); // never early
        delivery.ack();
        return;
      }
      const secrets = await secretsOf(n);
      const failure = typeof secrets === 'string' ? secrets : await send(n, secrets);
      if (!failure) {
        metrics.notifications.inc({ outcome: 'delivered' });
        logger.info('notification delivered', { eventId: n.eventId, type: n.type, paymentId: n.payment.id, attempt: n.attempt, correlationId });
        delivery.ack();
        return;
      }
      const next = nextAttempt(config.retry.notification, n.attempt, now());
      if (next) {
        metrics.notifications.inc({ outcome: 'retry' });
        metrics.retries.inc({ purpose: 'notification', attempt: String(next.attempt) });
        logger.warn('notification failed; retrying', { eventId: n.eventId, attempt: n.attempt, nextAttempt: next.attempt, error: failure, correlationId });
        await reschedule(next.deadline, next.attempt);
      } else {
        metrics.notifications.inc({ outcome: 'parked' });
        metrics.parked.inc({ purpose: 'notification', reason: 'retries_exhausted' });
        logger.warn('notification parked', { eventId: n.eventId, attempts: n.attempt, error: failure, correlationId });
        await deps.parking.park([{ purpose: 'notification', reason: 'retries_exhausted', paymentId: n.paymentId, attempts: n.attempt, lastError: failure, message: delivery.message.content.toString('utf8'), correlationId }]);
      }
      delivery.ack();
    },
  };
}
export type NotificationService = ReturnType<typeof createNotificationService>;
