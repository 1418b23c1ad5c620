import { paymentBody, registerMerchant, request, TEST_ADMIN_TOKEN } from '../helpers/api';
import { testConfig, useTestApp } from '../helpers/test-app';

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

describe('the admin side on a listener of its own (ADMIN_PORT)', () => {
  const config = testConfig({ http: { adminPort: 0, adminHost: '127.0.0.1' } });
  const suite = useTestApp(config);

  it.each([
    ['GET', '/v1/admin/parked'],
    ['GET', '/v1/admin/backlog'],
    ['POST', '/v1/admin/merchants'],
    ['GET', '/ops'],
    ['GET', '/metrics'],
  ])('when %s %s is asked on the public port, then it answers 404, and it works on the admin port', async (method, path) => {
    const pub = await request(suite.t.baseUrl, method, path, method === 'POST' ? { merchantId: 'm_x', name: 'x', notifyUrl: 'http://127.0.0.1:9/n' } : undefined, admin);
    expect(pub.status).toBe(404);
    const adm = await request(suite.t.adminUrl as string, method, path, method === 'POST' ? { merchantId: `m_edge_${Date.now()}`, name: 'x', notifyUrl: 'http://127.0.0.1:9/n' } : undefined, admin);
    expect(adm.status).toBeLessThan(300);
  });

  it('when /readyz is asked, then the public port says only ready, and the admin port gives the checks', async () => {
    expect((await request(suite.t.baseUrl, 'GET', '/readyz')).body).toEqual({ status: 'ready' });
    expect((await request(suite.t.adminUrl as string, 'GET', '/readyz')).body).toEqual({ status: 'ready', checks: { database: 'ok', broker: 'ok' } });
  });

  it('when a merchant registered on the admin port creates on the public port, then it works, and the admin port serves no payments', async () => {
    const shop = await registerMerchant(suite.t.adminUrl as string);
    expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), shop.auth)).status).toBe(201);
    expect((await request(suite.t.adminUrl as string, 'POST', '/v1/payments', paymentBody(), shop.auth)).status).toBe(404);
  });

  it('when any answer goes out, then it carries nosniff and no X-Powered-By', async () => {
    for (const res of [await request(suite.t.baseUrl, 'GET', '/healthz'), await request(suite.t.baseUrl, 'GET', '/v1/nothing'), await request(suite.t.adminUrl as string, 'GET', '/ops')]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });
});

describe('the per-key rate limit', () => {
  const config = testConfig({ http: { rateLimitPerKeyPerSecond: 5 } });
  const suite = useTestApp(config);

  it('when one key sends a burst above its limit, then the excess answers 429 RATE_LIMITED with Retry-After, and another key is not limited', async () => {
    const [shop, other] = [await registerMerchant(suite.t.baseUrl), await registerMerchant(suite.t.baseUrl)];
    const burst = await Promise.all(Array.from({ length: 12 }, () => request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), shop.auth)));
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(burst.filter((r) => r.status === 201).length).toBeLessThanOrEqual(5 * 2); // at most two windows' worth
    for (const r of limited) {
      expect(r.body.error.code).toBe('RATE_LIMITED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), other.auth)).status).toBe(201);
  });
});
