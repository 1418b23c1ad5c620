import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Express } from 'express';
import { z } from 'zod';
import { deepMerge } from '../config/config-loader';
import { REAL_CHANNEL_CREDENTIALS, type RealChannelType } from '../config/config-schema';
import { createAlipayFakeApp, generateAlipayKeys } from './alipay-fake';
import { createStripeFakeApp } from './stripe-fake';
import { createWechatPayFakeApp, generateWechatPayFakeKeys } from './wechatpay-fake';

/*
 * The three protocol-faithful channel fakes as the local stack runs them (scripts/stack/apps.sh,
 * one process: channel-fakes-main.ts): WeChat Pay APIv3 on the base port, Alipay's gateway on
 * base + 1, Stripe on base + 2, loopback only. Their keys live in one file under .stack/,
 * generated once (mode 600, never committed) and reused across restarts; the same file gives the
 * app processes the CHANNEL_<NAME>_<CREDENTIAL> variables of every channel their config points at
 * a fake (channelFakeCredentials). The fakes' non-secret ids are fixed here, and config/demo.json
 * carries the same ones.
 */

export const CHANNEL_FAKES_DEFAULT_BASE_PORT = 4101;

/** The ids each fake expects; a channel pointed at a fake must be configured with these. */
export const CHANNEL_FAKE_IDS = {
  wechatpay: { mchid: '1900000109', merchantSerialNo: '7A3C4E1F9B2D6A8C0E5F1B3D7A9C2E4F6B8D0A1C', platformSerial: 'PUB_KEY_ID_0119000001092026010100000001' },
  alipay: { appId: '2021004100000001' },
} as const;

const pem = z.string().includes('-----BEGIN');
export const channelFakeKeysSchema = z
  .object({
    version: z.literal(1),
    createdAt: z.string(),
    wechatpay: z.object({ merchantPrivateKey: pem, merchantPublicKey: pem, platformPrivateKey: pem, platformPublicKey: pem, apiV3Key: z.string().length(32) }).strict(),
    alipay: z.object({ appPrivateKey: pem, appPublicKey: pem, alipayPrivateKey: pem, alipayPublicKey: pem }).strict(),
    stripe: z.object({ secretKey: z.string().regex(/^sk_test_[A-Za-z0-9]{24,}$/), webhookSecret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{16,}$/) }).strict(),
  })
  .strict();
export type ChannelFakeKeys = z.infer<typeof channelFakeKeysSchema>;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const base62 = (n: number) => Array.from(randomBytes(n), (b) => BASE62[b % 62]).join('');

/** A fresh key set for the three fakes and the service's side of each (RSA-2048 pairs, an APIv3 key, a test-mode Stripe key and endpoint secret). */
export function generateChannelFakeKeys(): ChannelFakeKeys {
  const wechat = generateWechatPayFakeKeys();
  const alipay = generateAlipayKeys();
  return {
    version: 1,
    createdAt: new Date().toISOString(),
    wechatpay: { merchantPrivateKey: wechat.merchantPrivateKey, merchantPublicKey: wechat.merchantPublicKey, platformPrivateKey: wechat.platformPrivateKey, platformPublicKey: wechat.platformPublicKey, apiV3Key: wechat.apiV3Key },
    alipay,
    stripe: { secretKey: `sk_test_${base62(32)}`, webhookSecret: `whsec_${randomBytes(24).toString('base64')}` },
  };
}

/** Reads and checks the keys file; the error names the file and says how to start over. */
export function readChannelFakeKeys(file: string): ChannelFakeKeys {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`channel fake keys ${file}: ${(err as Error).message}`);
  }
  const keys = channelFakeKeysSchema.safeParse(parsed);
  // The message names the field only: the values are secrets.
  if (!keys.success) throw new Error(`channel fake keys ${file}: ${keys.error.issues[0]?.path.join('.') ?? ''} is not valid; delete the file and start the stack again for new keys`);
  return keys.data;
}

/**
 * The keys file, created when it does not exist: written to a private temporary file (mode 600)
 * and linked into place, so a reader never sees half a file and two starters never both win.
 */
export function ensureChannelFakeKeys(file: string): { keys: ChannelFakeKeys; created: boolean } {
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    return { keys: readChannelFakeKeys(file), created: false };
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const keys = generateChannelFakeKeys();
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { keys: readChannelFakeKeys(file), created: false }; // another starter's won
  } finally {
    unlinkSync(temporary);
  }
  return { keys, created: true };
}

export function channelFakePorts(basePort: number): Record<RealChannelType, number> {
  return { wechatpay: basePort, alipay: basePort + 1, stripe: basePort + 2 };
}

/** The three fakes' apps, each knowing the service's public keys and signing with the channel's own. */
export function createChannelFakeApps(keys: ChannelFakeKeys): Record<RealChannelType, Express> {
  const ids = CHANNEL_FAKE_IDS;
  return {
    wechatpay: createWechatPayFakeApp({
      mchid: ids.wechatpay.mchid,
      merchantSerialNo: ids.wechatpay.merchantSerialNo,
      merchantPublicKey: keys.wechatpay.merchantPublicKey,
      platformSerial: ids.wechatpay.platformSerial,
      platformPrivateKey: keys.wechatpay.platformPrivateKey,
      apiV3Key: keys.wechatpay.apiV3Key,
    }),
    alipay: createAlipayFakeApp({ appId: ids.alipay.appId, appPublicKey: keys.alipay.appPublicKey, alipayPrivateKey: keys.alipay.alipayPrivateKey }),
    stripe: createStripeFakeApp({ secretKey: keys.stripe.secretKey, webhookSecret: keys.stripe.webhookSecret }),
  };
}

