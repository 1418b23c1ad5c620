export const PaymentStatus = {
  PENDING: 'PENDING',
  PAID: 'PAID',
  FAILED: 'FAILED',
  CLOSED: 'CLOSED',
  PAID_AFTER_CLOSE: 'PAID_AFTER_CLOSE',
} as const;
export type PaymentStatus = (typeof PaymentStatus)[keyof typeof PaymentStatus];

/** Why a transition (or a recorded non-transition) happened; stored in payment_events.cause. */
export type TransitionCause =
  | 'created'
  | 'callback'
  | 'late_callback'
  | 'remedy'
  | 'timeout'
  | 'amount_mismatch'
  | 'callback_conflict'
  /** The merchant cancelled: the channel said not paid, and the order was closed there. */
  | 'merchant_cancel'
  /** Recorded, no transition: the channel gave no answer, and the remedy retries later. */
  | 'remedy_retry'
  /** Recorded, no transition: the merchant acknowledged a notification. */
  | 'notification_delivered';

/** Causes of events that record what happened without a transition (from = to, no conflict). */
export const RECORDED_CAUSES: readonly TransitionCause[] = ['remedy_retry', 'notification_delivered'];

/** The state machine of docs/design.md, "Settling by primary key": which status a transition may start from. */
export const TRANSITIONS: Record<string, { from: PaymentStatus; to: PaymentStatus }> = {
  pay: { from: 'PENDING', to: 'PAID' },
  fail: { from: 'PENDING', to: 'FAILED' },
  close: { from: 'PENDING', to: 'CLOSED' },
  payAfterClose: { from: 'CLOSED', to: 'PAID_AFTER_CLOSE' },
};

export function isFinal(status: PaymentStatus): boolean {
  return status !== 'PENDING';
}
