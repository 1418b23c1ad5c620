export interface SettledPayment {
  paymentId: string;
  status: string;
  correlationId?: string;
  lateMs: number;
}

/**
 * The payments named by a worker's "payments settled" log lines (one JSON line per settled batch
 * and state, listing its payments), in log order.
 */
export function settledPayments(logLines: string[]): SettledPayment[] {
  return logLines
    .filter((l) => l.includes('"payments settled"'))
    .flatMap((l) => {
      const line = JSON.parse(l) as { status: string; payments: Array<Omit<SettledPayment, 'status'>> };
      return line.payments.map((p) => ({ ...p, status: line.status }));
    });
}
