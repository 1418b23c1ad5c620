import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signGatewayRequest } from '../../src/shared/gateway-signature';

/** The admin token of in-process test apps (32+ characters, as production requires). */
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123';

export interface HttpResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = any>(baseUrl: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  const raw = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...(raw !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: raw,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** A create body; the merchant comes from the key unless a test names one. */
export function paymentBody(overrides: Record<string, unknown> = {}) {
  return {
    orderId: `o-${randomUUID()}`,
    amount: 1999,
    currency: 'CNY',
    channel: 'wechat',
    timeoutSeconds: 900,
    ...overrides,
  };
}

let sink: Promise<string> | undefined;
/**
 * A merchant endpoint that answers 204 to everything, for merchants whose notifications a test
 * does not read. One per test process, unref'd so it never holds jest open.
 */
export function notificationSink(): Promise<string> {
  sink ??= new Promise((resolve) => {
    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    server.on('connection', (socket) => socket.unref()); // keep-alive sockets must not hold jest either
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`));
    server.unref();
  });
  return sink;
}

export interface TestMerchant {
  merchantId: string;
  name: string;
  notifyUrl: string;
  createdAt: string;
  apiKey: { id: string; key: string };
  webhookSecret: string;
  /** `Authorization: Bearer <apiKey>` */
  auth: Record<string, string>;
}

const adminUrls = new Map<string, string>();
/** Where the admin API of `baseUrl` is served when it has a listener of its own (nginx's, ADMIN_PORT). */
export function useAdminUrl(baseUrl: string, adminUrl: string): void {
  adminUrls.set(baseUrl, adminUrl);
}
const adminUrlOf = (baseUrl: string) => adminUrls.get(baseUrl) ?? baseUrl;

/** Registers a merchant through the admin API (POST /v1/admin/merchants). */
export async function registerMerchant(baseUrl: string, options: { merchantId?: string; notifyUrl?: string; adminToken?: string } = {}): Promise<TestMerchant> {
  const body = { merchantId: options.merchantId ?? `m_${randomUUID().slice(0, 12)}`, name: 'Test shop', notifyUrl: options.notifyUrl ?? (await notificationSink()) };
  const res = await request(adminUrlOf(baseUrl), 'POST', '/v1/admin/merchants', body, { authorization: `Bearer ${options.adminToken ?? TEST_ADMIN_TOKEN}` });
  if (res.status !== 201) throw new Error(`registering merchant ${body.merchantId} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { ...res.body, auth: { authorization: `Bearer ${res.body.apiKey.key}` } };
}

const merchants = new Map<string, Promise<TestMerchant>>();
/**
 * The merchant a test's creates act as, registered once per app, merchant id and notify origin:
 * a body with a notifyUrl gets a merchant registered on that origin, as the contract requires.
 */
export function merchantFor(baseUrl: string, body: { merchantId?: unknown; notifyUrl?: unknown } = {}, adminToken?: string): Promise<TestMerchant> {
  const notifyUrl = typeof body.notifyUrl === 'string' ? body.notifyUrl : undefined;
  const merchantId = typeof body.merchantId === 'string' ? body.merchantId : undefined;
  const key = `${baseUrl}|${merchantId ?? ''}|${notifyUrl ? new URL(notifyUrl).origin : ''}`;
  let merchant = merchants.get(key);
  if (!merchant) {
    merchant = registerMerchant(baseUrl, { merchantId, notifyUrl, adminToken });
    merchant.catch(() => merchants.delete(key));
    merchants.set(key, merchant);
  }
  return merchant;
}

/** POST /v1/payments with the key of the body's merchant (see merchantFor). */
export async function createPayment(baseUrl: string, body: Record<string, unknown>, headers: Record<string, string> = {}, adminToken?: string): Promise<HttpResult> {
  const merchant = await merchantFor(baseUrl, body, adminToken);
  return request(baseUrl, 'POST', '/v1/payments', body, { ...merchant.auth, ...headers });
}

const readers = new Map<string, Promise<string>>();
/** A platform key for every merchant ("*"), so a test reads any payment it made. */
function readerKey(baseUrl: string, adminToken = TEST_ADMIN_TOKEN): Promise<string> {
  let key = readers.get(baseUrl);
  if (!key) {
    key = request(adminUrlOf(baseUrl), 'POST', '/v1/admin/api-keys', { merchants: ['*'] }, { authorization: `Bearer ${adminToken}` }).then((res) => {
      if (res.status !== 201) throw new Error(`platform key answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body.key as string;
    });
    key.catch(() => readers.delete(baseUrl));
    readers.set(baseUrl, key);
  }
  return key;
}

/** GET /v1/payments/:id with a platform key for all merchants. */
export async function getPayment(baseUrl: string, id: string, adminToken?: string): Promise<HttpResult> {
  return request(baseUrl, 'GET', `/v1/payments/${id}`, undefined, { authorization: `Bearer ${await readerKey(baseUrl, adminToken)}` });
}

/** Posts a callback signed for this payment, now, with the channel's (development) secret. */
export function sendCallback(baseUrl: string, paymentId: string, body: unknown, secret = 'dev-secret-wechat', atMs = Date.now()) {
  const raw = JSON.stringify(body);
  return request(baseUrl, 'POST', `/v1/payments/${paymentId}/callback`, raw, { 'x-signature': signGatewayRequest(secret, paymentId, raw, atMs) });
}

const RUN = randomUUID().slice(0, 8);
/**
 * A transaction id unique to this test process: (channel, transaction_id) is unique, and the
 * test database outlives a run. The same name gives the same id within a process.
 */
export function txId(name: string): string {
  return `${name}-${RUN}`;
}
