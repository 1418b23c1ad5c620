import type { Config } from '../../config/config-schema';
import type { ChannelAdapter } from './channel-adapter';
import { createNoneAdapter } from './none-adapter';

/** One adapter per configured channel, as its config says. */
export function createAdapters(config: Config): Map<string, ChannelAdapter> {
  const adapters = new Map<string, ChannelAdapter>();
  for (const [name, channel] of Object.entries(config.channels)) {
    switch (channel.adapter.type) {
      case 'none':
        adapters.set(name, createNoneAdapter());
        break;
      default:
        throw new Error(`channel ${name}: adapter "${channel.adapter.type}" is not available yet`);
    }
  }
  return adapters;
}