/** Starts the three fakes on their ports; rejects (closing what did start) when a port is taken. */
export async function startChannelFakes(options: { keys: ChannelFakeKeys; basePort: number; host?: string }): Promise<{ urls: Record<RealChannelType, string>; close(): Promise<void> }> {
  const host = options.host ?? '127.0.0.1';
  const ports = channelFakePorts(options.basePort);
  const apps = createChannelFakeApps(options.keys);
  const servers: Server[] = [];
  const close = () =>
    Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    ).then(() => undefined);
  try {
    for (const kind of Object.keys(apps) as RealChannelType[]) {
      servers.push(
        await new Promise<Server>((resolve, reject) => {
          const server = apps[kind].listen(ports[kind], host, () => resolve(server));
          server.once('error', (err) => reject(new Error(`${kind} fake on ${host}:${ports[kind]}: ${err.message}`)));
        }),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  const origin = (kind: RealChannelType) => `http://${host}:${ports[kind]}`;
  return { urls: { wechatpay: origin('wechatpay'), alipay: `${origin('alipay')}/gateway.do`, stripe: origin('stripe') }, close };
}

/** What the service's side of each channel gets from the keys file, by REAL_CHANNEL_CREDENTIALS name. */
function credentialsOf(kind: RealChannelType, keys: ChannelFakeKeys): Record<string, string> {
  const values: Record<RealChannelType, Record<string, string>> = {
    wechatpay: { PRIVATE_KEY: keys.wechatpay.merchantPrivateKey, API_V3_KEY: keys.wechatpay.apiV3Key, PLATFORM_PUBLIC_KEY: keys.wechatpay.platformPublicKey },
    alipay: { PRIVATE_KEY: keys.alipay.appPrivateKey, ALIPAY_PUBLIC_KEY: keys.alipay.alipayPublicKey },
    stripe: { SECRET_KEY: keys.stripe.secretKey, WEBHOOK_SECRET: keys.stripe.webhookSecret },
  };
  const out: Record<string, string> = {};
  for (const credential of REAL_CHANNEL_CREDENTIALS[kind]) {
    const value = values[kind][credential];
    if (value === undefined) throw new Error(`the channel fakes have no ${credential} for ${kind}`);
    out[credential] = value;
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `url` is the fake's loopback origin (for Alipay: its gateway). */
function pointsAt(url: unknown, port: number): boolean {
  if (typeof url !== 'string') return false;
  try {
    const parsed = new URL(url);
    return ['127.0.0.1', 'localhost'].includes(parsed.hostname) && Number(parsed.port) === port;
  } catch {
    return false;
  }
}

/**
 * The CHANNEL_<NAME>_<CREDENTIAL> variables for every channel of `channels` (a config's raw
 * `channels` object) whose adapter points at one of the fakes on `basePort`, from the keys file.
 * Throws when such a channel is configured with ids the fake does not expect. Channels pointed
 * elsewhere (a real channel, the generic simulator) get nothing: their credentials are their own.
 */
export function channelFakeCredentials(channels: unknown, keys: ChannelFakeKeys, basePort: number): Record<string, string> {
  const ports = channelFakePorts(basePort);
  const env: Record<string, string> = {};
  for (const [name, channel] of Object.entries(isObject(channels) ? channels : {})) {
    const adapter = isObject(channel) && isObject(channel.adapter) ? channel.adapter : {};
    const kind = adapter.type;
    if (kind !== 'wechatpay' && kind !== 'alipay' && kind !== 'stripe') continue;
    if (!pointsAt(kind === 'alipay' ? adapter.gateway : adapter.baseUrl, ports[kind])) continue;
    const expected: Record<string, string> = kind === 'stripe' ? {} : CHANNEL_FAKE_IDS[kind];
    for (const [field, value] of Object.entries(expected)) {
      if (adapter[field] !== value) throw new Error(`channels.${name}.adapter.${field} must be ${value}: the stack's ${kind} fake expects it`);
    }
    for (const [credential, value] of Object.entries(credentialsOf(kind, keys))) env[`CHANNEL_${name.toUpperCase()}_${credential}`] = value;
  }
  return env;
}

/** The channels the service would configure from these files (config/default.json, config/<NODE_ENV>.json, COMPENSATOR_CONFIG), unvalidated. */
export function configuredChannels(configDir: string, env: NodeJS.ProcessEnv): unknown {
  const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  let raw = read(path.join(configDir, 'default.json'));
  const envFile = path.join(configDir, `${env.NODE_ENV || 'production'}.json`);
  if (existsSync(envFile)) raw = deepMerge(raw, read(envFile));
  if (env.COMPENSATOR_CONFIG) raw = deepMerge(raw, read(path.resolve(env.COMPENSATOR_CONFIG)));
  return raw.channels;
}
