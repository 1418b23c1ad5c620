import type { AdapterConfig } from '../../config/config-schema';
import type { PaymentResource } from '../../payments/payment-resource';
import type { OutboundHttp, OutboundResponse } from '../../shared/outbound-http';
import type { ChannelAdapter, QueryResult } from '../channel-adapter';
import type { RateLimiter } from '../rate-limiter';
import { authorizationHeader, loadWechatPayKeys, signatureHeadersOf, verifyWechatPaySignature } from './wechatpay-signature';

type WechatPayConfig = Extract<AdapterConfig, { type: 'wechatpay' }>;

/** An answer with its headers: WeChat Pay signs answers in them. */
type ChannelAnswer = OutboundResponse;
type ChannelRequest = (method: 'GET' | 'POST', url: string, body: string | undefined, headers: Record<string, string>, timeoutMs: number) => Promise<ChannelAnswer>;

/** What a query's answer may hold; every field is checked before it is believed. */
interface TransactionAnswer {
  mchid?: unknown;
  out_trade_no?: unknown;
  transaction_id?: unknown;
  trade_state?: unknown;
  amount?: { total?: unknown; currency?: unknown };
}


/** The `code` of an error answer (`{"code":"ORDER_NOT_EXIST","message":"..."}`), if it has one. */
function errorCodeOf(answer: ChannelAnswer): string | undefined {
  try {
    const parsed = JSON.parse(answer.body) as { code?: unknown };
    return typeof parsed.code === 'string' ? parsed.code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * WeChat Pay APIv3 (docs/channels.md, "WeChat Pay"): the order is queried by out_trade_no, which is our
 * payment id, and closed when it is not paid. Every request is signed with the merchant's API
 * key; an answer is believed only when WeChat Pay's signature over it verifies with the
 * configured public key, its serial is the configured one and it is fresh, and a transaction
 * only when it names our merchant and the order asked about (a signed answer for another order
 * cannot stand in). Anything else (throttling, 5xx, an unsigned or unknown answer, a transport
 * error) throws, and the worker retries on the remedy schedule: nothing is closed on an answer
 * that was not understood.
 */
export function createWechatPayAdapter(options: { name: string; config: WechatPayConfig; credentials: Record<string, string>; http: OutboundHttp; limiter: RateLimiter; now?: () => number }): ChannelAdapter {
  const { name, config, limiter } = options;
  const keys = loadWechatPayKeys(name, options.credentials);
  const now = options.now ?? Date.now;
  const base = config.baseUrl.replace(/\/$/, '');
  // The outbound client: any method, the answer's headers, its caps, breaker and address policy.
  const send: ChannelRequest = (method, url, body, headers, timeoutMs) => options.http.request(method, url, body, headers, timeoutMs);

  async function call(method: 'GET' | 'POST', path: string, body: string | undefined): Promise<ChannelAnswer> {
    await limiter.take(); // every request counts against the channel's cap, closes included
    const url = new URL(`${base}${path}`);
    const headers: Record<string, string> = {
      authorization: authorizationHeader({ mchid: config.mchid, serialNo: config.merchantSerialNo, privateKey: keys.privateKey, method, pathAndQuery: `${url.pathname}${url.search}`, body: body ?? '', nowMs: now() }),
      accept: 'application/json',
      // WeChat Pay refuses requests without a User-Agent.
      'user-agent': 'payment-compensator (wechatpay adapter)',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    };
    return send(method, url.toString(), body, headers, config.timeoutMs);
  }

  /** Throws unless WeChat Pay signed this answer, with the configured key, just now. */
  function assertSigned(answer: ChannelAnswer, what: string): void {
    const check = verifyWechatPaySignature({
      headers: signatureHeadersOf((header) => answer.headers[header]),
      body: answer.body,
      publicKey: keys.platformPublicKey,
      platformSerial: config.platformSerial,
      nowMs: now(),
    });
    if (!check.ok) throw new Error(`${name} ${what}: answer ${answer.status} refused: ${check.reason}`);
  }

  /** The error for an answer that is not believed; the worker retries it. */
  function unexpected(answer: ChannelAnswer, what: string): Error {
    const code = errorCodeOf(answer);
    const throttled = answer.status === 429 || code === 'FREQUENCY_LIMITED';
    return new Error(`${name} ${what} answered ${answer.status}${code ? ` ${code}` : ''}${throttled ? ' (throttled)' : ''}`);
  }

  function paid(answer: TransactionAnswer, payment: PaymentResource, tradeState: string): QueryResult {
    const total = answer.amount?.total;
    if (typeof answer.transaction_id !== 'string' || answer.transaction_id === '' || typeof total !== 'number' || !Number.isSafeInteger(total)) {
      throw new Error(`${name} query said ${tradeState} without transaction_id and amount.total`);
    }
    const currency = answer.amount?.currency;
    // amount.total is what the order was for; payer_total is after coupons, and not compared.
    // WeChat Pay leaves out the currency when it is CNY, its default: absent means CNY.
    if ((currency ?? 'CNY') !== payment.currency) return { status: 'UNKNOWN', reason: `${name} says ${tradeState} in ${String(currency)}, the payment is in ${payment.currency}` };
    return { status: 'PAID', transactionId: answer.transaction_id, paidAmount: total };
  }

  const orderPath = (payment: PaymentResource) => `/v3/pay/transactions/out-trade-no/${encodeURIComponent(payment.id)}`;

  return {
    name,
    callsChannel: true,
    async queryOrder(payment) {
      const answer = await call('GET', `${orderPath(payment)}?mchid=${encodeURIComponent(config.mchid)}`, undefined);
      if (answer.status === 404 && errorCodeOf(answer) === 'ORDER_NOT_EXIST') {
        // The checkout never created the order (or created it elsewhere): nothing can be paid.
        assertSigned(answer, 'query');
        return { status: 'NOT_PAID', orderMissing: true };
      }
      if (answer.status !== 200) throw unexpected(answer, 'query');
      assertSigned(answer, 'query');
      let parsed: TransactionAnswer;
      try {
        parsed = JSON.parse(answer.body) as TransactionAnswer;
      } catch {
        throw new Error(`${name} query answered with a body that is not JSON`);
      }
      if (parsed.mchid !== config.mchid || parsed.out_trade_no !== payment.id) {
        throw new Error(`${name} query answered for another order (mchid ${String(parsed.mchid)}, out_trade_no ${String(parsed.out_trade_no)})`);
      }
      switch (parsed.trade_state) {
        case 'SUCCESS':
        case 'REFUND': // paid, then (part) refunded: the payment did happen; refunds are the merchant's
          return paid(parsed, payment, parsed.trade_state);
        case 'NOTPAY':
        case 'CLOSED': // close again: WeChat Pay answers it as done, and it keeps the step idempotent
        case 'PAYERROR':
        case 'REVOKED':
          return { status: 'NOT_PAID' };
        case 'USERPAYING':
          // The customer is entering a password: closing now could lose a payment being made.
          return { status: 'UNKNOWN', reason: `${name} says USERPAYING: the customer is paying` };
        default:
          throw new Error(`${name} query answered an unknown trade_state ${JSON.stringify(parsed.trade_state)}`);
      }
    },
    async closeOrder(payment) {
      const answer = await call('POST', `${orderPath(payment)}/close`, JSON.stringify({ mchid: config.mchid }));
      const code = errorCodeOf(answer);
      // 204 is closed now; ORDER_CLOSED was closed before (a repeat after a crash, or the order's
      // own expiry); ORDER_NOT_EXIST has nothing to close. Anything else (202 USER_PAYING, a
      // paid order, throttling, 5xx) throws: the next attempt queries again.
      if (answer.status === 204 || (answer.status === 400 && code === 'ORDER_CLOSED') || (answer.status === 404 && code === 'ORDER_NOT_EXIST')) {
        assertSigned(answer, 'close');
        return;
      }
      throw unexpected(answer, 'close');
    },
  };
}
