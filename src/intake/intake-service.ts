import { randomUUID } from 'node:crypto';
import type { Delivery } from '../infra/broker';
import type { Broker } from '../infra/broker';
import type { MerchantsService } from '../merchants/merchants-service';
import type { TopologyNames } from '../messaging/topology';
import type { ParkingRepository } from '../parking/parking-repository';
import { toResource, type PaymentResource } from '../payments/payment-resource';
import type { PaymentsService } from '../payments/payments-service';
import { AppError, ValidationError, type ErrorCode } from '../shared/errors';
import type { Logger } from '../shared/logger';
import type { Metrics } from '../shared/metrics';
import { CORRELATION_ID, runWithCorrelationId } from '../shared/request-context';
import { parseOrThrow } from '../shared/validation';
import { paymentIntentSchema } from './intake-schemas';

/**
 * Replies go only to a reply queue of the publisher's own: RabbitMQ's direct reply-to or a
 * server-named queue. Any other name would let a checkout make us publish into a queue it names
 * (our work queues, another checkout's), through the default exchange.
 */
const REPLY_TO = /^amq\.(rabbitmq\.reply-to(\..+)?|gen-[A-Za-z0-9_-]+)$/;

/** What an answer says when no AppError explains the failure: never an internal message. */
const INTERNAL_MESSAGE = 'the intent could not be processed; it is parked for an operator';

export type IntentOutcome = { type: 'payment.created'; created: boolean; payment: PaymentResource } | { type: 'payment.rejected'; messageId: string | null; error: { code: ErrorCode; message: string } };

/**
 * Payment intents over RabbitMQ (README.md, "Payment intents over RabbitMQ"): a checkout
 * publishes the create body instead of calling. The intent acts with the API key mapped to the
 * message's user-id, which RabbitMQ validates against the publishing connection, so the
 * broker's password is never a merchant credential; from there it is the HTTP create, group
 * commit, outbox and timer included. Every intent gets one answer, on the events exchange and to
 * its reply-to: payment.created (a repeat too), or payment.rejected with the error code of the
 * HTTP contract. A rejected intent is acked, never requeued; a failure that may pass (the
 * database away) throws, and the consumer retries it in place.
 */
