import express, { Router } from 'express';
import type { Config } from '../config/config-schema';
import type { Logger } from '../shared/logger';
import type { PaymentsService } from '../payments/payments-service';
import { createAlipayNotifyHandler } from './alipay/alipay-notify';
import { createStripeWebhookHandler } from './stripe/stripe-webhook';
import { createWechatPayNotifyHandler } from './wechatpay/wechatpay-notify';

/**
 * The channels' native notifications, `POST /v1/channels/<channel>/<notify|webhook>` for each
 * configured real channel. Each takes the raw body its channel sends (any content type, at most
 * the API's body limit), verifies it the channel's way, and applies it as a callback through
 * payments-service.ts (PAID, FAILED, PAID_AFTER_CLOSE, amount mismatch, conflicting ids). A
 * notification that does not verify or names no payment of that channel changes nothing and is
 * answered as a failure the channel's way, so the channel retries.
 */
export function createChannelNotifyRoutes(deps: { config: Config; payments: PaymentsService; logger: Logger; now?: () => number }): Router {
  const router = Router();
  const raw = express.raw({ type: () => true, limit: deps.config.http.bodyLimitBytes });
  for (const [name, channel] of Object.entries(deps.config.channels)) {
    const common = { name, credentials: channel.credentials, payments: deps.payments, logger: deps.logger.child({ channel: name }), now: deps.now };
    const adapter = channel.adapter;
    // Each kind of channel posts to its own path in its own wire format.
    if (adapter.type === 'wechatpay') router.post(`/v1/channels/${name}/notify`, raw, createWechatPayNotifyHandler({ ...common, config: adapter }));
    else if (adapter.type === 'alipay') router.post(`/v1/channels/${name}/notify`, raw, createAlipayNotifyHandler({ ...common, config: adapter }));
    else if (adapter.type === 'stripe') router.post(`/v1/channels/${name}/webhook`, raw, createStripeWebhookHandler({ ...common, config: adapter }));
  }
  return router;
}
