import type { Config } from '../../config/config-schema';
import type { OutboundHttp } from '../../shared/outbound-http';
import type { ChannelAdapter } from './channel-adapter';
import { createHttpAdapter } from './http-adapter';
import { createNoneAdapter } from './none-adapter';

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
        adapters.set(name, createHttpAdapter({ name, baseUrl: channel.adapter.baseUrl, timeoutMs: channel.adapter.timeoutMs, secret: channel.secret, http }));
        break;
    }
  }
  return adapters;
}
