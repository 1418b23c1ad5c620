import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * The generic gateway's signature (README.md, "HTTP API"), in both directions: channel callbacks to
 * us, and the http adapter's queries to the channel.
 *   X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<paymentId>.<rawBody>")>
 * The payment id binds a signature to the payment it settles, and t to a 300 s window, so a
 * captured body can neither settle another payment nor be replayed later.
 */

export const SIGNATURE_TOLERANCE_SECONDS = 300;

function hmacHex(secret: string, t: number, paymentId: string, rawBody: Buffer | string): string {
  return createHmac('sha256', secret).update(`${t}.${paymentId}.`).update(rawBody).digest('hex');
}

/** The X-Signature value for this payment and body, at `nowMs`. */
export function signGatewayRequest(secret: string, paymentId: string, rawBody: Buffer | string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${hmacHex(secret, t, paymentId, rawBody)}`;
}

/** Reads `t=...,v1=...[,v1=...]`; undefined when the header is not of that shape. */
export function parseSignatureHeader(header: string | undefined): { t: number; v1: string[] } | undefined {
  if (!header || header.length > 1024) return undefined;
  let t: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const [key, value, ...rest] = part.trim().split('=');
    if (rest.length > 0 || value === undefined) return undefined;
    if (key === 't') {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return undefined;
      t = Number(value);
    } else if (key === 'v1') {
      if (!/^[0-9a-f]{64}$/.test(value)) return undefined;
      v1.push(value);
    }
    // Other schemes (a future v2) are ignored, as Stripe's parser does.
  }
  return t !== undefined && v1.length > 0 ? { t, v1 } : undefined;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/** Whether the header signs exactly this payment and body, at a time within the tolerance. */
export function verifyGatewaySignature(secret: string, paymentId: string, rawBody: Buffer | string, header: string | undefined, nowMs = Date.now()): SignatureCheck {
  const parsed = parseSignatureHeader(header);
  if (!parsed) return { ok: false, reason: 'X-Signature is missing or not of the form t=<unix seconds>,v1=<hex>' };
  if (Math.abs(Math.floor(nowMs / 1000) - parsed.t) > SIGNATURE_TOLERANCE_SECONDS) {
    return { ok: false, reason: `X-Signature timestamp is more than ${SIGNATURE_TOLERANCE_SECONDS} s from the server's clock` };
  }
  const expected = Buffer.from(hmacHex(secret, parsed.t, paymentId, rawBody), 'hex');
  const matches = parsed.v1.some((sig) => timingSafeEqual(Buffer.from(sig, 'hex'), expected));
  return matches ? { ok: true } : { ok: false, reason: 'X-Signature does not match this payment and body' };
}
