import type { RequestHandler, Response } from 'express';
import { createAlipaySdk, yuanToMinorUnits } from './alipay-adapter';
import { ConflictError } from '../../shared/errors';
import type { NotifyHandlerOptions } from '../notify-handler';

/**
 * How old a notification's notify_time may be. Alipay retries a notification it did not get
 * `success` for 8 times in about 25 hours (after 4m, 10m, 10m, 1h, 2h, 6h and 15h: the last
 * 24h24m after the first), so this bound lets every retry through whether or not a retry carries
 * a new notify_time. What it stops is a captured notification replayed later; within it, a replay
 * can only repeat what Alipay signed, and applying the same SUCCESS again is a no-op.
 */
export const ALIPAY_NOTIFY_MAX_AGE_MS = 25 * 3600_000;
/** Clock skew tolerated the other way: a notification from the future is refused past this. */
export const ALIPAY_NOTIFY_MAX_AHEAD_MS = 5 * 60_000;
const BEIJING_OFFSET_MS = 8 * 3600_000;

/** Alipay's times, "yyyy-MM-dd HH:mm:ss" in Beijing time (GMT+8), as unix ms; undefined if malformed. */
export function parseAlipayTime(text: string | undefined): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(text ?? '');
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s) - BEIJING_OFFSET_MS;
  // Date.UTC rolls 2024-02-30 over into March: only a real date reads back the same.
  return new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ') === text ? ms : undefined;
}

/** Alipay stops retrying on exactly `success`; any other body (here `fail`) makes it retry. */
function answer(res: Response, ok: boolean, status = ok ? 200 : 400): void {
  res.status(status).type('text/plain').send(ok ? 'success' : 'fail');
}

/**
 * `POST /v1/channels/<name>/notify`, Alipay's asynchronous notification (trade_status_sync,
 * README.md "Alipay"). The form body is parsed here from the raw bytes; nothing in it is believed
 * before the SDK's checkNotifySignV2 verifies Alipay's RSA2 signature, which covers every field
 * but sign and sign_type, with Alipay's public key. Then app_id must be this channel's, notify_time
 * within ALIPAY_NOTIFY_MAX_AGE_MS, and out_trade_no a payment of this channel. TRADE_SUCCESS and
 * TRADE_FINISHED apply as a SUCCESS callback with trade_no and total_amount in fen, so a different
 * amount is recorded as a mismatch. WAIT_BUYER_PAY and TRADE_CLOSED change nothing: the timer
 * closes (asking Alipay first), and a TRADE_CLOSED after a full refund is not this service's
 * business. Answers `success`, or `fail` with nothing changed so Alipay retries.
 */
export function createAlipayNotifyHandler(options: NotifyHandlerOptions<'alipay'>): RequestHandler {
  const { name, config, payments, logger } = options;
  const now = options.now ?? Date.now;
  const sdk = createAlipaySdk(name, config, options.credentials);

  return async (req, res) => {
    // No prototype: a field named __proto__ is a field like any other.
    const fields = Object.create(null) as Record<string, string>;
    const refuse = (reason: string): void => {
      logger.warn('alipay notification refused', { reason, outTradeNo: fields.out_trade_no?.slice(0, 64), notifyId: fields.notify_id?.slice(0, 64) });
      answer(res, false);
    };
    // Alipay posts application/x-www-form-urlencoded; charset=utf-8 (the charset the order was made with).
    if (!req.is('application/x-www-form-urlencoded') || !Buffer.isBuffer(req.body)) return refuse('not a form body');
    for (const [key, value] of new URLSearchParams(req.body.toString('utf8'))) {
      // Alipay sends each field once; a repeated one would let the signed value differ from the read one.
      if (Object.hasOwn(fields, key)) return refuse(`field ${key.slice(0, 40)} is repeated`);
      fields[key] = value;
    }
    if (fields.sign_type !== 'RSA2') return refuse('sign_type is not RSA2');
    if (fields.charset !== undefined && fields.charset.toLowerCase() !== 'utf-8') return refuse('charset is not utf-8');
    let verified = false;
    try {
      verified = sdk.checkNotifySignV2(fields);
    } catch {
      verified = false; // a malformed signature throws in node:crypto
    }
    if (!verified) return refuse('the signature does not verify with the Alipay public key');
    // Signed by Alipay from here on: every field below is Alipay's word.
    if (fields.app_id !== config.appId) return refuse(`app_id ${fields.app_id?.slice(0, 32)} is not this channel's`);
    const notifiedAt = parseAlipayTime(fields.notify_time);
    if (notifiedAt === undefined) return refuse('notify_time is not yyyy-MM-dd HH:mm:ss');
    if (now() - notifiedAt > ALIPAY_NOTIFY_MAX_AGE_MS || notifiedAt - now() > ALIPAY_NOTIFY_MAX_AHEAD_MS) return refuse(`notify_time ${fields.notify_time} is stale`);
    if (fields.notify_type !== 'trade_status_sync') return refuse(`notify_type ${fields.notify_type?.slice(0, 40)} is not trade_status_sync`);
    const payment = fields.out_trade_no ? await payments.findForChannel(fields.out_trade_no, name).catch(() => null) : undefined;
    if (payment === null) return answer(res, false, 503); // the database did not answer: Alipay retries
    if (!payment) return refuse('out_trade_no is no payment of this channel');

    const status = fields.trade_status ?? '';
    if (status === 'WAIT_BUYER_PAY' || status === 'TRADE_CLOSED') return answer(res, true);
    if (status !== 'TRADE_SUCCESS' && status !== 'TRADE_FINISHED') return refuse(`trade_status ${status.slice(0, 40)} is not one this service acts on`);
    const paidAmount = yuanToMinorUnits(fields.total_amount);
    const transactionId = fields.trade_no ?? '';
    if (paidAmount === undefined || transactionId === '' || transactionId.length > 64) return refuse('a payment without a trade_no and a total_amount in yuan');
    // total_amount is yuan unless Alipay says another currency (cross-border): fen are compared only as CNY.
    const currency = fields.trans_currency || 'CNY';
    if (currency !== 'CNY' || payment.currency !== 'CNY') {
      logger.error('alipay notification paid in a currency this channel does not read: a person must settle it', { paymentId: payment.public_id, currency, paymentCurrency: payment.currency, tradeNo: transactionId });
      return answer(res, false);
    }
    try {
      await payments.applyCallback(payment, { result: 'SUCCESS', transactionId, paidAmount });
    } catch (err) {
      // Recorded in payment_events (an amount mismatch, another transaction id): nothing more
      // will change by Alipay sending it again.
      if (err instanceof ConflictError) {
        logger.warn('alipay notification recorded as a conflict', { paymentId: payment.public_id, error: err.message });
        return answer(res, true);
      }
      logger.error('alipay notification could not be applied', { paymentId: payment.public_id, error: (err as Error).message });
      return answer(res, false, 503);
    }
    answer(res, true);
  };
}
