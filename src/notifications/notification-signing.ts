import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * X-Compensator-Signature = hex(HMAC-SHA256(secret, `${timestamp}.${body}`)). Signing the
 * timestamp too lets a merchant refuse replays older than a few minutes.
 */
export function signNotification(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function verifyNotification(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(signNotification(secret, timestamp, body), 'hex');
  const given = Buffer.from(signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
