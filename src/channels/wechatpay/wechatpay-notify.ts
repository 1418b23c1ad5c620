import type { RequestHandler, Response } from 'express';
import { z } from 'zod';
import { decryptResource, loadWechatPayKeys, signatureHeadersOf, verifyWechatPaySignature } from './wechatpay-signature';
import { ConflictError } from '../../shared/errors';
import type { NotifyHandlerOptions } from '../notify-handler';

const envelopeSchema = z.object({
  id: z.string().max(128),
  event_type: z.string().max(64),
  resource_type: z.string().max(64).optional(),
  resource: z.object({
    algorithm: z.string().max(64),
    ciphertext: z.string().min(1).max(16384),
    nonce: z.string().min(1).max(64),
    associated_data: z.string().max(256).optional(),
    original_type: z.string().max(64).optional(),
  }),
});

/** The decrypted transaction: only what is believed and compared. */
const transactionSchema = z.object({
  mchid: z.string(),
  out_trade_no: z.string().min(1).max(64),
  transaction_id: z.string().min(1).max(128),
  trade_state: z.string(),
  amount: z.object({ total: z.number().int().min(0).max(1e12), currency: z.string().optional() }),
});

/** WeChat Pay retries a notification answered with 4xx or 5xx and this body. */
function fail(res: Response, status: number, message: string): void {
  res.status(status).json({ code: 'FAIL', message });
}

/**
 * `POST /v1/channels/<name>/notify`, WeChat Pay's payment notification (docs/channels.md, "WeChat Pay").
 * Nothing in it is believed before WeChat Pay's signature over the raw body verifies with the
 * configured key and serial within 300 s; then the resource is decrypted with the APIv3 key (its
 * GCM tag proves it was made for us), and the transaction must name our merchant and a payment of
 * this channel. TRANSACTION.SUCCESS applies as a SUCCESS callback with transaction_id and
 * amount.total, so an amount that differs is recorded as a mismatch. Success is 204 with no body;
 * a failure is 4xx/5xx with `{"code":"FAIL","message"}` and changes nothing, so WeChat Pay retries.
 */
export function createWechatPayNotifyHandler(options: NotifyHandlerOptions<'wechatpay'>): RequestHandler {
  const { name, config, payments, logger } = options;
  const keys = loadWechatPayKeys(name, options.credentials);
  const now = options.now ?? Date.now;

  return async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const check = verifyWechatPaySignature({ headers: signatureHeadersOf((h) => req.header(h)), body, publicKey: keys.platformPublicKey, platformSerial: config.platformSerial, nowMs: now() });
    if (!check.ok) {
      logger.warn('wechatpay notification refused', { reason: check.reason });
      fail(res, 401, 'signature not verified');
      return;
    }
    let envelope: z.infer<typeof envelopeSchema>;
    let transaction: z.infer<typeof transactionSchema>;
    try {
      envelope = envelopeSchema.parse(JSON.parse(body.toString('utf8')));
      transaction = transactionSchema.parse(JSON.parse(decryptResource(envelope.resource, keys.apiV3Key).toString('utf8')));
    } catch (err) {
      // Signed by WeChat Pay but not readable with our APIv3 key (a rotated key?): a person looks.
      logger.error('wechatpay notification could not be decrypted or read', { error: (err as Error).message });
      fail(res, 400, 'resource not readable');
      return;
    }
    const context = { notificationId: envelope.id, eventType: envelope.event_type, outTradeNo: transaction.out_trade_no, transactionId: transaction.transaction_id };
    if (transaction.mchid !== config.mchid) {
      logger.error('wechatpay notification for another merchant', { ...context, mchid: transaction.mchid });
      fail(res, 400, 'mchid does not match');
      return;
    }
    if (envelope.event_type !== 'TRANSACTION.SUCCESS' || transaction.trade_state !== 'SUCCESS') {
      // A payment notification is only ever a success; anything else is not ours to apply.
      logger.warn('wechatpay notification ignored', { ...context, tradeState: transaction.trade_state });
      res.status(204).end();
      return;
    }
    try {
      const payment = await payments.findForChannel(transaction.out_trade_no, name);
      if (!payment) {
        logger.warn('wechatpay notification for no payment of this channel', context);
        fail(res, 404, 'order not found');
        return;
      }
      // Absent means CNY, WeChat Pay's default: a payment in another currency never settles on it.
      if ((transaction.amount.currency ?? 'CNY') !== payment.currency) {
        logger.error('wechatpay notification in another currency', { ...context, currency: transaction.amount.currency, expected: payment.currency });
        fail(res, 400, 'currency does not match');
        return;
      }
      try {
        const settled = await payments.applyCallback(payment, { result: 'SUCCESS', transactionId: transaction.transaction_id, paidAmount: transaction.amount.total });
        logger.info('wechatpay notification applied', { ...context, paymentId: settled.public_id, status: settled.status });
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        // Recorded in payment_events for a person (amount mismatch, a conflicting transaction):
        // telling WeChat Pay to retry would only record it again.
        logger.error('wechatpay notification conflicts with the payment', { ...context, paymentId: payment.public_id, error: err.message });
      }
      res.status(204).end();
    } catch (err) {
      logger.error('wechatpay notification failed', { ...context, error: (err as Error).message });
      fail(res, 500, 'internal error');
    }
  };
}
