import { z } from 'zod';

/** Seconds between attempts; one entry per retry, then the item is parked. */
const retrySchedule = z.array(z.number().int().positive().max(2_592_000)).min(1);

const channelName = z.string().regex(/^[a-z0-9_]{1,32}$/, 'channel names are lower-case [a-z0-9_]');

/** A channel's query cap: channels throttle, and a burst of due timers must not trip them. */
const queriesPerSecond = z.number().int().min(1).max(10_000).default(20);
const timeoutMs = z.number().int().positive().default(3000);

const adapterSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).strict(),
  z.object({ type: z.literal('http'), baseUrl: z.string().url(), timeoutMs }).strict(),
  z.object({ type: z.literal('simulator'), baseUrl: z.string().url(), timeoutMs }).strict(),
  /** WeChat Pay APIv3 (docs/channels.md, "WeChat Pay"); credentials in CHANNEL_<NAME>_* (REAL_CHANNEL_CREDENTIALS). */
  z
    .object({
      type: z.literal('wechatpay'),
      baseUrl: z.string().url().default('https://api.mch.weixin.qq.com'),
      mchid: z.string().regex(/^[0-9]{1,32}$/, 'mchid is the merchant number WeChat Pay assigned'),
      /** The serial number of the merchant API certificate whose private key signs requests. */
      merchantSerialNo: z.string().regex(/^[0-9A-Fa-f]{8,64}$/),
      /** The WeChat Pay public key id (PUB_KEY_ID_...) or platform certificate serial that signs answers. */
      platformSerial: z.string().min(1).max(64),
      timeoutMs,
      queriesPerSecond,
    })
    .strict(),
  /** Alipay open platform, RSA2 (docs/channels.md, "Alipay"). */
  z
    .object({
      type: z.literal('alipay'),
      gateway: z.string().url().default('https://openapi.alipay.com/gateway.do'),
      appId: z.string().regex(/^[0-9]{1,32}$/, 'appId is the application id Alipay assigned'),
      timeoutMs,
      queriesPerSecond,
    })
    .strict(),
  /** Stripe PaymentIntents (docs/channels.md, "Stripe"). */
  z
    .object({
      type: z.literal('stripe'),
      /** Where the stripe package sends requests (a fake in tests and the demo). */
      baseUrl: z.string().url().default('https://api.stripe.com'),
      timeoutMs,
      queriesPerSecond,
    })
    .strict(),
]);

/**
 * The credentials each real channel takes, from the environment only: CHANNEL_<NAME>_<CREDENTIAL>
 * for the channel NAME in upper case (PEM keys may use literal newlines or \n).
 */
export const REAL_CHANNEL_CREDENTIALS = {
  wechatpay: ['PRIVATE_KEY', 'API_V3_KEY', 'PLATFORM_PUBLIC_KEY'],
  alipay: ['PRIVATE_KEY', 'ALIPAY_PUBLIC_KEY'],
  stripe: ['SECRET_KEY', 'WEBHOOK_SECRET'],
} as const;
export type RealChannelType = keyof typeof REAL_CHANNEL_CREDENTIALS;

const channelSchema = z
  .object({
    timeoutSeconds: z.number().int().min(1).max(2_592_000),
    adapter: adapterSchema.default({ type: 'none' }),
    /** Ask the channel before closing (remedy); false closes straight away. */
    queryBeforeClose: z.boolean().default(true),
    /**
     * The generic gateway's HMAC secret, from CHANNEL_SECRET_<NAME>; never from a file. Real
     * channels (wechatpay, alipay, stripe) sign their own way and have none.
     */
    secret: z.string().min(1).optional(),
    /** A real channel's credentials (REAL_CHANNEL_CREDENTIALS), from the environment only. */
    credentials: z.record(z.string(), z.string().min(1)).default({}),
  })
  .strict();

