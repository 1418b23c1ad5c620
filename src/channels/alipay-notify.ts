import type { RequestHandler } from 'express';
import type { NotifyHandlerOptions } from './channel-notify-routes';

/** Scaffolding: replaced by the alipay notification handler (README.md, "Channels"). */
export function createAlipayNotifyHandler(options: NotifyHandlerOptions<'alipay'>): RequestHandler {
  return (_req, res) => {
    res.status(500).json({ error: `channel ${options.name}: notifications are not built yet` });
  };
}
