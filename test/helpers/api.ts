import { randomUUID } from 'node:crypto';
import { signBody } from '../../src/payments/payments-service';

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

export function paymentBody(overrides: Record<string, unknown> = {}) {
  return {
    merchantId: `m_${randomUUID().slice(0, 8)}`,
    orderId: `o-${randomUUID()}`,
    amount: 1999,
    currency: 'CNY',
    channel: 'wechat',
    timeoutSeconds: 900,
    ...overrides,
  };
}

/** Posts a callback signed with the channel's (development) secret. */
export function sendCallback(baseUrl: string, paymentId: string, body: unknown, secret = 'dev-secret-wechat') {
  const raw = JSON.stringify(body);
  return request(baseUrl, 'POST', `/v1/payments/${paymentId}/callback`, raw, { 'x-signature': signBody(secret, raw) });
}