export const configSchema = z
  .object({
    env: z.enum(['production', 'development', 'test']),
    role: z.enum(['api', 'worker', 'all']),
    http: z
      .object({
        port: z.number().int().min(0).max(65535),
        /** ADMIN_PORT: admin API, ops page and /metrics on a listener of their own; unset, on `port`. */
        adminPort: z.number().int().min(0).max(65535).optional(),
        /** ADMIN_HOST: the admin listener's address, loopback unless told. */
        adminHost: z.string().min(1),
        bodyLimitBytes: z.number().int().positive(),
        /** Requests per second per API key (creates and reads); more answer 429 RATE_LIMITED. */
        rateLimitPerKeyPerSecond: z.number().int().positive(),
        /**
         * How long an api process trusts a live API key it looked up, in ms (0: it asks the
         * database on every request). A revoke takes effect everywhere within this time.
         */
        apiKeyCacheMs: z.number().int().min(0).max(60_000),
      })
      .strict(),
    database: z
      .object({
        url: z.string().regex(/^mysql:\/\//, 'DATABASE_URL must start with mysql://'),
        /**
         * MIGRATION_DATABASE_URL: the user that owns the schema, used only by `npm run db:migrate`.
         * The service's own user (url) may only read and write rows. Unset: url.
         */
        migrationUrl: z.string().regex(/^mysql:\/\//, 'MIGRATION_DATABASE_URL must start with mysql://').optional(),
        poolMax: z.number().int().positive(),
        deadlockRetries: z.number().int().min(0),
      })
      .strict(),
    broker: z
      .object({
        urls: z.array(z.string().regex(/^amqps?:\/\//, 'AMQP_URL entries must start with amqp://')).min(1),
        /** Prefix of every exchange and queue name; tests use a unique one per file. */
        prefix: z.string().regex(/^[a-z0-9_-]{1,40}$/),
        queueType: z.enum(['quorum', 'classic']),
        /** x-max-length of each delay queue (quorum queues reject publishes past it). */
        delayQueueMaxLength: z.number().int().positive(),
        /**
         * x-delivery-limit of the quorum work queues: a message redelivered this often (a worker
         * crashing on it) is dead-lettered into the parking lot. RabbitMQ 4.x defaults to 20 and
         * drops what passes it when no dead-letter target is set; this sets both.
         */
        workQueueDeliveryLimit: z.number().int().min(1).max(1000),
        /** RABBITMQ_MANAGEMENT_URL, for the admin backlog; unset, the backlog answers 503. */
        managementUrl: z.string().url().optional(),
      })
      .strict(),
    worker: z
      .object({
        prefetch: z.number().int().positive(),
        batchSize: z.number().int().positive(),
        batchWaitMs: z.number().int().min(0),
        channelConcurrency: z.number().int().positive(),
      })
      .strict(),
    intake: z
      .object({
        /** Payment intents in flight per api process; creates that arrive together share a transaction. */
        prefetch: z.number().int().positive().max(2000),
        /** x-max-length of the intake queue (and that many bodies of the size limit in bytes). */
        maxQueued: z.number().int().positive().max(10_000_000),
      })
      .strict(),
    retry: z.object({ remedy: retrySchedule, notification: retrySchedule }).strict(),
    notifications: z
      .object({
        /** Deliveries in flight per process; each is one HTTP call to a merchant. */
        prefetch: z.number().int().positive(),
        timeoutMs: z.number().int().positive(),
        /**
         * Hosts, addresses or CIDR ranges that outbound calls (notifications, the http channel
         * adapter) may reach although private. Loopback is allowed outside production.
         */
        allowPrivateHosts: z.array(z.string().min(1).max(253)).max(100),
        /** Notification calls in flight per merchant host; more wait for a later attempt. */
        perHostConcurrency: z.number().int().min(1).max(1000),
        /** How long a replaced webhook secret still signs, next to the new one. */
        secretRotationOverlapSeconds: z.number().int().min(0).max(30 * 86400),
      })
      .strict(),
    outbox: z
      .object({
        relayIntervalMs: z.number().int().positive(),
        // Younger rows may still be in their own flush: the relay would publish every one twice.
        relayMinAgeMs: z.number().int().min(1000, 'outbox.relayMinAgeMs must be at least 1000: a younger row may still be publishing after its commit'),
        relayBatchSize: z.number().int().positive(),
        publishTimeoutMs: z.number().int().positive(),
      })
      .strict(),
    channels: z.record(channelName, channelSchema).refine((c) => Object.keys(c).length > 0, 'at least one channel'),
    adminToken: z.string().min(32, 'ADMIN_TOKEN must be at least 32 characters').optional(),
    /** Filled from MERCHANT_SECRETS_KEY (base64 of 32 bytes); seals merchants' webhook secrets. */
    merchantSecretsKey: z
      .string()
      .refine((v) => /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === 32, 'MERCHANT_SECRETS_KEY must be base64 of 32 bytes (openssl rand -base64 32)'),
    log: z.object({ level: z.enum(['error', 'warn', 'info', 'debug']) }).strict(),
    shutdown: z.object({ timeoutMs: z.number().int().positive() }).strict(),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const [name, channel] of Object.entries(config.channels)) {
      const adapter = channel.adapter;
      if (adapter.type !== 'wechatpay' && adapter.type !== 'alipay' && adapter.type !== 'stripe') continue;
      // A real channel is always asked first: closing blind could cancel money in flight
      // (Stripe's processing or authorised intents).
      if (!channel.queryBeforeClose) ctx.addIssue({ code: 'custom', path: ['channels', name, 'queryBeforeClose'], message: 'a real channel is always asked before it is closed' });
      // Its key travels with every request, and its unsigned answers decide closes: TLS only.
      const url = adapter.type === 'alipay' ? adapter.gateway : adapter.baseUrl;
      if (config.env === 'production' && new URL(url).protocol !== 'https:') {
        ctx.addIssue({ code: 'custom', path: ['channels', name, 'adapter', adapter.type === 'alipay' ? 'gateway' : 'baseUrl'], message: 'must be https in production' });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ChannelConfig = Config['channels'][string];
export type AdapterConfig = ChannelConfig['adapter'];
export type Role = Config['role'];
