import type { PaymentResource } from '../payments/payment-resource';

/** What the channel says about an order. UNKNOWN means "ask again later". */
export type QueryResult =
  | { status: 'PAID'; transactionId: string; paidAmount: number }
  /**
   * `orderMissing`: the channel has no such order (yet). At or after the deadline that is not
   * paid; before it (a merchant's cancel), the checkout may still be about to create it, so the
   * worker asks again rather than close.
   */
  | { status: 'NOT_PAID'; orderMissing?: boolean }
  | { status: 'UNKNOWN'; reason: string };

/** Passed to the channel for its logs: which attempt this is (1 for the timer itself), and the
 * correlation id of the request that created the payment. */
export interface QueryContext {
  attempt: number;
  correlationId?: string;
}

/**
 * One payment channel (acquirer, wallet, QR). Implementations throw on transport errors and
 * timeouts; the worker treats a throw like UNKNOWN and retries on the schedule.
 */
export interface ChannelAdapter {
  readonly name: string;
  /**
   * Whether there is a channel to call at all. `none` has none: the worker closes without asking
   * and calls neither method (nor builds the payment resource they take).
   */
  readonly callsChannel: boolean;
  queryOrder(payment: PaymentResource, context: QueryContext): Promise<QueryResult>;
  /** Closes the order at the channel so the customer can no longer pay it. */
  closeOrder(payment: PaymentResource, context: QueryContext): Promise<void>;
}
