import type { AdapterConfig } from '../../config/config-schema';
import type { OutboundHttp } from '../../shared/outbound-http';
import type { ChannelAdapter } from './channel-adapter';
import type { RateLimiter } from './rate-limiter';

/** Scaffolding: replaced by the WechatPay adapter (README.md, "Channels"). */
export function createWechatPayAdapter(options: {
  name: string;
  config: Extract<AdapterConfig, { type: 'wechatpay' }>;
  credentials: Record<string, string>;
  http: OutboundHttp;
  limiter: RateLimiter;
}): ChannelAdapter {
  throw new Error(`channel ${options.name}: the wechatpay adapter is not built yet`);
}
