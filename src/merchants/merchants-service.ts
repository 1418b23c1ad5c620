import { amqpUserName } from './merchants-schemas';
import { ConflictError, ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../shared/errors';
import {
  digestsEqual,
  generateApiKey,
  generateCredentialId,
  generateWebhookSecret,
  hashApiKey,
  looksLikeApiKey,
  type SecretBox,
} from './merchant-credentials';
import type { ApiKeyRow, MerchantRow, MerchantsRepository } from './merchants-repository';
import { isDuplicateKey } from '../infra/database';

/** Who a request acts as: the key, and the merchants it may act for. */
export interface Principal {
  keyId: string;
  /** Set for a merchant's own key: the merchant comes from the key. */
  merchantId: string | null;
  /** A platform key's merchants, or '*' for all. */
  merchants: '*' | ReadonlySet<string>;
  /** A merchant's key's merchant, read with the key (merchantFor needs no second query). */
  merchant?: MerchantRow;
}

export function mayActFor(principal: Principal, merchantId: string): boolean {
  return principal.merchants === '*' || principal.merchants.has(merchantId);
}

export interface MerchantView {
  merchantId: string;
  name: string;
  notifyUrl: string;
  createdAt: string;
  apiKeys: Array<{ id: string; createdAt: string; revokedAt: string | null }>;
}

export interface IssuedKey {
  id: string;
  key: string;
}


function toView(merchant: MerchantRow, keys: ApiKeyRow[]): MerchantView {
  return {
    merchantId: merchant.merchant_id,
    name: merchant.name,
    notifyUrl: merchant.notify_url,
    createdAt: new Date(merchant.created_at).toISOString(),
    apiKeys: keys.map((k) => ({ id: k.id, createdAt: new Date(k.created_at).toISOString(), revokedAt: k.revoked_at ? new Date(k.revoked_at).toISOString() : null })),
  };
}

function platformMerchantsOf(row: ApiKeyRow): string[] {
  const value = row.platform_merchants;
  const list: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return Array.isArray(list) ? list.filter((m): m is string => typeof m === 'string') : [];
}

/**
 * Merchants and their credentials (README.md, "HTTP API"): registration, API keys shown once and kept
 * as hashes, webhook secrets sealed at rest and rotated with an overlap, and the authentication
 * of every merchant request.
 */
export function createMerchantsService(deps: {
  repository: MerchantsRepository;
  secretBox: SecretBox;
  /** How long a replaced webhook secret still signs (notifications.secretRotationOverlapSeconds). */
  rotationOverlapSeconds: number;
  /** A stored secret did not open: MERCHANT_SECRETS_KEY changed, or the row was altered. */
  onUnreadableSecret?: (merchantId: string, secretId: number) => void;
  /**
   * How long an api process keeps a live key it has looked up (http.apiKeyCacheMs; 0: never).
   * A revoke reaches this process's cache at once, and every other process's within this time.
   */
  keyCacheMs?: number;
  now?: () => number;
}) {
  const { repository, secretBox } = deps;
  const now = deps.now ?? Date.now;
  const keyCacheMs = deps.keyCacheMs ?? 0;
  /**
   * Live keys only, by the key's SHA-256 (never the key): an unknown or revoked key always asks
   * the database, so guessing cannot fill it, and it is bounded anyway (the oldest entry goes).
   */
  const keyCache = new Map<string, { principal: Principal; until: number }>();
  const KEY_CACHE_MAX = 10_000;
  /**
   * Bumped before and after every revoke's UPDATE: a lookup stores its key only if no revoke
   * began or ended while it ran, so a row read just before a revoke is never kept.
   */
  let revokes = 0;
  /** A revoke here forgets every cached key: revokes are rare, and key ids compare by collation, not by ===. */
  async function revoking<T>(update: () => Promise<T>): Promise<T> {
    revokes++;
    try {
      return await update();
    } finally {
      revokes++;
      keyCache.clear();
    }
  }

  function newKeyRow(merchantId: string | null, platformMerchants: string[] | null, amqpUser: string | null = null): { row: ApiKeyRow; issued: IssuedKey } {
    const key = generateApiKey();
    const row: ApiKeyRow = { id: generateCredentialId('key'), key_hash: hashApiKey(key), merchant_id: merchantId, platform_merchants: platformMerchants, amqp_user: amqpUser, created_at: new Date(now()), revoked_at: null };
    return { row, issued: { id: row.id, key } };
  }

  async function requireMerchant(merchantId: string): Promise<MerchantRow> {
    const merchant = await repository.findMerchant(merchantId);
    if (!merchant) throw new NotFoundError(`merchant ${merchantId} not found`);
    return merchant;
  }

  return {
    async register(input: { merchantId: string; name: string; notifyUrl: string }) {
      const createdAt = new Date(now());
      const merchant: MerchantRow = { merchant_id: input.merchantId, name: input.name, notify_url: input.notifyUrl, created_at: createdAt };
      const { row, issued } = newKeyRow(input.merchantId, null);
      const webhookSecret = generateWebhookSecret();
      try {
        await repository.createMerchant(merchant, row, { merchant_id: input.merchantId, sealed_secret: secretBox.seal(webhookSecret, input.merchantId), created_at: createdAt, expires_at: null });
      } catch (err) {
        if (isDuplicateKey(err)) throw new ConflictError(`merchant ${input.merchantId} already exists`);
        throw err;
      }
      return { merchantId: input.merchantId, name: input.name, notifyUrl: input.notifyUrl, createdAt: createdAt.toISOString(), apiKey: issued, webhookSecret };
    },

    async get(merchantId: string): Promise<MerchantView> {
      const merchant = await requireMerchant(merchantId);
      return toView(merchant, await repository.listApiKeys(merchantId));
    },

    async list(limit = 500): Promise<MerchantView[]> {
      const merchants = await repository.listMerchants(limit);
      return Promise.all(merchants.map(async (m) => toView(m, await repository.listApiKeys(m.merchant_id))));
    },

    /** A new key for the merchant; its other keys stay valid until revoked. */
    async addApiKey(merchantId: string): Promise<IssuedKey> {
      await requireMerchant(merchantId);
      const { row, issued } = newKeyRow(merchantId, null);
      await repository.insertApiKey(row);
      return issued;
    },

    async revokeApiKey(merchantId: string, keyId: string): Promise<void> {
      const revoked = await revoking(() => repository.revokeApiKey(merchantId, keyId, new Date(now())));
      if (!revoked) {
        throw new NotFoundError(`merchant ${merchantId} has no live key ${keyId}`);
      }
    },

    /**
     * A platform key acts for the listed merchants (each must exist), or for all with ["*"].
     * With `amqpUser`, that RabbitMQ user's payment intents act with it, and no longer with the
     * key mapped to it before (which stays valid over HTTP until revoked): one live mapping per
     * user, so revoking a key never brings an older mapping back.
     */
    async createPlatformKey(merchants: string[], amqpUser?: string): Promise<IssuedKey> {
      if (!merchants.includes('*')) {
        for (const m of merchants) {
          if (!(await repository.findMerchant(m))) throw new ValidationError(`merchant ${m} does not exist`, [{ path: 'merchants', message: `unknown merchant ${m}` }]);
        }
      }
      const { row, issued } = newKeyRow(null, merchants.includes('*') ? ['*'] : [...new Set(merchants)], amqpUser ?? null);
      await repository.insertApiKey(row);
      return issued;
    },

    async listPlatformKeys(): Promise<Array<{ id: string; merchants: string[]; amqpUser: string | null; createdAt: string; revokedAt: string | null }>> {
      return (await repository.listPlatformKeys()).map((k) => ({
        id: k.id,
        merchants: platformMerchantsOf(k),
        amqpUser: k.amqp_user ?? null,
        createdAt: new Date(k.created_at).toISOString(),
        revokedAt: k.revoked_at ? new Date(k.revoked_at).toISOString() : null,
      }));
    },

    async revokePlatformKey(keyId: string): Promise<void> {
      const revoked = await revoking(() => repository.revokePlatformKey(keyId, new Date(now())));
      if (!revoked) throw new NotFoundError(`no live platform key ${keyId}`);
    },

    /** The new secret signs from now on; the old ones sign too until the overlap ends. */
    async rotateWebhookSecret(merchantId: string): Promise<{ webhookSecret: string }> {
      await requireMerchant(merchantId);
      // A rotation under the wrong MERCHANT_SECRETS_KEY would expire the only secret that signs.
      for (const live of await repository.liveWebhookSecrets(merchantId, new Date(now()))) {
        if (!secretBox.opens(live.sealed_secret, merchantId)) {
          throw new ConflictError(`merchant ${merchantId}'s current webhook secret does not open with this MERCHANT_SECRETS_KEY; rotate with the key the service runs with`);
        }
      }
      const webhookSecret = generateWebhookSecret();
      const at = now();
      await repository.rotateWebhookSecret(
        { merchant_id: merchantId, sealed_secret: secretBox.seal(webhookSecret, merchantId), created_at: new Date(at), expires_at: null },
        new Date(at + deps.rotationOverlapSeconds * 1000),
      );
      return { webhookSecret };
    },

    /** `Authorization: Bearer sk_...` to a principal; anything else is a 401. */
    async authenticate(authorization: string | undefined): Promise<Principal> {
      const match = /^Bearer (\S+)$/.exec(authorization ?? '');
      const key = match?.[1];
      if (!key || !looksLikeApiKey(key)) throw new UnauthorizedError('an API key is required: Authorization: Bearer sk_...');
      const hash = hashApiKey(key);
      const cached = keyCache.get(hash);
      if (cached && cached.until > now()) return cached.principal;
      if (cached) keyCache.delete(hash);
      // The entry's time counts from before the read: a slow database does not lengthen it.
      const [readAt, revokesBefore] = [now(), revokes];
      const found = await repository.findApiKeyByHash(hash);
      const row = found?.key;
      if (!row || !digestsEqual(row.key_hash, hash) || row.revoked_at !== null) throw new UnauthorizedError('the API key is unknown or revoked');
      const list = row.merchant_id === null ? platformMerchantsOf(row) : [];
      const principal: Principal =
        row.merchant_id !== null
          ? { keyId: row.id, merchantId: row.merchant_id, merchants: new Set([row.merchant_id]), merchant: found.merchant }
          : { keyId: row.id, merchantId: null, merchants: list.includes('*') ? '*' : new Set(list) };
      if (keyCacheMs > 0 && revokes === revokesBefore) {
        if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
        keyCache.set(hash, { principal, until: readAt + keyCacheMs });
      }
      return principal;
    },

    /**
     * The principal of a payment intent: the key mapped to the message's `user-id`, which
     * RabbitMQ has checked against the publishing connection's user. No user-id, or a user no
     * live key is mapped to, is a 401.
     */
    async authenticateAmqpUser(userId: string | undefined): Promise<Principal> {
      if (!userId) throw new UnauthorizedError('the intent has no user-id property; set it to the RabbitMQ user you publish as');
      if (!amqpUserName.safeParse(userId).success) throw new UnauthorizedError('no live API key is mapped to this RabbitMQ user');
      const row = await repository.findLiveKeyByAmqpUser(userId);
      // Compared here too: the column's collation pads, so "checkout " would match "checkout".
      if (!row || row.amqp_user !== userId) throw new UnauthorizedError(`no live API key is mapped to RabbitMQ user ${userId}`);
      const list = platformMerchantsOf(row);
      return { keyId: row.id, merchantId: null, merchants: list.includes('*') ? '*' : new Set(list) };
    },

    /**
     * The merchant a request acts for: the key's own (a different `merchantId` is a 403), or the
     * one a platform key names, which it must name and may act for.
     */
    async merchantFor(principal: Principal, requested: string | undefined): Promise<MerchantRow> {
      const merchantId = principal.merchantId ?? requested;
      if (merchantId === undefined) throw new ValidationError('merchantId is required with a platform key', [{ path: 'merchantId', message: 'required with a platform key' }]);
      if (requested !== undefined && requested !== merchantId) throw new ForbiddenError(`this key acts for merchant ${principal.merchantId}, not ${requested}`);
      if (!mayActFor(principal, merchantId)) throw new ForbiddenError(`this key may not act for merchant ${merchantId}`);
      const merchant = principal.merchant?.merchant_id === merchantId ? principal.merchant : await repository.findMerchant(merchantId);
      if (!merchant) throw new ForbiddenError(`this key may not act for merchant ${merchantId}`);
      return merchant;
    },

    /** The merchant's registered notifyUrl, or undefined for an unknown merchant. */
    async registeredNotifyUrl(merchantId: string): Promise<string | undefined> {
      return (await repository.findMerchant(merchantId))?.notify_url;
    },

    /** The `whsec_` secrets that sign the merchant's notifications now, newest first. */
    async signingSecrets(merchantId: string): Promise<string[]> {
      const rows = await repository.liveWebhookSecrets(merchantId, new Date(now()));
      const secrets: string[] = [];
      for (const row of rows) {
        // One sealed under another MERCHANT_SECRETS_KEY (or altered) does not sign; the rest do.
        try {
          secrets.push(secretBox.open(row.sealed_secret, merchantId));
        } catch {
          deps.onUnreadableSecret?.(merchantId, row.id);
        }
      }
      return secrets;
    },
  };
}
export type MerchantsService = ReturnType<typeof createMerchantsService>;
