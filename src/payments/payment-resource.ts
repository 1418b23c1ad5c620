import type { PaymentRow } from './payments-repository';

export interface PaymentResource {
  id: string;
  merchantId: string;
  orderId: string;
  amount: number;
  currency: string;
  channel: string;
  status: string;
  createdAt: string;
  expiresAt: string;
  paidAt: string | null;
  closedAt: string | null;
  transactionId: string | null;
}

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

/** The public shape of a payment (README.md, "HTTP API"); the numeric key never leaves the service. */
export function toResource(row: PaymentRow): PaymentResource {
  return {
    id: row.public_id,
    merchantId: row.merchant_id,
    orderId: row.order_id,
    amount: Number(row.amount),
    currency: row.currency,
    channel: row.channel,
    status: row.status,
    createdAt: iso(row.created_at) as string,
    expiresAt: iso(row.expires_at) as string,
    paidAt: iso(row.paid_at),
    closedAt: iso(row.closed_at),
    transactionId: row.transaction_id,
  };
}
