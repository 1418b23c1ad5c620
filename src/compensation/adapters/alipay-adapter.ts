import type { AdapterConfig } from '../../config/config-schema';
import type { ChannelAdapter } from './channel-adapter';
import type { RateLimiter } from './rate-limiter';

/** Scaffolding: replaced by the Alipay adapter (README.md, "Channels"). */
export function createAlipayAdapter(options: {
  name: string;
  config: Extract<AdapterConfig, { type: 'alipay' }>;
  credentials: Record<string, string>;
  limiter: RateLimiter;
}): ChannelAdapter {
  throw new Error(`channel ${options.name}: the alipay adapter is not built yet`);
}
