import { createDecipheriv, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

/*
 * WeChat Pay APIv3's signatures (docs/channels.md, "WeChat Pay"), shared by the adapter (requests we
 * sign, answers we verify) and the notification handler (notifications we verify and decrypt):
 *   - a request carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
 *     signature="..",timestamp="..",serial_no=".."`, the signature being RSA-SHA256 (PKCS#1 v1.5)
 *     with the merchant's API private key over "METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n";
 *   - an answer or a notification carries Wechatpay-Timestamp, -Nonce, -Signature and -Serial,
 *     the signature by WeChat Pay's key over "timestamp\nnonce\nbody\n" (an empty body is an empty
 *     line). The serial names the key; only the configured one is believed, and only within
 *     300 s of our clock, so a captured answer cannot be replayed later;
 *   - a notification's `resource` is AEAD_AES_256_GCM with the APIv3 key: the tag is the last
 *     16 bytes of the base64 ciphertext, the nonce and the associated data are UTF-8 strings.
 */

export const WECHATPAY_SCHEME = 'WECHATPAY2-SHA256-RSA2048';
export const WECHATPAY_TOLERANCE_SECONDS = 300;

/** The credentials of one WeChat Pay channel, parsed once at start (CHANNEL_<NAME>_*). */
export interface WechatPayKeys {
  /** The merchant API private key: signs our requests. */
  privateKey: KeyObject;
  /** The WeChat Pay public key (or the platform certificate's key): verifies answers and notifications. */
  platformPublicKey: KeyObject;
  /** The APIv3 key, 32 bytes: decrypts notifications' resources. */
  apiV3Key: Buffer;
}

/** Parses the credentials, failing at start and naming the variable that is wrong. */
export function loadWechatPayKeys(channel: string, credentials: Record<string, string>): WechatPayKeys {
  const variable = (credential: string) => `CHANNEL_${channel.toUpperCase()}_${credential}`;
  const read = <T>(credential: string, parse: (value: string) => T): T => {
    const value = credentials[credential];
    if (!value) throw new Error(`channel ${channel}: ${variable(credential)} is not set`);
    try {
      return parse(value);
    } catch (err) {
      throw new Error(`channel ${channel}: ${variable(credential)} is not usable: ${(err as Error).message}`);
    }
  };
  const rsa = (key: KeyObject) => {
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`an RSA key is required, got ${key.asymmetricKeyType}`);
    return key;
  };
  return {
    privateKey: read('PRIVATE_KEY', (v) => rsa(createPrivateKey(v))),
    platformPublicKey: read('PLATFORM_PUBLIC_KEY', (v) => rsa(createPublicKey(v))),
    apiV3Key: read('API_V3_KEY', (v) => {
      const key = Buffer.from(v, 'utf8');
      if (key.length !== 32) throw new Error(`the APIv3 key is 32 characters, got ${key.length}`);
      return key;
    }),
  };
}

/** The Authorization header of one request; `pathAndQuery` is the URL without scheme and host. */
export function authorizationHeader(options: {
  mchid: string;
  serialNo: string;
  privateKey: KeyObject;
  method: string;
  pathAndQuery: string;
  body: string;
  nowMs?: number;
  nonce?: string;
}): string {
  const timestamp = String(Math.floor((options.nowMs ?? Date.now()) / 1000));
  const nonce = options.nonce ?? randomBytes(16).toString('hex').toUpperCase();
  const message = `${options.method}\n${options.pathAndQuery}\n${timestamp}\n${nonce}\n${options.body}\n`;
  const signature = sign('sha256', Buffer.from(message, 'utf8'), options.privateKey).toString('base64');
  return `${WECHATPAY_SCHEME} mchid="${options.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${options.serialNo}"`;
}

/** The four (five) headers WeChat Pay signs an answer or a notification with. */
export interface WechatPaySignatureHeaders {
  timestamp?: string;
  nonce?: string;
  signature?: string;
  serial?: string;
  signatureType?: string;
}

/** Reads the signature headers through a getter (express's req.header, or a plain lower-cased record). */
export function signatureHeadersOf(get: (name: string) => string | string[] | undefined): WechatPaySignatureHeaders {
  const one = (name: string) => {
    const value = get(name);
    return Array.isArray(value) ? undefined : value; // a repeated header is never believed
  };
  return {
    timestamp: one('wechatpay-timestamp'),
    nonce: one('wechatpay-nonce'),
    signature: one('wechatpay-signature'),
    serial: one('wechatpay-serial'),
    signatureType: one('wechatpay-signature-type'),
  };
}

export type Verification = { ok: true } | { ok: false; reason: string };

/**
 * Whether `body` (the exact bytes received) carries WeChat Pay's signature by the configured key,
 * made within 300 s of `nowMs`. Signature-probe traffic (a signature starting WECHATPAY/SIGNTEST/)
 * fails like any bad signature, which is what WeChat Pay expects of it.
 */
export function verifyWechatPaySignature(options: { headers: WechatPaySignatureHeaders; body: Buffer | string; publicKey: KeyObject; platformSerial: string; nowMs?: number }): Verification {
  const { timestamp, nonce, signature, serial, signatureType } = options.headers;
  if (!timestamp || !nonce || !signature || !serial) return { ok: false, reason: 'the Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers are required' };
  if (serial !== options.platformSerial) return { ok: false, reason: `Wechatpay-Serial ${serial.slice(0, 64)} is not the configured platformSerial` };
  if (signatureType !== undefined && signatureType !== WECHATPAY_SCHEME) return { ok: false, reason: `Wechatpay-Signature-Type must be ${WECHATPAY_SCHEME}` };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'Wechatpay-Timestamp is not unix seconds' };
  const skew = Math.abs(Math.floor((options.nowMs ?? Date.now()) / 1000) - Number(timestamp));
  if (skew > WECHATPAY_TOLERANCE_SECONDS) return { ok: false, reason: `Wechatpay-Timestamp is ${skew} s from our clock (at most ${WECHATPAY_TOLERANCE_SECONDS})` };
  if (nonce.length > 64 || /[\r\n]/.test(nonce)) return { ok: false, reason: 'Wechatpay-Nonce is malformed' };
  if (signature.length > 1024 || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return { ok: false, reason: 'Wechatpay-Signature is not base64' };
  const body = typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : options.body;
  const message = Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), body, Buffer.from('\n')]);
  let verified = false;
  try {
    verified = verify('sha256', message, options.publicKey, Buffer.from(signature, 'base64'));
  } catch {
    verified = false;
  }
  return verified ? { ok: true } : { ok: false, reason: 'Wechatpay-Signature does not verify with the configured WeChat Pay public key' };
}

/** A notification's encrypted `resource`. */
export interface EncryptedResource {
  algorithm: string;
  ciphertext: string;
  nonce: string;
  associated_data?: string;
}

/** Decrypts and authenticates a resource (AEAD_AES_256_GCM); throws when it was not made with our APIv3 key. */
export function decryptResource(resource: EncryptedResource, apiV3Key: Buffer): Buffer {
  if (resource.algorithm !== 'AEAD_AES_256_GCM') throw new Error(`resource algorithm ${resource.algorithm} is not AEAD_AES_256_GCM`);
  const data = Buffer.from(resource.ciphertext, 'base64');
  if (data.length <= 16) throw new Error('resource ciphertext is too short');
  const decipher = createDecipheriv('aes-256-gcm', apiV3Key, Buffer.from(resource.nonce, 'utf8'));
  decipher.setAAD(Buffer.from(resource.associated_data ?? '', 'utf8'));
  decipher.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
}
