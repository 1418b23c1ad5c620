import type { Config } from '../config/config-schema';
import type { DelayScheduler } from '../delay/delay-scheduler';
import type { Delivery } from '../infra/broker';
import { nextAttempt } from '../delay/retry-schedule';
import { isDuplicateKey, withLockRetry, type Database } from '../infra/database';
import type { Metrics } from '../shared/metrics';
import type { Outbox, PendingOutboxMessage } from '../outbox/outbox';
import type { ParkingRepository, ParkedItemInput } from '../parking/parking-repository';
import { toResource } from '../payments/payment-resource';
import type { PaymentEvent, PaymentRow, PaymentsRepository } from '../payments/payments-repository';
import { StaleRowsError, type PaymentTransitions } from '../payments/payment-transitions';
import { groupBy, mapWithConcurrency } from '../shared/concurrency';
import { ConflictError, UnavailableError } from '../shared/errors';
import { OutboundError } from '../shared/outbound-http';
import { currentCorrelationId } from '../shared/request-context';
import type { Logger } from '../shared/logger';
import type { ChannelAdapter } from '../channels/channel-adapter';
import { parseTimer, timerMessage, type TimerMessage } from '../messaging/timer-message';

const SETTLED_PER_LOG_LINE = 100;

/** The id of the request that created the payment, carried as the AMQP correlationId. */
const correlationIdOf = (delivery: Delivery) => delivery.message.properties.correlationId as string | undefined;

interface DueTimer {
  delivery: Delivery;
  timer: TimerMessage;
}

type Decision =
  | { kind: 'pay'; transactionId: string }
  | { kind: 'close' }
  | { kind: 'retry'; error: string; code: RetryCode }
  | { kind: 'park'; reason: string; error: string };
const CLOSE: Decision = { kind: 'close' };

/**
 * Why a remedy retries, as a payment's timeline shows it: a coarse code, never the channel's or
 * the network's own text (it can name internal hosts); that text goes to the logs.
 */
type RetryCode = 'channel_unsure' | 'timeout' | 'network' | 'channel_busy' | 'channel_error';
function retryCodeOf(err: unknown): RetryCode {
  if (!(err instanceof OutboundError)) return 'channel_error';
  if (err.kind === 'timeout' || err.kind === 'network') return err.kind;
  return err.kind === 'refused' ? 'channel_error' : 'channel_busy';
}

/**
 * Settles due timers (docs/design.md, "Remedy"): skip the settled, ask the channel, then one sorted by-id
 * UPDATE per target state in one transaction, and ack only after commit.
 */
