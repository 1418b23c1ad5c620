import type { AdapterConfig } from '../../config/config-schema';
import type { ChannelAdapter } from './channel-adapter';
import type { RateLimiter } from './rate-limiter';

/** Scaffolding: replaced by the Stripe adapter (README.md, "Channels"). */
export function createStripeAdapter(options: {
  name: string;
  config: Extract<AdapterConfig, { type: 'stripe' }>;
  credentials: Record<string, string>;
  limiter: RateLimiter;
}): ChannelAdapter {
  throw new Error(`channel ${options.name}: the stripe adapter is not built yet`);
}
