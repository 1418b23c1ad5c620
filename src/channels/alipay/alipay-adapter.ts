import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { AlipaySdk, type AlipaySdkCommonResult } from 'alipay-sdk';
import type { AdapterConfig } from '../../config/config-schema';
import type { PaymentResource } from '../../payments/payment-resource';
import type { ChannelAdapter, QueryResult } from '../channel-adapter';
import type { RateLimiter } from '../rate-limiter';
import { OutboundError, type OutboundHttp } from '../../shared/outbound-http';

type AlipayConfig = Extract<AdapterConfig, { type: 'alipay' }>;

/** Alipay's answer codes (OpenAPI 2.0 gateway): 10000 is success, 40004 a business refusal. */
const SUCCESS = '10000';
const BUSINESS_FAILED = '40004';
const TRADE_NOT_EXIST = 'ACQ.TRADE_NOT_EXIST';
const TRADE_STATUS_ERROR = 'ACQ.TRADE_STATUS_ERROR';
/** The only currency total_amount is read in: yuan with at most two decimals. */
const CURRENCY = 'CNY';
/** How long a query's TRADE_CLOSED spares the close that follows it (decide() closes at once). */
const CLOSED_MEMORY_MS = 60_000;
const CLOSED_MEMORY_MAX = 10_000;
const ERROR_TEXT_MAX = 200;

/**
 * An amount in yuan as Alipay writes it ("19.99", "100", "0.5") in minor units (fen), by string
 * arithmetic: no floating point touches money. Anything else (a sign, an exponent, a third
 * decimal, more than 12 integer digits) is undefined, and the caller believes nothing.
 */
