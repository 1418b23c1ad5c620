import type { Config } from '../config/config-schema';
import type { OutboundHttp } from '../shared/outbound-http';
import type { ChannelAdapter } from './channel-adapter';
import { createHttpAdapter } from './generic/http-adapter';
import { createNoneAdapter } from './generic/none-adapter';
import { createAlipayAdapter } from './alipay/alipay-adapter';
import { createRateLimiter } from './rate-limiter';
import { createStripeAdapter } from './stripe/stripe-adapter';
import { createWechatPayAdapter } from './wechatpay/wechatpay-adapter';

/** One adapter per configured channel, as its config says. */
export function createAdapters(config: Config, http: OutboundHttp): Map<string, ChannelAdapter> {
  const adapters = new Map<string, ChannelAdapter>();
  for (const [name, channel] of Object.entries(config.channels)) {
    switch (channel.adapter.type) {
      case 'none':
        adapters.set(name, createNoneAdapter());
        break;
      case 'http':
      case 'simulator': // the simulator speaks the http gateway protocol
        adapters.set(name, createHttpAdapter({ name, baseUrl: channel.adapter.baseUrl, timeoutMs: channel.adapter.timeoutMs, secret: channel.secret ?? '', http }));
        break;
      // The real channels (README.md, "Channels"): each with its credentials and a query cap.
      case 'wechatpay':
        adapters.set(name, createWechatPayAdapter({ name, config: channel.adapter, credentials: channel.credentials, http, limiter: createRateLimiter(channel.adapter.queriesPerSecond) }));
        break;
      case 'alipay':
        adapters.set(name, createAlipayAdapter({ name, config: channel.adapter, credentials: channel.credentials, http, limiter: createRateLimiter(channel.adapter.queriesPerSecond) }));
        break;
      case 'stripe':
        adapters.set(name, createStripeAdapter({ name, config: channel.adapter, credentials: channel.credentials, limiter: createRateLimiter(channel.adapter.queriesPerSecond) }));
        break;
    }
  }
  return adapters;
}
