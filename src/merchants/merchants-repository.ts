import type { Database } from '../infra/database';

export interface MerchantRow {
  merchant_id: string;
  name: string;
  notify_url: string;
  created_at: Date;
}

export interface ApiKeyRow {
  id: string;
  key_hash: string;
  merchant_id: string | null;
  /** JSON array of merchant ids, or ["*"]; set only on platform keys. */
  platform_merchants: string | string[] | null;
  /** The RabbitMQ user whose payment intents act with this key (platform keys only). */
  amqp_user: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

export interface WebhookSecretRow {
  id: number;
  merchant_id: string;
  sealed_secret: string;
  created_at: Date;
  expires_at: Date | null;
}

/** All SQL on merchants, merchant_api_keys and merchant_webhook_secrets; writes by primary key. */
export function createMerchantsRepository(deps: { db: Database }) {
  const { db } = deps;
  return {
    async findMerchant(merchantId: string): Promise<MerchantRow | undefined> {
      return db<MerchantRow>('merchants').where({ merchant_id: merchantId }).first();
    },
    async listMerchants(limit: number): Promise<MerchantRow[]> {
      return db<MerchantRow>('merchants').orderBy('merchant_id').limit(limit);
    },
    /** Inserts the merchant with its first key and secret in one transaction; throws 1062 on a taken id. */
    async createMerchant(merchant: MerchantRow, key: ApiKeyRow, secret: Omit<WebhookSecretRow, 'id'>): Promise<void> {
      await db.transaction(async (trx) => {
        await trx('merchants').insert(merchant);
        await trx('merchant_api_keys').insert(key);
        await trx('merchant_webhook_secrets').insert(secret);
      });
    },
    /** Inserts the key; one mapped to a RabbitMQ user takes that user over from every older key. */
    async insertApiKey(key: ApiKeyRow): Promise<void> {
      const row = { ...key, platform_merchants: key.platform_merchants === null ? null : JSON.stringify(key.platform_merchants) };
      if (key.amqp_user === null) {
        await db('merchant_api_keys').insert(row);
        return;
      }
      await db.transaction(async (trx) => {
        await trx('merchant_api_keys').where({ amqp_user: key.amqp_user }).update({ amqp_user: null });
        await trx('merchant_api_keys').insert(row);
      });
    },
    /**
     * The key with this hash and, for a merchant's key, its merchant, in one query: every
     * create authenticates, and the second round trip for the merchant cost a create more CPU
     * than its own validation did.
     */
    async findApiKeyByHash(hash: string): Promise<{ key: ApiKeyRow; merchant: MerchantRow | undefined } | undefined> {
      const row = (await db('merchant_api_keys')
        .leftJoin('merchants', 'merchants.merchant_id', 'merchant_api_keys.merchant_id')
        .where('merchant_api_keys.key_hash', hash)
        .options({ nestTables: true })
        .first('merchant_api_keys.*', 'merchants.*')) as { merchant_api_keys: ApiKeyRow; merchants: MerchantRow | Record<string, null> } | undefined;
      if (!row) return undefined;
      const merchant = row.merchants.merchant_id === null ? undefined : (row.merchants as MerchantRow);
      return { key: row.merchant_api_keys, merchant };
    },
    /** The live key mapped to this RabbitMQ user (one at most: insertApiKey moves a mapping). */
    async findLiveKeyByAmqpUser(amqpUser: string): Promise<ApiKeyRow | undefined> {
      return db<ApiKeyRow>('merchant_api_keys').where({ amqp_user: amqpUser }).whereNull('revoked_at').orderBy('created_at', 'desc').first();
    },
    async listApiKeys(merchantId: string): Promise<ApiKeyRow[]> {
      return db<ApiKeyRow>('merchant_api_keys').where({ merchant_id: merchantId }).orderBy('created_at');
    },
    /** True when a live key of that merchant was revoked now. */
    async revokeApiKey(merchantId: string, keyId: string, at: Date): Promise<boolean> {
      const n = await db('merchant_api_keys').where({ id: keyId, merchant_id: merchantId }).whereNull('revoked_at').update({ revoked_at: at });
      return n > 0;
    },
    async listPlatformKeys(): Promise<ApiKeyRow[]> {
      return db<ApiKeyRow>('merchant_api_keys').whereNull('merchant_id').orderBy('created_at');
    },
    /** True when a live platform key was revoked now. */
    async revokePlatformKey(keyId: string, at: Date): Promise<boolean> {
      const n = await db('merchant_api_keys').where({ id: keyId }).whereNull('merchant_id').whereNull('revoked_at').update({ revoked_at: at });
      return n > 0;
    },
    /** Secrets that still sign at `at`: the current one and those within their overlap, newest first. */
    async liveWebhookSecrets(merchantId: string, at: Date): Promise<WebhookSecretRow[]> {
      return db<WebhookSecretRow>('merchant_webhook_secrets')
        .where({ merchant_id: merchantId })
        .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', at))
        .orderBy('id', 'desc');
    },
    /** Adds a secret; the ones live before it now expire at `expiresAt` (sooner if already set). */
    async rotateWebhookSecret(secret: Omit<WebhookSecretRow, 'id'>, expiresAt: Date): Promise<void> {
      await db.transaction(async (trx) => {
        const live = await trx<WebhookSecretRow>('merchant_webhook_secrets').where({ merchant_id: secret.merchant_id }).whereNull('expires_at').orderBy('id').forUpdate();
        if (live.length > 0) await trx('merchant_webhook_secrets').whereIn('id', live.map((r) => r.id)).update({ expires_at: expiresAt });
        await trx('merchant_webhook_secrets').insert(secret);
      });
    },
  };
}
export type MerchantsRepository = ReturnType<typeof createMerchantsRepository>;
