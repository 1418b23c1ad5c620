import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/*
 * Credentials of a merchant (README.md, "HTTP API"):
 *   - an API key `sk_` + base64url(32 random bytes): shown once, stored only as its SHA-256;
 *   - a webhook secret `whsec_` + base64(32 random bytes) (Standard Webhooks): the service signs
 *     with it, so it is stored encrypted with AES-256-GCM under MERCHANT_SECRETS_KEY.
 */

const API_KEY_PREFIX = 'sk_';
const API_KEY_PATTERN = /^sk_[A-Za-z0-9_-]{43}$/;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A public, non-secret id: prefix and 16 base62 characters (about 95 random bits). */
export function generateCredentialId(prefix: 'key'): string {
  const bytes = randomBytes(16);
  let out = `${prefix}_`;
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 hex of an API key: what the table holds, and what a lookup searches for. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Whether a bearer value has the shape of one of our keys (before any database lookup). */
export function looksLikeApiKey(value: string): boolean {
  return API_KEY_PATTERN.test(value);
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Parses MERCHANT_SECRETS_KEY: base64 of exactly 32 bytes, or undefined when it is not. */
export function parseSecretsKey(value: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const key = Buffer.from(value, 'base64');
  return key.length === 32 ? key : undefined;
}

const SEALED_VERSION = 'v1';

/**
 * AES-256-GCM with a random 96-bit nonce. The merchant id is the additional data, so a sealed
 * secret copied onto another merchant's row does not open.
 */
export function createSecretBox(key: Buffer) {
  if (key.length !== 32) throw new Error('the secrets key must be 32 bytes');
  return {
    seal(plaintext: string, merchantId: string): string {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(merchantId, 'utf8'));
      const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${SEALED_VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`;
    },
    /** Whether this box opens the value for that merchant. */
    opens(sealed: string, merchantId: string): boolean {
      try {
        this.open(sealed, merchantId);
        return true;
      } catch {
        return false;
      }
    },
    /** Throws when the value was sealed under another key or for another merchant, or was altered. */
    open(sealed: string, merchantId: string): string {
      const [version, payload] = sealed.split(':');
      if (version !== SEALED_VERSION || !payload) throw new Error('not a sealed secret');
      const raw = Buffer.from(payload, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(merchantId, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}
export type SecretBox = ReturnType<typeof createSecretBox>;
