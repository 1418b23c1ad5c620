import type { components } from './openapi';

/** What a merchant's notifyUrl receives (the OpenAPI document's webhook `paymentNotification`). */
export type NotificationEvent = components['schemas']['NotificationEvent'];

/** Standard Webhooks' window, and the generic gateway's: a timestamp further than this from now is refused. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** Request headers as fetch's `Headers`, or as Node's `req.headers` (lower-case names). */
export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

/** A notification that does not verify: never act on its body. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

const encoder = new TextEncoder();

/** A copy on an ArrayBuffer of its own, as Web Crypto's BufferSource wants. */
function bytesOf(input: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const view = typeof input === 'string' ? encoder.encode(input) : input;
  const out = new Uint8Array(view.byteLength);
  out.set(view);
  return out;
}

function concat(...parts: Array<string | Uint8Array>): Uint8Array<ArrayBuffer> {
  const views = parts.map(bytesOf);
  const out = new Uint8Array(views.reduce((n, v) => n + v.byteLength, 0));
  let at = 0;
  for (const v of views) {
    out.set(v, at);
    at += v.byteLength;
  }
  return out;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

function hmacKey(secret: Uint8Array<ArrayBuffer>, usage: 'sign' | 'verify') {
  return crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

function headerOf(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(' ') : value;
}

/**
 * Verifies a merchant notification as Standard Webhooks specifies: `webhook-signature` holds one
 * or more space-separated `v1,<base64 HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>`,
 * where secret is the bytes of the base64 after `whsec_` of the merchant's `webhookSecret`, and
 * the timestamp is at most 300 s from now. `body` must be the exact bytes received (not JSON
 * parsed and serialised again). Answers the parsed event; throws WebhookVerificationError.
 */
export async function verifyNotification(
  body: string | Uint8Array,
  headers: HeaderSource,
  webhookSecret: string,
  options: { toleranceSeconds?: number; nowMs?: number } = {},
): Promise<NotificationEvent> {
  const secret = fromBase64(webhookSecret.startsWith('whsec_') ? webhookSecret.slice('whsec_'.length) : webhookSecret);
  if (!secret || secret.byteLength === 0) throw new TypeError('webhookSecret must be whsec_ followed by base64');
  const id = headerOf(headers, 'webhook-id');
  const timestamp = headerOf(headers, 'webhook-timestamp');
  const signatures = headerOf(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError('webhook-id, webhook-timestamp and webhook-signature are required');
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('webhook-timestamp is not unix seconds');
  const nowSeconds = Math.floor((options.nowMs ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > (options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError('webhook-timestamp is too far from now');
  }
  const key = await hmacKey(secret, 'verify');
  const signed = concat(`${id}.${timestamp}.`, body);
  for (const entry of signatures.split(' ')) {
    const [version, value] = entry.split(',', 2);
    const signature = version === 'v1' && value ? fromBase64(value) : undefined;
    // crypto.subtle.verify compares in constant time.
    if (signature && (await crypto.subtle.verify('HMAC', key, signature, signed))) {
      const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
      return JSON.parse(text) as NotificationEvent;
    }
  }
  throw new WebhookVerificationError('no signature matches this secret and body');
}

/**
 * The `X-Signature` header of a channel callback to the generic gateway
 * (`POST /v1/payments/{id}/callback`): `t=<unix seconds>,v1=<hex HMAC-SHA256(channelSecret,
 * "<t>.<paymentId>.<rawBody>")>`. Send exactly `rawBody`, within 300 s.
 */
export async function signCallback(channelSecret: string, paymentId: string, rawBody: string | Uint8Array, options: { nowMs?: number } = {}): Promise<string> {
  const t = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const key = await hmacKey(bytesOf(channelSecret), 'sign');
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, concat(`${t}.${paymentId}.`, rawBody)));
  return `t=${t},v1=${Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
