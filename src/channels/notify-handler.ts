import type { Config, RealChannelType } from '../config/config-schema';
import type { Logger } from '../shared/logger';
import type { PaymentsService } from '../payments/payments-service';

/** What every channel's notification handler gets: its channel's config and the payments. */
export interface NotifyHandlerOptions<T extends RealChannelType> {
  name: string;
  config: Extract<Config['channels'][string]['adapter'], { type: T }>;
  credentials: Record<string, string>;
  payments: PaymentsService;
  logger: Logger;
  now?: () => number;
}
