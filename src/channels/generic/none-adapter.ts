import type { ChannelAdapter } from '../channel-adapter';

/** Closes without asking: for channels that cannot be queried, or a pure timeout policy. */
export function createNoneAdapter(): ChannelAdapter {
  return {
    name: 'none',
    callsChannel: false,
    async queryOrder() {
      return { status: 'NOT_PAID' };
    },
    async closeOrder() {},
  };
}
