import type { PaymentResource } from '../../payments/payment-resource';
import { signGatewayRequest } from '../../shared/gateway-signature';
import type { OutboundHttp } from '../../shared/outbound-http';
import type { ChannelAdapter, QueryContext, QueryResult } from '../channel-adapter';

/**
 * The generic JSON gateway. Requests are POSTs of the payment resource to
 * `{baseUrl}/orders/query` and `{baseUrl}/orders/close`, signed with
 * `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(channelSecret, "<t>.<paymentId>.<body>")>`,
 * the callback's scheme (shared/gateway-signature.ts), so a request is bound to its payment and time. A query answers
 * `{ "status": "PAID", "transactionId", "paidAmount" } | { "status": "NOT_PAID" } | { "status": "UNKNOWN", "reason" }`.
 * The simulator speaks the same protocol.
 */
export function createHttpAdapter(options: { name: string; baseUrl: string; timeoutMs: number; secret: string; http: OutboundHttp }): ChannelAdapter {
  const base = options.baseUrl.replace(/\/$/, '');

  async function post(path: string, payment: PaymentResource, context: QueryContext): Promise<unknown> {
    const body = JSON.stringify(payment);
    // The outbound client refuses private addresses in production, reads at most a few KiB and
    // follows no redirect (shared/outbound-http.ts); its errors are retried like any channel error.
    const res = await options.http.post(
      `${base}${path}`,
      body,
      {
        'content-type': 'application/json',
        'x-signature': signGatewayRequest(options.secret, payment.id, body),
        'x-compensator-attempt': String(context.attempt),
        ...(context.correlationId ? { 'x-request-id': context.correlationId } : {}),
      },
      options.timeoutMs,
    );
    const text = res.body;
    if (res.status < 200 || res.status >= 300) throw new Error(`${options.name} ${path} answered ${res.status}`);
    try {
      return text ? JSON.parse(text) : {};
    } catch {
      throw new Error(`${options.name} ${path} answered with a body that is not JSON`);
    }
  }

  return {
    name: options.name,
    callsChannel: true,
    async queryOrder(payment, context) {
      const answer = (await post('/orders/query', payment, context)) as Partial<{ status: string; transactionId: string; paidAmount: number; reason: string }>;
      switch (answer.status) {
        case 'PAID':
          if (typeof answer.transactionId !== 'string' || typeof answer.paidAmount !== 'number') {
            throw new Error(`${options.name} said PAID without transactionId and paidAmount`);
          }
          return { status: 'PAID', transactionId: answer.transactionId, paidAmount: answer.paidAmount } satisfies QueryResult;
        case 'NOT_PAID':
          return { status: 'NOT_PAID' };
        case 'UNKNOWN':
          return { status: 'UNKNOWN', reason: answer.reason ?? 'channel does not know yet' };
        default:
          throw new Error(`${options.name} answered an unknown status ${JSON.stringify(answer.status)}`);
      }
    },
    async closeOrder(payment, context) {
      // Closed only when the gateway says so: a customer may have paid between query and close,
      // and a 2xx that did not close (`closed: false`) must retry, where the query then sees PAID.
      const answer = (await post('/orders/close', payment, context)) as Partial<{ closed: boolean; reason: string }>;
      if (answer.closed !== true) throw new Error(`${options.name} did not close the order${answer.reason ? ` (${answer.reason})` : ''}`);
    },
  };
}
