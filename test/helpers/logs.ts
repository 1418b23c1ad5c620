export interface SettledPayment {
  paymentId: string;
  status: string;
  correlationId?: string;
  lateMs: number;
}

/**
 * The payments named by a worker's "payments settled" log lines (JSON lines, each listing up to
 * 100 payments of one state), in log order. A line still being written (a child process's log
 * file read while it runs) does not parse yet and is skipped.
 */
export function settledPayments(logLines: string[]): SettledPayment[] {
  return logLines
    .filter((l) => l.includes('"payments settled"'))
    .flatMap((l) => {
      let line: { status: string; payments: Array<Omit<SettledPayment, 'status'>> };
      try {
        line = JSON.parse(l) as typeof line;
      } catch {
        return [];
      }
      return line.payments.map((p) => ({ ...p, status: line.status }));
    });
}
