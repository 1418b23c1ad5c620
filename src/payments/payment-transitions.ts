import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { notificationMessage } from '../messaging/notification-message';
import type { Metrics } from '../shared/metrics';
import type { Outbox, PendingOutboxMessage } from '../outbox/outbox';
import { currentCorrelationId } from '../shared/request-context';
import { TRANSITIONS, type TransitionCause } from './payment-states';
import { toResource } from './payment-resource';
import type { PaymentRow, PaymentsRepository } from './payments-repository';

export type TransitionName = keyof typeof TRANSITIONS;

export interface TransitionRequest {
  /** Locked by the caller in this transaction, or read before it when `readUnlocked` is set. */
  rows: PaymentRow[];
  /**
   * The rows were read before the transaction, without a lock. The conditional UPDATE then
   * locks them; if one is no longer in the `from` state, apply throws StaleRowsError and the
   * caller settles again with locked rows. A row still in the state it was read in is unchanged,
   * because states only move forward and every change of a payment is a transition.
   */
  readUnlocked?: boolean;
  transition: TransitionName;
  cause: TransitionCause;
  at: Date;
  transactionIds?: Map<number, string>;
  details?: (row: PaymentRow) => Record<string, unknown> | undefined;
  /** Per payment: the id of the request that created it, so its notification carries it too. */
  correlationIds?: Map<number, string | undefined>;
}

export interface TransitionResult {
  changed: PaymentRow[];
  /** Merchant notifications written to the outbox (one row); flush them after commit. */
  notifications: PendingOutboxMessage | undefined;
}

/** Some rows read without a lock changed before the UPDATE; the transaction must roll back. */
export class StaleRowsError extends Error {}

/**
 * The single place a payment changes state: one conditional UPDATE per target state, one audit
 * row per transition, and a merchant notification in the same transaction.
 */
export function createPaymentTransitions(deps: { repository: PaymentsRepository; outbox: Outbox; metrics: Metrics }) {
  return {
    async apply(trx: Knex.Transaction, request: TransitionRequest): Promise<TransitionResult> {
      const { from, to } = TRANSITIONS[request.transition] as (typeof TRANSITIONS)[string];
      const candidates = request.rows.filter((r) => r.status === from);
      if (candidates.length === 0) return { changed: [], notifications: undefined };
      const affected = await deps.repository.transition(trx, candidates.map((r) => r.id), from, to, {
        at: request.at,
        transactionIds: request.transactionIds,
      });
      if (affected !== candidates.length) {
        if (request.readUnlocked) throw new StaleRowsError(`transition ${request.transition}: ${candidates.length - affected} of ${candidates.length} rows changed since they were read`);
        // The rows are locked, so every candidate must have changed; anything else is a bug.
        throw new Error(`transition ${request.transition}: expected ${candidates.length} rows, updated ${affected}`);
      }
      const changed = candidates.map((r) => ({
        ...r,
        status: to,
        updated_at: request.at,
        paid_at: to === 'PAID' || to === 'PAID_AFTER_CLOSE' ? request.at : r.paid_at,
        closed_at: to === 'CLOSED' || to === 'FAILED' ? request.at : r.closed_at,
        transaction_id: request.transactionIds?.get(r.id) ?? r.transaction_id,
      }));
      if (request.details) {
        const details = request.details;
        await deps.repository.appendEvents(trx, changed.map((r) => ({ paymentId: r.id, from, to, cause: request.cause, at: request.at, details: details(r) })));
      } else {
        await deps.repository.appendTransitionEvents(trx, changed.map((r) => r.id), from, to, request.cause, request.at);
      }
      // Counted before commit: a rolled-back transaction may overcount by a batch, never undercount.
      deps.metrics.transitions.inc({ from, to, cause: request.cause }, changed.length);
      const notifications = await deps.outbox.add(
        trx,
        changed
          .filter((row) => row.notify_url)
          .map((row) =>
            notificationMessage({
              eventId: randomUUID(),
              type: `payment.${to.toLowerCase()}`,
              paymentId: row.id,
              notifyUrl: row.notify_url as string,
              payment: { ...toResource(row) },
              deadline: request.at.getTime(),
              attempt: 1,
              correlationId: request.correlationIds?.get(row.id) ?? currentCorrelationId(),
            }),
          ),
      );
      return { changed, notifications };
    },
  };
}
export type PaymentTransitions = ReturnType<typeof createPaymentTransitions>;
