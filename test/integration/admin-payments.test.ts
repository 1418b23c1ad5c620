import { createPayment, getPayment, merchantFor, paymentBody, registerMerchant, request, sendCallback, TEST_ADMIN_TOKEN, txId } from '../helpers/api';
import { testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/** GET /v1/admin/payments/:id and ?merchantId=&orderId= (README.md, "Merchants, keys and the admin side"): where a payment is, for ops. */
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const UNKNOWN_ID = 'pay_0000000000000000000000';

interface Answer {
  payment: { id: string; merchantId: string; orderId: string; status: string };
  events: Array<{ at: string; from: string | null; to: string; cause: string; details: Record<string, unknown> | null }>;
}

describe('the admin payment lookup', () => {
  const config = testConfig();
  const suite = useTestApp(config);
  const get = (path: string, headers: Record<string, string> = admin) => request<Answer>(suite.t.baseUrl, 'GET', path, undefined, headers);

  async function createPending() {
    const res = await createPayment(suite.t.baseUrl, paymentBody());
    expect(res.status).toBe(201);
    return res.body as { id: string; merchantId: string; orderId: string; amount: number };
  }

  it('when it is called without the admin token or with a wrong one, then both routes answer 401 and say nothing of the payment', async () => {
    const p = await createPending();
    const refused: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token' }, { authorization: TEST_ADMIN_TOKEN }];
    for (const path of [`/v1/admin/payments/${p.id}`, `/v1/admin/payments?merchantId=${p.merchantId}&orderId=${p.orderId}`]) {
      for (const headers of refused) {
        const res = await get(path, headers);
        expect(res.status).toBe(401);
        expect((res.body as unknown as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
        expect(JSON.stringify(res.body)).not.toContain(p.id);
      }
    }
  });

  it('when no payment has that id, or that merchant has none for that order, then it answers 404 NOT_FOUND', async () => {
    const p = await createPending();
    const byId = await get(`/v1/admin/payments/${UNKNOWN_ID}`);
    expect(byId.status).toBe(404);
    expect((byId.body as unknown as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect((await get(`/v1/admin/payments?merchantId=${p.merchantId}&orderId=no-such-order`)).status).toBe(404);
    // The order id exists, under another merchant.
    expect((await get(`/v1/admin/payments?merchantId=m_nobody&orderId=${p.orderId}`)).status).toBe(404);
  });

  it.each([
    ['an id that is not "pay_" and 22 base62 characters', '/v1/admin/payments/nope'],
    ['an id one character short', `/v1/admin/payments/${UNKNOWN_ID.slice(0, -1)}`],
    ['markup as the id', `/v1/admin/payments/${encodeURIComponent('<img src=x onerror=alert(1)>')}`],
    ['no query', '/v1/admin/payments'],
    ['no orderId', '/v1/admin/payments?merchantId=m_1'],
    ['no merchantId', '/v1/admin/payments?orderId=o-1'],
    ['a merchantId outside [A-Za-z0-9_.:-]', `/v1/admin/payments?merchantId=${encodeURIComponent('<b>m</b>')}&orderId=o-1`],
    ['an orderId of 65 characters', `/v1/admin/payments?merchantId=m_1&orderId=${'o'.repeat(65)}`],
    ['a repeated orderId', '/v1/admin/payments?merchantId=m_1&orderId=a&orderId=b'],
    ['an unknown query key', '/v1/admin/payments?merchantId=m_1&orderId=o-1&status=PAID'],
  ])('when the request has %s, then it answers 400 VALIDATION_FAILED', async (_what, path) => {
    const res = await get(path);
    expect(res.status).toBe(400);
    expect((res.body as unknown as { error: { code: string; message: string } }).error).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.any(String) });
  });

  it('when a payment was created and then paid by a signed callback, then both lookups answer its public resource and its timeline in order, the same the merchant reads', async () => {
    const p = await createPending();
    const paid = await sendCallback(suite.t.baseUrl, p.id, { result: 'SUCCESS', transactionId: txId(`admin-lookup-${p.id}`), paidAmount: p.amount });
    expect(paid.status).toBe(200);
    // The merchant's notification is delivered after the answer: its event closes the timeline.
    const byId = await waitFor('the delivery in the timeline', async () => {
      const res = await get(`/v1/admin/payments/${p.id}`);
      return res.status === 200 && res.body.events.some((e) => e.cause === 'notification_delivered') ? res : undefined;
    }, 15000, 100);

    expect(byId.body.payment).toEqual((await getPayment(suite.t.baseUrl, p.id)).body);
    expect(byId.body.payment).toMatchObject({ id: p.id, status: 'PAID', transactionId: txId(`admin-lookup-${p.id}`) });
    expect(Object.keys(byId.body)).toEqual(['payment', 'events']);
    expect(byId.body.events.map((e) => [e.from, e.to, e.cause])).toEqual([
      [null, 'PENDING', 'created'],
      ['PENDING', 'PAID', 'callback'],
      ['PAID', 'PAID', 'notification_delivered'],
    ]);
    const times = byId.body.events.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const merchant = await merchantFor(suite.t.baseUrl);
    const own = await request(suite.t.baseUrl, 'GET', `/v1/payments/${p.id}/events`, undefined, merchant.auth);
    expect(byId.body.events).toEqual(own.body.events);

    const byOrder = await get(`/v1/admin/payments?merchantId=${encodeURIComponent(p.merchantId)}&orderId=${encodeURIComponent(p.orderId)}`);
    expect(byOrder.status).toBe(200);
    expect(byOrder.body).toEqual(byId.body);
  });
});

describe('the admin payment lookup with ADMIN_PORT set', () => {
  const config = testConfig({ http: { adminPort: 0, adminHost: '127.0.0.1' } });
  const suite = useTestApp(config);

  it('when it is asked on the public port, then it answers 404, and it answers on the admin port', async () => {
    const shop = await registerMerchant(suite.t.adminUrl as string);
    const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), shop.auth);
    expect(res.status).toBe(201);
    const path = `/v1/admin/payments/${res.body.id}`;
    expect((await request(suite.t.baseUrl, 'GET', path, undefined, admin)).status).toBe(404);
    const adm = await request<Answer>(suite.t.adminUrl as string, 'GET', path, undefined, admin);
    expect(adm.status).toBe(200);
    expect(adm.body.events.map((e) => e.cause)).toEqual(['created']);
  });
});