export function createCompensationService(deps: {
  config: Config;
  db: Database;
  repository: PaymentsRepository;
  transitions: PaymentTransitions;
  parking: ParkingRepository;
  scheduler: DelayScheduler;
  outbox: Outbox;
  adapters: Map<string, ChannelAdapter>;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}) {
  const { config, repository, metrics, logger } = deps;
  const now = deps.now ?? Date.now;

  function park(delivery: Delivery, item: Omit<ParkedItemInput, 'purpose' | 'message' | 'correlationId'>): ParkedItemInput {
    metrics.parked.inc({ purpose: 'compensation', reason: item.reason });
    return {
      ...item,
      purpose: 'compensation',
      message: delivery.message.content.toString('utf8'),
      correlationId: correlationIdOf(delivery),
    };
  }

  /** The timer again, for a later attempt or for the rest of a delay that arrived early. */
  async function reschedule(due: DueTimer, deadline: number, attempt: number): Promise<void> {
    await deps.scheduler.schedule(timerMessage({ paymentId: due.timer.paymentId, deadline, attempt, correlationId: correlationIdOf(due.delivery) }));
  }

  /** The decision for every payment of a channel that needs no call to it, if it needs none. */
  function decideWithoutCall(channelName: string): Decision | undefined {
    const adapter = deps.adapters.get(channelName);
    if (!config.channels[channelName] || !adapter) return { kind: 'park', reason: 'unknown_channel', error: `channel ${channelName} is not configured` };
    return adapter.callsChannel ? undefined : CLOSE;
  }

  async function decide(payment: PaymentRow, attempt: number, correlationId: string | undefined): Promise<Decision> {
    const withoutCall = decideWithoutCall(payment.channel);
    if (withoutCall) return withoutCall;
    const channel = config.channels[payment.channel] as Config['channels'][string];
    const adapter = deps.adapters.get(payment.channel) as ChannelAdapter;
    const resource = toResource(payment);
    const context = { attempt, correlationId };
    try {
      if (channel.queryBeforeClose) {
        const result = await adapter.queryOrder(resource, context);
        metrics.remedyOutcomes.inc({ channel: payment.channel, result: result.status });
        if (result.status === 'PAID') {
          if (result.paidAmount !== Number(payment.amount)) {
            return { kind: 'park', reason: 'amount_mismatch', error: `channel paid ${result.paidAmount}, expected ${payment.amount}` };
          }
          return { kind: 'pay', transactionId: result.transactionId };
        }
        if (result.status === 'UNKNOWN') return { kind: 'retry', error: result.reason, code: 'channel_unsure' };
        // Before its deadline (a cancel), a missing order may be about to exist: the checkout
        // creates it after our payment, and the customer could still pay it. Never close on that.
        if (result.status === 'NOT_PAID' && result.orderMissing && now() < new Date(payment.expires_at).getTime()) {
          return { kind: 'retry', error: 'the channel has no such order yet, and the payment is not due', code: 'channel_unsure' };
        }
      }
      await adapter.closeOrder(resource, context);
      return CLOSE;
    } catch (err) {
      metrics.remedyOutcomes.inc({ channel: payment.channel, result: 'ERROR' });
      logger.warn('channel call failed', { paymentId: payment.public_id, channel: payment.channel, attempt, correlationId, error: (err as Error).message });
      return { kind: 'retry', error: (err as Error).message, code: retryCodeOf(err) };
    }
  }

  /**
   * A transaction id belongs to one payment of its channel (a unique index): a channel that
   * says PAID with one another payment already holds, or twice in a batch, gets the later
   * payments parked for a person instead of failing the batch on the index.
   */
  async function parkTransactionConflicts<T extends { payment: PaymentRow; decision: Decision }>(decisions: T[]): Promise<T[]> {
    const pays = decisions.filter((i) => i.decision.kind === 'pay');
    const parked: T[] = [];
    if (pays.length === 0) return parked;
    const txOf = (i: (typeof pays)[number]) => (i.decision as { transactionId: string }).transactionId;
    const owners = await repository.findByTransactionIds((pays[0] as (typeof pays)[number]).payment.channel, pays.map(txOf));
    for (const item of pays) {
      const tx = txOf(item);
      const owner = owners.get(tx);
      if (owner === undefined) owners.set(tx, item.payment.id);
      else if (owner !== item.payment.id) {
        item.decision = { kind: 'park', reason: 'transaction_conflict', error: `channel said PAID with transaction ${tx}, which another payment holds` };
        parked.push(item);
      }
    }
    return parked;
  }

  /** Decides and settles the timers of one channel; channels run side by side. */
  async function settleChannel(group: Array<{ payment: PaymentRow; timers: DueTimer[] }>): Promise<void> {
    // A channel that is never called decides the whole group at once, without a promise per payment.
    const withoutCall = decideWithoutCall((group[0] as (typeof group)[number]).payment.channel);
    const decisions = withoutCall
      ? group.map((item) => ({ ...item, decision: withoutCall }))
      : await mapWithConcurrency(group, config.worker.channelConcurrency, async (item) => {
          const first = item.timers[0] as DueTimer;
          return { ...item, decision: await decide(item.payment, first.timer.attempt, correlationIdOf(first.delivery)) };
        });
    await parkTransactionConflicts(decisions);

    const toPark: ParkedItemInput[] = [];
    const settledTimers: DueTimer[] = [];
    const retried: PaymentEvent[] = [];
    for (const item of decisions) {
      const first = item.timers[0] as DueTimer;
      const d = item.decision;
      if (d.kind === 'retry') {
        const next = nextAttempt(config.retry.remedy, first.timer.attempt, now());
        if (next) {
          await reschedule(first, next.deadline, next.attempt);
          metrics.retries.inc({ purpose: 'remedy', attempt: String(next.attempt) });
          retried.push({ paymentId: item.payment.id, from: 'PENDING', to: 'PENDING', cause: 'remedy_retry', at: new Date(now()), details: { attempt: first.timer.attempt, nextAttemptAt: new Date(next.deadline).toISOString(), reason: d.code } });
        } else {
          toPark.push(park(first.delivery, { reason: 'retries_exhausted', paymentId: item.payment.id, attempts: first.timer.attempt, lastError: d.error }));
        }
      } else if (d.kind === 'park') {
        toPark.push(park(first.delivery, { reason: d.reason, paymentId: item.payment.id, attempts: first.timer.attempt, lastError: d.error }));
      }
      settledTimers.push(...item.timers);
    }

    let pays = decisions.filter((i) => i.decision.kind === 'pay');
    const closes = decisions.filter((i) => i.decision.kind === 'close');
    let ids = [...pays, ...closes].map((i) => i.payment.id);
    const correlationIds = new Map(decisions.map((i) => [i.payment.id, correlationIdOf((i.timers[0] as DueTimer).delivery)]));
    // Settle on the rows read before the channel calls: the conditional UPDATE locks them and
    // says whether any changed since. One UPDATE locks in ascending id order by itself, two do
    // not, so a batch with both pays and closes locks all its rows first instead.
    const settle = (lockFirst: boolean) => withLockRetry(
      deps.db,
      config.database.deadlockRetries,
      async (trx) => {
        const rows = lockFirst ? await repository.lockByIds(trx, ids) : decisions.map((i) => i.payment);
        const byId = new Map(rows.map((r) => [r.id, r]));
        const at = new Date(now());
        const paid = await deps.transitions.apply(trx, {
          rows: pays.map((i) => byId.get(i.payment.id)).filter((r): r is PaymentRow => r !== undefined),
          transition: 'pay',
          cause: 'remedy',
          at,
          correlationIds,
          transactionIds: new Map(pays.map((i) => [i.payment.id, (i.decision as { transactionId: string }).transactionId])),
          readUnlocked: !lockFirst,
        });
        const closed = await deps.transitions.apply(trx, {
          rows: closes.map((i) => byId.get(i.payment.id)).filter((r): r is PaymentRow => r !== undefined),
          transition: 'close',
          cause: 'timeout',
          at,
          correlationIds,
          readUnlocked: !lockFirst,
        });
        for (const row of [...paid.changed, ...closed.changed]) {
          metrics.timerLateness.observe(Math.max(0, at.getTime() - new Date(row.expires_at).getTime()) / 1000);
        }
        return { changed: [...paid.changed, ...closed.changed], notifications: [paid.notifications, closed.notifications] };
      },
      (err, attempt) => {
        metrics.lockRetries.inc({ where: 'compensation' });
        logger.warn('settlement transaction retried after a lock conflict', { attempt, errno: (err as { errno?: number }).errno });
      },
    );
    const { changed, notifications } = await settle(pays.length > 0 && closes.length > 0).catch(async (err: unknown) => {
      if (isDuplicateKey(err)) {
        // A callback took one of the transaction ids since the check: check again, park those
        // that lost, and settle the rest with locked rows.
        for (const item of await parkTransactionConflicts(decisions)) {
          const first = item.timers[0] as DueTimer;
          toPark.push(park(first.delivery, { reason: 'transaction_conflict', paymentId: item.payment.id, attempts: first.timer.attempt, lastError: (item.decision as { error: string }).error }));
        }
        pays = decisions.filter((i) => i.decision.kind === 'pay');
        ids = [...pays, ...closes].map((i) => i.payment.id);
        return settle(true);
      }
      if (!(err instanceof StaleRowsError)) throw err;
      // A callback (or a duplicate timer) settled one of them meanwhile: read them again, locked.
      logger.info('settling again with locked rows', { paymentIds: decisions.map((i) => i.payment.public_id), error: err.message });
      return settle(true);
    });
    await deps.parking.park(toPark);
    // The timeline's record is not worth a second reschedule of the timers: best effort.
    await repository.recordEvents(retried).catch((err: unknown) => logger.warn('remedy retries were not recorded in the timeline', { count: retried.length, error: String(err) }));
    for (const t of settledTimers) t.delivery.ack();
    // A line per settled state and up to 100 payments, naming each with the correlation id of the
    // request that created it: grep finds a payment's line, and a drain of 10,000 payments a
    // second writes about a hundred lines, not 10,000 (one winston line each cost a worker ~10 %
    // of its CPU). 100 keeps a line near 10 KB, under log drivers' line limits (Docker: 16 KiB).
    for (const [status, rows] of groupBy(changed, (row) => row.status)) {
      for (let i = 0; i < rows.length; i += SETTLED_PER_LOG_LINE) {
        const some = rows.slice(i, i + SETTLED_PER_LOG_LINE);
        logger.info('payments settled', {
          status,
          count: some.length,
          payments: some.map((row) => ({ paymentId: row.public_id, correlationId: correlationIds.get(row.id), lateMs: row.updated_at.getTime() - row.expires_at.getTime() })),
        });
      }
    }
    await deps.outbox.flush(notifications);
  }

  /**
   * Whether the payment's final state came from a merchant's cancel: CLOSED with cause
   * merchant_cancel, or PAID by a remedy the cancel asked for. A repeat cancel answers it again.
   */
  async function settledByCancel(row: PaymentRow): Promise<boolean> {
    const last = await repository.lastEventOf(row.id, ['merchant_cancel', 'remedy']);
    if (!last || last.to_status !== row.status) return false;
    const details: unknown = typeof last.details === 'string' ? JSON.parse(last.details) : last.details;
    return last.cause === 'merchant_cancel' || (details as { requestedBy?: string } | null)?.requestedBy === 'merchant_cancel';
  }

  async function answerSettled(row: PaymentRow): Promise<PaymentRow> {
    if (await settledByCancel(row)) return row;
    throw new ConflictError(`payment is already ${row.status}`, [{ path: 'status', message: row.status }]);
  }

  const cancelsInFlight = new Map<number, Promise<PaymentRow>>();

  /** One cancel's remedy (see `cancel` below). */
  async function cancelOnce(payment: PaymentRow): Promise<PaymentRow> {
    if (payment.status !== 'PENDING') return answerSettled(payment);
    const correlationId = currentCorrelationId();
    const decision = await decide(payment, 1, correlationId);
    if (decision.kind === 'retry') {
      logger.info('cancel: the channel did not confirm the state', { paymentId: payment.public_id, error: decision.error, correlationId });
      throw new UnavailableError("the channel did not confirm the payment's state; retry the cancel"); // its error is logged, not shown
    }
    if (decision.kind === 'park') throw new ConflictError(`the channel's answer needs a person (${decision.reason}); the payment stays PENDING until its timer parks it`, [{ path: 'status', message: payment.status }]);
    let notifications: PendingOutboxMessage | undefined;
    try {
      notifications = await withLockRetry(deps.db, config.database.deadlockRetries, async (trx) => {
        const rows = await repository.lockByIds(trx, [payment.id]);
        const at = new Date(now());
        const result =
          decision.kind === 'pay'
            ? await deps.transitions.apply(trx, { rows, transition: 'pay', cause: 'remedy', at, transactionIds: new Map([[payment.id, decision.transactionId]]), details: () => ({ requestedBy: 'merchant_cancel' }) })
            : await deps.transitions.apply(trx, { rows, transition: 'close', cause: 'merchant_cancel', at });
        return result.notifications;
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      throw new ConflictError('the channel said PAID with a transaction id another payment holds; the payment stays PENDING until its timer parks it', [{ path: 'status', message: payment.status }]);
    }
    await deps.outbox.flush([notifications]);
    // Ours, or whatever settled it first (its timer, a callback, another cancel).
    return answerSettled((await repository.findById(payment.id)) as PaymentRow);
  }

  return {
    /**
     * A merchant's cancel (`POST /v1/payments/:id/cancel`): the remedy of a due timer, now. The
     * channel is asked first; PAID settles the payment as paid, otherwise the order is closed
     * there and the payment CLOSED with cause merchant_cancel, notified like any settlement.
     * No answer from the channel changes nothing (503, the merchant retries); an answer that
     * needs a person (an amount mismatch, a taken transaction id) is 409 and left to the timer,
     * which parks it. A repeat answers the same state; a payment settled otherwise is 409.
     */
    cancel(payment: PaymentRow): Promise<PaymentRow> {
      // Concurrent cancels of one payment share one remedy: a burst of repeats asks the channel once.
      let running = cancelsInFlight.get(payment.id);
      if (!running) {
        running = cancelOnce(payment).finally(() => cancelsInFlight.delete(payment.id));
        cancelsInFlight.set(payment.id, running);
      }
      return running;
    },

    /** A message that failed every attempt on its own: parked with the error, then acked. */
    async parkPoison(delivery: Delivery, error: unknown): Promise<void> {
      const timer = parseTimer(delivery.message);
      await deps.parking.park([park(delivery, { reason: 'poison', paymentId: timer.ok ? timer.value.paymentId : null, attempts: timer.ok ? timer.value.attempt : 0, lastError: String((error as Error)?.message ?? error) })]);
      delivery.ack();
    },

    async handleBatch(deliveries: Delivery[]): Promise<void> {
      const at = now();
      const due: DueTimer[] = [];
      const toPark: ParkedItemInput[] = [];
      const ackAfterParking: Delivery[] = [];
      for (const delivery of deliveries) {
        const parsed = parseTimer(delivery.message, at);
        if (!parsed.ok) {
          toPark.push(park(delivery, { reason: 'malformed', paymentId: null, attempts: 0, lastError: parsed.error }));
          ackAfterParking.push(delivery);
        } else if (parsed.value.deadline > at) {
          // Never act early: send the rest of the delay round again.
          await reschedule({ delivery, timer: parsed.value }, parsed.value.deadline, parsed.value.attempt);
          delivery.ack();
        } else {
          due.push({ delivery, timer: parsed.value });
        }
      }

      const payments = new Map((await repository.findByIds(due.map((d) => d.timer.paymentId))).map((p) => [p.id, p]));
      const pending: DueTimer[] = [];
      for (const d of due) {
        const payment = payments.get(d.timer.paymentId);
        if (!payment) {
          toPark.push(park(d.delivery, { reason: 'unknown_payment', paymentId: null, attempts: d.timer.attempt, lastError: `no payment with id ${d.timer.paymentId}` }));
          ackAfterParking.push(d.delivery);
        } else if (payment.status !== 'PENDING') {
          // Already settled, by a callback or an earlier delivery of the same timer.
          logger.debug('timer was a no-op', { paymentId: payment.public_id, status: payment.status, correlationId: correlationIdOf(d.delivery) });
          d.delivery.ack();
        } else {
          pending.push(d);
        }
      }
      await deps.parking.park(toPark);
      for (const delivery of ackAfterParking) delivery.ack();

      const byPayment = groupBy(pending, (d) => d.timer.paymentId);
      const items = [...byPayment.entries()].map(([id, timers]) => ({ payment: payments.get(id) as PaymentRow, timers }));
      await Promise.all([...groupBy(items, (i) => i.payment.channel).values()].map((group) => settleChannel(group)));
    },
  };
}
export type CompensationService = ReturnType<typeof createCompensationService>;