export function yuanToMinorUnits(value: unknown): number | undefined {
  // A JSON number is read back through its shortest decimal text, which is the text Alipay wrote.
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') return undefined;
  const match = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/** Beijing time (GMT+8) as Alipay writes and reads it: yyyy-MM-dd HH:mm:ss. */
export function formatAlipayTime(ms: number): string {
  return new Date(ms + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
}

function rsaKey(key: KeyObject, variable: string): KeyObject {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < 2048) throw new Error(`${variable} must be an RSA key of at least 2048 bits (RSA2)`);
  return key;
}

/**
 * The app's private key as PKCS#8 PEM. Alipay's key tool writes bare base64 (PKCS#8, or PKCS#1
 * for "non-Java"), other tools PEM of either kind; all are accepted and checked here, at start.
 */
function privateKeyPem(value: string, variable: string): string {
  let key: KeyObject | undefined;
  if (value.includes('-----BEGIN')) {
    try {
      key = createPrivateKey(value);
    } catch {
      /* named below */
    }
  } else {
    const der = Buffer.from(value.replace(/\s+/g, ''), 'base64');
    for (const type of ['pkcs8', 'pkcs1'] as const) {
      try {
        key = createPrivateKey({ key: der, format: 'der', type });
        break;
      } catch {
        /* the other encoding, then named below */
      }
    }
  }
  if (!key) throw new Error(`${variable} is not an RSA private key (PEM, or the base64 Alipay's key tool writes)`);
  return rsaKey(key, variable).export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** Alipay's public key (public-key mode, not certificate mode) as SPKI PEM, from PEM or bare base64. */
function publicKeyPem(value: string, variable: string): string {
  let key: KeyObject;
  try {
    key = value.includes('-----BEGIN') ? createPublicKey(value) : createPublicKey({ key: Buffer.from(value.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new Error(`${variable} is not an RSA public key (PEM, or the base64 the Alipay console shows)`);
  }
  return rsaKey(key, variable).export({ format: 'pem', type: 'spki' }) as string;
}

/**
 * The official SDK for one channel: requests signed RSA2 with the app's private key, answers
 * verified with Alipay's public key. Its keys are CHANNEL_<NAME>_PRIVATE_KEY and
 * CHANNEL_<NAME>_ALIPAY_PUBLIC_KEY (docs/channels.md, "Alipay"); a bad one fails the start, naming it.
 */
export function createAlipaySdk(name: string, config: AlipayConfig, credentials: Record<string, string>): AlipaySdk {
  const prefix = `CHANNEL_${name.toUpperCase()}_`;
  const privateKey = credentials.PRIVATE_KEY;
  const alipayPublicKey = credentials.ALIPAY_PUBLIC_KEY;
  if (!privateKey || !alipayPublicKey) throw new Error(`channel ${name}: ${prefix}PRIVATE_KEY and ${prefix}ALIPAY_PUBLIC_KEY are required`);
  return new AlipaySdk({
    appId: config.appId,
    privateKey: privateKeyPem(privateKey, `${prefix}PRIVATE_KEY`),
    keyType: 'PKCS8',
    alipayPublicKey: publicKeyPem(alipayPublicKey, `${prefix}ALIPAY_PUBLIC_KEY`),
    signType: 'RSA2',
    gateway: config.gateway,
  });
}

/**
 * Alipay through the official `alipay-sdk` (docs/channels.md, "Alipay"): `alipay.trade.query`, then
 * `alipay.trade.close`, by out_trade_no = our payment id, signed and verified by the SDK. Only
 * what Alipay's signature covers is believed: a forged or altered answer throws and is retried.
 *
 * trade_status → result (README.md says why):
 *   TRADE_SUCCESS, TRADE_FINISHED → PAID (trade_no, total_amount in fen)
 *   WAIT_BUYER_PAY, TRADE_CLOSED, sub_code ACQ.TRADE_NOT_EXIST → NOT_PAID (then closed)
 *   any other status → UNKNOWN (never closed, asked again)
 *   any other answer (ACQ.SYSTEM_ERROR, aop.ACQ.SYSTEM_ERROR, a throttle, HTTP 5xx or 429,
 *   a timeout, a bad signature) → thrown, retried on the remedy schedule.
 * Closing is idempotent: ACQ.TRADE_STATUS_ERROR is success only when Alipay then says the
 * trade is closed (a crash repeated the close); a trade paid meanwhile makes the close throw.
 */
export function createAlipayAdapter(options: {
  name: string;
  config: AlipayConfig;
  credentials: Record<string, string>;
  /** The outbound client for channel gateways (src/app.ts channelsHttp). */
  http: OutboundHttp;
  limiter: RateLimiter;
  now?: () => number;
}): ChannelAdapter {
  const { name, limiter } = options;
  const timeoutMs = options.config.timeoutMs;
  const now = options.now ?? Date.now;
  const sdk = createAlipaySdk(name, options.config, options.credentials);
  /** Payments a query just found TRADE_CLOSED, a final state: their close needs no call. */
  const closedAt = new Map<string, number>();

  /**
   * One gateway call: the parameters signed by the SDK (sdkExecute: RSA2 over the sorted
   * parameters, with the app's private key), posted as a form, and the answer verified by the
   * SDK (getSignStr, rsaCheck). Why not sdk.exec: it verifies the first `<method>_response` of the
   * text but hands back JSON.parse's, which is the last, so a second one added after the sign
   * would be believed unsigned. Here only the text the signature covers is parsed.
   */
  async function call(method: 'alipay.trade.query' | 'alipay.trade.close', payment: PaymentResource): Promise<AlipaySdkCommonResult> {
    await limiter.take();
    const failed = (what: string, cause?: unknown) => new Error(`${name} ${method}: ${what}`.slice(0, ERROR_TEXT_MAX), { cause });
    // Alipay reads its parameters from the query string or the form body alike. The SDK would
    // write the timestamp in the process's time zone; Alipay reads it as Beijing time.
    const form = sdk.sdkExecute(method, { bizContent: { out_trade_no: payment.id }, timestamp: formatAlipayTime(now()) });
    let status: number;
    let text: string;
    try {
      // Through the outbound client: its address policy, answer cap, per-host slots and breaker.
      const res = await options.http.request('POST', sdk.config.gateway, form, { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8', accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': sdk.version }, timeoutMs);
      status = res.status;
      text = res.body;
    } catch (err) {
      if (err instanceof OutboundError) throw err; // timeout, network, busy: retried, and counted per host
      throw failed((err as Error).message, err);
    }
    if (status !== 200) throw failed(`the gateway answered HTTP ${status}`);

    const key = `${method.replace(/\./g, '_')}_response`;
    let envelope: unknown;
    try {
      envelope = JSON.parse(text);
    } catch {
      envelope = undefined;
    }
    const sign = (envelope as { sign?: unknown } | undefined)?.sign;
    if (typeof envelope !== 'object' || envelope === null || !(key in envelope) || typeof sign !== 'string') {
      throw failed(`the gateway's answer is not a signed ${key}`);
    }
    const signed = sdk.getSignStr(text, key);
    if (!sdk.rsaCheck(signed, sign, 'RSA2')) throw failed("the answer's signature did not verify with the Alipay public key");
    let answer: AlipaySdkCommonResult;
    try {
      answer = JSON.parse(signed) as AlipaySdkCommonResult;
    } catch {
      throw failed('the signed answer is not JSON');
    }
    if (typeof answer !== 'object' || answer === null) throw failed('the signed answer is not an object');
    // A signed answer about another order (a replay of someone else's) settles nothing.
    if (answer.out_trade_no !== undefined && answer.out_trade_no !== payment.id) {
      throw failed(`the answer is about out_trade_no ${String(answer.out_trade_no).slice(0, 64)}, not ${payment.id}`);
    }
    return answer;
  }

  const refusal = (method: string, answer: AlipaySdkCommonResult) =>
    new Error(`${name} ${method} answered ${String(answer.code)} ${String(answer.sub_code ?? answer.msg ?? '')}`.slice(0, ERROR_TEXT_MAX));

  /** The query's result, and the trade's state at Alipay (`missing` for ACQ.TRADE_NOT_EXIST). */
  async function query(payment: PaymentResource): Promise<{ result: QueryResult; trade: string }> {
    const answer = await call('alipay.trade.query', payment);
    if (answer.code === BUSINESS_FAILED && answer.sub_code === TRADE_NOT_EXIST) return { result: { status: 'NOT_PAID', orderMissing: true }, trade: 'missing' };
    if (answer.code !== SUCCESS) throw refusal('alipay.trade.query', answer);
    if (answer.out_trade_no !== payment.id) throw new Error(`${name} alipay.trade.query: a success without our out_trade_no`);
    const status = String(answer.trade_status);
    return { result: mapTradeStatus(payment, status, answer), trade: status };
  }

  function mapTradeStatus(payment: PaymentResource, status: string, answer: AlipaySdkCommonResult): QueryResult {
    switch (status) {
      case 'TRADE_SUCCESS':
      case 'TRADE_FINISHED': {
        const paidAmount = yuanToMinorUnits(answer.total_amount);
        const transactionId = typeof answer.trade_no === 'string' ? answer.trade_no : '';
        if (paidAmount === undefined || transactionId === '' || transactionId.length > 64) {
          throw new Error(`${name} alipay.trade.query said ${status} without a trade_no and a total_amount in yuan`);
        }
        const currency = typeof answer.trans_currency === 'string' && answer.trans_currency !== '' ? answer.trans_currency : CURRENCY;
        if (currency !== CURRENCY || payment.currency !== CURRENCY) {
          return { status: 'UNKNOWN', reason: `paid in ${currency} for a ${payment.currency} payment: this adapter reads CNY only, a person must settle it` };
        }
        return { status: 'PAID', transactionId, paidAmount };
      }
      case 'TRADE_CLOSED':
        if (closedAt.size >= CLOSED_MEMORY_MAX) closedAt.clear();
        closedAt.set(payment.id, now());
        return { status: 'NOT_PAID' };
      case 'WAIT_BUYER_PAY':
        return { status: 'NOT_PAID' };
      default:
        return { status: 'UNKNOWN', reason: `trade_status ${status.slice(0, 40)} is not one this adapter acts on` };
    }
  }

  return {
    name,
    callsChannel: true,
    queryOrder: async (payment) => (await query(payment)).result,
    async closeOrder(payment) {
      const closedSince = closedAt.get(payment.id);
      closedAt.delete(payment.id);
      if (closedSince !== undefined && now() - closedSince < CLOSED_MEMORY_MS) return;

      const answer = await call('alipay.trade.close', payment);
      if (answer.code === SUCCESS) return;
      // No trade at Alipay yet (a QR code never scanned): nothing to close. The checkout's
      // time_expire (docs/channels.md, "Alipay") stops a scan after the deadline from paying.
      if (answer.code === BUSINESS_FAILED && answer.sub_code === TRADE_NOT_EXIST) return;
      if (answer.code === BUSINESS_FAILED && answer.sub_code === TRADE_STATUS_ERROR) {
        // Closed already (a repeat after a crash), or paid since the query: ask which.
        const { trade } = await query(payment);
        closedAt.delete(payment.id);
        if (trade === 'TRADE_CLOSED' || trade === 'missing') return;
        throw new Error(`${name} alipay.trade.close was refused: the trade is ${trade.slice(0, 40)} now`);
      }
      throw refusal('alipay.trade.close', answer);
    },
  };
}
