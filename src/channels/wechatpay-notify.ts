import type { RequestHandler } from 'express';
import type { NotifyHandlerOptions } from './channel-notify-routes';

/** Scaffolding: replaced by the wechatpay notification handler (README.md, "Channels"). */
export function createWechatPayNotifyHandler(options: NotifyHandlerOptions<'wechatpay'>): RequestHandler {
  return (_req, res) => {
    res.status(500).json({ error: `channel ${options.name}: notifications are not built yet` });
  };
}
