import type { PaymentResource } from '../../payments/payment-resource';

/** What the channel says about an order. UNKNOWN means "ask again later". */
export type QueryResult =
  | { status: 'PAID'; transactionId: string; paidAmount: number }
  | { status: 'NOT_PAID' }
  | { status: 'UNKNOWN'; reason: string };

/** Which attempt this is (1 for the timer itself), passed to the channel for its logs. */
export interface QueryContext {
  attempt: number;
}

/**
 * One payment channel (acquirer, wallet, QR). Implementations throw on transport errors and
 * timeouts; the worker treats a throw like UNKNOWN and retries on the schedule.
 */
export interface ChannelAdapter {
  readonly name: string;
  /** Whether queryOrder means anything; `none` closes without asking. */
  readonly canQuery: boolean;
  queryOrder(payment: PaymentResource, context: QueryContext): Promise<QueryResult>;
  /** Closes the order at the channel so the customer can no longer pay it. */
  closeOrder(payment: PaymentResource, context: QueryContext): Promise<void>;
}