export function createIntakeService(deps: {
  broker: Broker;
  names: TopologyNames;
  payments: PaymentsService;
  merchants: MerchantsService;
  parking: ParkingRepository;
  bodyLimitBytes: number;
  /** Intents per second per API key, per process: HTTP's per-key limit applies over AMQP too. */
  perKeyPerSecond: number;
  metrics: Metrics;
  logger: Logger;
}) {
  const { broker, names, logger } = deps;
  const perKey = createPerKeyLimit(deps.perKeyPerSecond);

  /** The intent's own id, if it is one we may carry (headers, logs, the parked item). */
  const idOf = (value: unknown): string | undefined => (typeof value === 'string' && CORRELATION_ID.test(value) ? value : undefined);

  /**
   * The answer, confirmed by the broker, before the intent is acked; not mandatory, a gone reply
   * queue is no error. Its messageId derives from the intent's, so a repeated answer (a retry, a
   * redelivery) is recognisably the same.
   */
  async function answer(delivery: Delivery, outcome: IntentOutcome): Promise<void> {
    const props = delivery.message.properties;
    const intentId = idOf(props.messageId);
    const body = Buffer.from(JSON.stringify(outcome.type === 'payment.created' ? outcome.payment : { messageId: outcome.messageId, error: outcome.error }));
    const options = {
      contentType: 'application/json',
      messageId: intentId ? `${intentId}.${outcome.type}` : randomUUID(),
      // Echoed as given (up to AMQP's 255 bytes): the checkout matches its replies with it.
      correlationId: (props.correlationId as string | undefined) ?? (props.messageId as string | undefined),
      type: outcome.type,
      headers: outcome.type === 'payment.created' ? { 'x-compensator-created': outcome.created } : {},
    };
    await broker.publish(names.eventsExchange, outcome.type, body, options);
    const replyTo = props.replyTo as string | undefined;
    if (replyTo && REPLY_TO.test(replyTo)) await broker.publish('', replyTo, body, options);
    else if (replyTo) logger.warn('an intent named a reply-to that is not a reply queue; answered on the events exchange only', { messageId: intentId, replyTo: replyTo.slice(0, 255) });
  }

  async function process(delivery: Delivery): Promise<IntentOutcome> {
    const props = delivery.message.properties;
    const messageId = idOf(props.messageId) ?? null;
    try {
      // The cheap checks first: a flood of junk costs no database query.
      if (delivery.message.content.length > deps.bodyLimitBytes) throw new AppError('PAYLOAD_TOO_LARGE', `an intent body is at most ${deps.bodyLimitBytes} bytes`, 413);
      if (props.contentType !== 'application/json') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'an intent must have contentType application/json', 415);
      if (!messageId) throw new ValidationError('an intent must have a messageId of 1 to 64 characters from [A-Za-z0-9._:-]', [{ path: 'messageId', message: 'required' }]);
      const principal = await deps.merchants.authenticateAmqpUser(props.userId as string | undefined);
      if (!perKey.take(principal.keyId)) throw new AppError('RATE_LIMITED', `more than ${deps.perKeyPerSecond} intents per second with this key; publish more slowly`, 429);
      let body: unknown;
      try {
        body = JSON.parse(delivery.message.content.toString('utf8'));
      } catch {
        throw new ValidationError('the intent body is not JSON');
      }
      const request = parseOrThrow(paymentIntentSchema, body);
      const merchant = await deps.merchants.merchantFor(principal, request.merchantId);
      const { created, payment } = await deps.payments.create(request, { merchantId: merchant.merchant_id, notifyUrl: merchant.notify_url });
      if (created) {
        deps.metrics.paymentsCreated.inc({ channel: payment.channel });
        logger.info('payment created from an intent', { paymentId: payment.public_id, merchantId: payment.merchant_id, orderId: payment.order_id, messageId, amqpUser: props.userId, keyId: principal.keyId });
      }
      return { type: 'payment.created', created, payment: toResource(payment) };
    } catch (err) {
      // A client error is the intent's answer; anything else may pass, and is retried.
      if (!(err instanceof AppError) || err.httpStatus >= 500) throw err;
      logger.info('payment intent rejected', { messageId, amqpUser: String(props.userId ?? '').slice(0, 64), code: err.code, error: err.message });
      return { type: 'payment.rejected', messageId, error: { code: err.code, message: err.message } };
    }
  }

  /** Processes and answers: a correlation id of its own unless the intent carries a usable one. */
  async function run(delivery: Delivery): Promise<IntentOutcome> {
    const props = delivery.message.properties;
    const outcome = await runWithCorrelationId(idOf(props.correlationId) ?? idOf(props.messageId), () => process(delivery));
    await answer(delivery, outcome);
    return outcome;
  }

  return {
    async handle(delivery: Delivery): Promise<void> {
      const outcome = await run(delivery);
      deps.metrics.intents.inc({ outcome: outcome.type === 'payment.rejected' ? 'rejected' : outcome.created ? 'created' : 'repeat' });
      delivery.ack();
    },

    /**
     * An intent that failed every attempt. Processing is idempotent, so it runs once more: when the
     * payment exists (only the answer failed, the broker away) it is answered and acked; when the
     * answer still cannot go, this throws and the consumer keeps retrying, so a created payment
     * is never reported as failed. Only an intent that cannot be processed at all is parked and
     * answered INTERNAL.
     */
    async parkPoison(delivery: Delivery, error: unknown): Promise<void> {
      const props = delivery.message.properties;
      let outcome: IntentOutcome | undefined;
      try {
        outcome = await runWithCorrelationId(idOf(props.correlationId) ?? idOf(props.messageId), () => process(delivery));
      } catch {
        outcome = undefined;
      }
      if (outcome) {
        await answer(delivery, outcome);
        delivery.ack();
        return;
      }
      deps.metrics.parked.inc({ purpose: 'intake', reason: 'poison' });
      await deps.parking.park([{ purpose: 'intake', reason: 'poison', paymentId: null, attempts: 0, lastError: String((error as Error)?.message ?? error), message: delivery.message.content.toString('utf8'), correlationId: idOf(props.messageId) }]);
      await answer(delivery, { type: 'payment.rejected', messageId: idOf(props.messageId) ?? null, error: { code: 'INTERNAL', message: INTERNAL_MESSAGE } }).catch((err: unknown) => logger.warn('a parked intent could not be answered', { messageId: idOf(props.messageId), error: String(err) }));
      delivery.ack();
    },
  };
}

/** At most `perSecond` intents per key in each second, per process (as HTTP's per-key limit). */
function createPerKeyLimit(perSecond: number) {
  let second = 0;
  const counts = new Map<string, number>();
  return {
    take(keyId: string): boolean {
      const now = Math.floor(Date.now() / 1000);
      if (now !== second) {
        second = now;
        counts.clear();
      }
      const n = (counts.get(keyId) ?? 0) + 1;
      counts.set(keyId, n);
      return n <= perSecond;
    },
  };
}
export type IntakeService = ReturnType<typeof createIntakeService>;
