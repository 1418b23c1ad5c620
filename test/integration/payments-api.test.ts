import { createHmac } from 'node:crypto';
import { signGatewayRequest } from '../../src/shared/gateway-signature';
import { notificationSink, paymentBody as basePaymentBody, registerMerchant, request, sendCallback, txId, type HttpResult, type TestMerchant } from '../helpers/api';
import { eventsOf, internalIdOf } from '../helpers/fixtures';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, useTestApp, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const RESOURCE_KEYS = ['amount', 'channel', 'closedAt', 'createdAt', 'currency', 'expiresAt', 'id', 'merchantId', 'orderId', 'paidAt', 'status', 'transactionId'];

/** Every error body is exactly { error: { code, message, details? } } with a non-empty message. */
function expectError(res: HttpResult, status: number, code: string): { code: string; message: string; details?: Array<{ path: string; message: string }> } {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(Object.keys(res.body)).toEqual(['error']);
  const error = res.body.error;
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  expect(Object.keys(error).every((k) => ['code', 'message', 'details'].includes(k))).toBe(true);
  if ('details' in error) expect(Array.isArray(error.details)).toBe(true);
  return error;
}

describe('the payments HTTP API', () => {
  // alipay gets its own default timeout, to show the default comes from config, per channel.
  const config = testConfig({ channels: { alipay: { timeoutSeconds: 1200 } } });
  const suite = useTestApp(config);

  // The suite's merchant, registered on the loopback notification sink; its key does every call.
  let merchant: TestMerchant;
  let sinkOrigin: string;
  beforeAll(async () => {
    sinkOrigin = new URL(await notificationSink()).origin;
    merchant = await registerMerchant(suite.t.baseUrl);
  });
  const paymentBody = (overrides: Record<string, unknown> = {}) => basePaymentBody({ merchantId: merchant.merchantId, ...overrides }) as ReturnType<typeof basePaymentBody> & { merchantId: string };
  const createPayment = (body: unknown, as: TestMerchant = merchant) => request(suite.t.baseUrl, 'POST', '/v1/payments', body, as.auth);
  const getPayment = (id: string) => request(suite.t.baseUrl, 'GET', `/v1/payments/${id}`, undefined, merchant.auth);
  const eventsFor = async (publicId: string) => eventsOf(suite.db, [await internalIdOf(suite.db, publicId)]);
  const rowCount = async (merchantId: string, orderId?: string) => {
    const [row] = await suite.db('payments').where({ merchant_id: merchantId, ...(orderId ? { order_id: orderId } : {}) }).count({ n: '*' });
    return Number(row?.n);
  };

  async function createdPending(overrides: Record<string, unknown> = {}) {
    const res = await createPayment(paymentBody(overrides));
    expect(res.status).toBe(201);
    return res.body as Record<string, any>;
  }

  describe('creating a payment', () => {
    it('when a valid payment is posted, then it answers 201 with exactly the payment resource', async () => {
      const body = paymentBody({ amount: 2500, currency: 'USD', channel: 'alipay', timeoutSeconds: 600, notifyUrl: `${sinkOrigin}/orders/notify` });
      const before = Date.now();
      const res = await createPayment(body);
      const after = Date.now();

      expect(res.status).toBe(201);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(Object.keys(res.body).sort()).toEqual(RESOURCE_KEYS);
      expect(res.body).toEqual({
        id: expect.stringMatching(/^pay_[0-9A-Za-z]{22}$/),
        merchantId: body.merchantId,
        orderId: body.orderId,
        amount: 2500,
        currency: 'USD',
        channel: 'alipay',
        status: 'PENDING',
        createdAt: expect.stringMatching(ISO_UTC_MS),
        expiresAt: expect.stringMatching(ISO_UTC_MS),
        paidAt: null,
        closedAt: null,
        transactionId: null,
      });
      const createdAt = Date.parse(res.body.createdAt);
      expect(createdAt).toBeGreaterThanOrEqual(before);
      expect(createdAt).toBeLessThanOrEqual(after);
      expect(Date.parse(res.body.expiresAt) - createdAt).toBe(600 * 1000);
    });

    it('when a payment is read back, then GET answers 200 with the same resource', async () => {
      const created = await createdPending();
      const read = await getPayment(created.id);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created);
    });

    it('when two payments are created in a row, then their ids are distinct opaque strings, not the numeric key', async () => {
      const a = await createdPending();
      const b = await createdPending();
      expect(a.id).not.toBe(b.id);
      for (const p of [a, b]) {
        expect(p.id).toMatch(/^pay_[0-9A-Za-z]{22}$/);
        expect(p.id).not.toBe(`pay_${await internalIdOf(suite.db, p.id)}`);
      }
    });

    it('when timeoutSeconds is omitted, then the channel default of 900 s from config applies', async () => {
      const body = paymentBody({ channel: 'wechat' });
      delete (body as Record<string, unknown>).timeoutSeconds;
      const res = await createPayment(body);
      expect(res.status).toBe(201);
      expect(config.channels.wechat?.timeoutSeconds).toBe(900);
      expect(Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt)).toBe(900 * 1000);
    });

    it('when timeoutSeconds is omitted for another channel, then that channel\'s configured default applies', async () => {
      const body = paymentBody({ channel: 'alipay' });
      delete (body as Record<string, unknown>).timeoutSeconds;
      const res = await createPayment(body);
      expect(res.status).toBe(201);
      expect(Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt)).toBe(1200 * 1000);
    });

    it('when the same request is repeated, then it answers 200 with the same resource and creates nothing', async () => {
      const body = paymentBody();
      const first = await createPayment(body);
      const repeat = await createPayment(body);
      expect(first.status).toBe(201);
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual(first.body);
      expect(await rowCount(body.merchantId, body.orderId)).toBe(1);
      expect((await eventsFor(first.body.id)).map((e) => e.cause)).toEqual(['created']);
    });

    it('when a repeat spells out the default timeout the first request omitted, then it is the same request', async () => {
      const body = paymentBody();
      delete (body as Record<string, unknown>).timeoutSeconds;
      const first = await createPayment(body);
      const repeat = await createPayment({ ...body, timeoutSeconds: 900 });
      expect([first.status, repeat.status]).toEqual([201, 200]);
      expect(repeat.body.id).toBe(first.body.id);
    });

    it('when the same request arrives several times at once, then exactly one is created and all answer with its id', async () => {
      const body = paymentBody();
      const results = await Promise.all(Array.from({ length: 6 }, () => createPayment(body)));
      expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
      expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
      expect(await rowCount(body.merchantId, body.orderId)).toBe(1);
    });

    it.each([
      ['amount', { amount: 2000 }],
      ['currency', { currency: 'USD' }],
      ['channel', { channel: 'alipay' }],
      ['timeoutSeconds', { timeoutSeconds: 60 }],
      ['notifyUrl', { notifyUrl: '/other' }],
    ])('when the same merchant and order arrive with a different %s, then it answers 409 CONFLICT and the payment is unchanged', async (_field, change) => {
      const body = paymentBody();
      const first = await createPayment(body);
      const res = await createPayment({ ...body, ...change, ...('notifyUrl' in change ? { notifyUrl: `${sinkOrigin}${change.notifyUrl}` } : {}) });
      expectError(res, 409, 'CONFLICT');
      expect((await getPayment(first.body.id)).body).toEqual(first.body);
      expect(await rowCount(body.merchantId, body.orderId)).toBe(1);
    });

    it('when the same order id is used by another merchant, then it is a different payment', async () => {
      const other = await registerMerchant(suite.t.baseUrl);
      const a = paymentBody();
      const b = paymentBody({ merchantId: other.merchantId, orderId: a.orderId });
      const [ra, rb] = [await createPayment(a), await createPayment(b, other)];
      expect([ra.status, rb.status]).toEqual([201, 201]);
      expect(ra.body.id).not.toBe(rb.body.id);
    });

    // Creates that arrive together share one transaction (group commit); a duplicate inside a
    // batch must not cost the other creates their answer or their timer.
    it('when many creates, repeats and a conflicting body arrive at once, then each gets its own answer and every payment its timer', async () => {
      const batchMerchant = await registerMerchant(suite.t.baseUrl);
      const merchantId = batchMerchant.merchantId;
      const bodies = Array.from({ length: 40 }, (_, i) => paymentBody({ merchantId, orderId: `o-${i}`, timeoutSeconds: 1 }));
      const repeated = bodies[0] as Record<string, unknown>;
      const contested = bodies[1] as Record<string, unknown>;
      const [distinct, repeats, contest] = await Promise.all([
        Promise.all(bodies.slice(2).map((b) => createPayment(b, batchMerchant))),
        Promise.all([repeated, repeated, repeated].map((b) => createPayment(b, batchMerchant))),
        Promise.all([contested, { ...contested, amount: 4242 }].map((b) => createPayment(b, batchMerchant))),
      ]);
      expect(distinct.map((r) => r.status)).toEqual(distinct.map(() => 201));
      expect(repeats.map((r) => r.status).sort()).toEqual([200, 200, 201]);
      expect(new Set(repeats.map((r) => r.body.id)).size).toBe(1);
      expect(contest.map((r) => r.status).sort()).toEqual([201, 409]);
      expect(await rowCount(merchantId)).toBe(40);

      // Every timer reached the broker: each payment closes once, by its own timer.
      const ids = (await suite.db('payments').where({ merchant_id: merchantId }).select('id')).map((r) => Number(r.id));
      await waitFor('all 40 payments closed by their timers', async () => {
        const [row] = await suite.db('payments').whereIn('id', ids).andWhere({ status: 'CLOSED' }).count({ n: '*' });
        return Number(row?.n) === 40;
      });
      const events = await eventsOf(suite.db, ids);
      expect(events.filter((e) => e.to_status === 'PENDING').length).toBe(40);
      expect(events.filter((e) => e.from_status === 'PENDING' && e.to_status === 'CLOSED' && e.cause === 'timeout').length).toBe(40);
    });
  });

  describe('rejecting a bad create request', () => {
    it.each([
      ['merchantId', { merchantId: '' }],
      ['merchantId', { merchantId: 'm'.repeat(65) }],
      ['orderId', { orderId: 'order #1' }],
      ['channel', { channel: 'we/chat' }],
      ['amount', { amount: 0 }],
      ['amount', { amount: -100 }],
      ['amount', { amount: 19.99 }],
      ['amount', { amount: 1e12 + 1 }],
      ['amount', { amount: '1999' }],
      ['currency', { currency: 'cny' }],
      ['currency', { currency: 'YUAN' }],
      ['timeoutSeconds', { timeoutSeconds: 0 }],
      ['timeoutSeconds', { timeoutSeconds: 2_592_001 }],
      ['timeoutSeconds', { timeoutSeconds: 1.5 }],
      ['notifyUrl', { notifyUrl: 'ftp://merchant/notify' }],
      ['notifyUrl', { notifyUrl: 'not a url' }],
      ['amount', { amount: undefined }],
    ])('when %s is invalid (%j), then it answers 400 VALIDATION_FAILED naming the field and creates nothing', async (field, change) => {
      const body = { ...paymentBody(), ...change };
      const res = await createPayment(body);
      const error = expectError(res, 400, 'VALIDATION_FAILED');
      expect(error.message).toContain(field);
      expect(error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field, message: expect.stringContaining(field) })]));
      if (typeof body.orderId === 'string') expect(await rowCount(merchant.merchantId, body.orderId)).toBe(0);
    });

    it('when a platform key creates without merchantId, then it answers 400 VALIDATION_FAILED naming merchantId and creates nothing', async () => {
      const platform = await request(suite.t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: [merchant.merchantId] }, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
      const { merchantId: _m, ...body } = paymentBody();
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', body, { authorization: `Bearer ${platform.body.key}` });
      const error = expectError(res, 400, 'VALIDATION_FAILED');
      expect(error.message).toContain('merchantId');
      expect(error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'merchantId' })]));
      expect(await rowCount(merchant.merchantId, body.orderId)).toBe(0);
    });

    it('when the channel is not configured, then it answers 400 VALIDATION_FAILED listing the configured channels', async () => {
      const body = paymentBody({ channel: 'paypal' });
      const error = expectError(await createPayment(body), 400, 'VALIDATION_FAILED');
      expect(error.message).toMatch(/channel must be one of: .*wechat/);
      expect(error.details).toEqual([expect.objectContaining({ path: 'channel' })]);
      expect(await rowCount(body.merchantId, body.orderId)).toBe(0);
    });

    it('when the body has an unknown field, then it answers 400 naming the field', async () => {
      const body = paymentBody({ discount: 100 });
      const error = expectError(await createPayment(body), 400, 'VALIDATION_FAILED');
      expect(error.message).toBe('unknown field: discount');
      expect(await rowCount(body.merchantId, body.orderId)).toBe(0);
    });

    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])('when the content type is %s, then it answers 415 UNSUPPORTED_MEDIA_TYPE', async (contentType) => {
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', JSON.stringify(paymentBody()), { 'content-type': contentType });
      const error = expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(error.message).toContain(contentType);
    });

    it('when the JSON declares an unsupported charset, then it answers 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', JSON.stringify(paymentBody()), { 'content-type': 'application/json; charset=latin1' });
      expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('when the body is larger than 16 KiB, then it answers 413 PAYLOAD_TOO_LARGE, while exactly 16 KiB is still read', async () => {
      const padded = (size: number) => {
        const head = JSON.stringify({ ...paymentBody(), pad: '' });
        return `${head.slice(0, -2)}${'x'.repeat(size - head.length)}"}`;
      };
      const atLimit = padded(16 * 1024);
      const overLimit = padded(16 * 1024 + 1);
      expect([Buffer.byteLength(atLimit), Buffer.byteLength(overLimit)]).toEqual([16384, 16385]);

      expectError(await request(suite.t.baseUrl, 'POST', '/v1/payments', overLimit, merchant.auth), 413, 'PAYLOAD_TOO_LARGE');
      // At the limit the body is parsed, so the answer is about its content, not its size.
      expect(expectError(await request(suite.t.baseUrl, 'POST', '/v1/payments', atLimit, merchant.auth), 400, 'VALIDATION_FAILED').message).toBe('unknown field: pad');
    });

    it.each([
      ['truncated JSON', '{"merchantId": "m_1", '],
      ['single quotes', "{'merchantId': 'm_1'}"],
      ['a trailing comma', '{"merchantId": "m_1",}'],
    ])('when the body is malformed JSON (%s), then it answers 400 VALIDATION_FAILED', async (_name, raw) => {
      const error = expectError(await request(suite.t.baseUrl, 'POST', '/v1/payments', raw), 400, 'VALIDATION_FAILED');
      expect(error.message).toMatch(/not valid JSON/);
    });

    it.each([
      ['null', 'null'],
      ['an array', '[]'],
      ['a string', '"payment"'],
    ])('when the JSON body is %s, then it answers 400 VALIDATION_FAILED', async (_name, raw) => {
      expectError(await request(suite.t.baseUrl, 'POST', '/v1/payments', raw, merchant.auth), 400, 'VALIDATION_FAILED');
    });

    it('when there is no body at all, then it answers 400 VALIDATION_FAILED', async () => {
      expectError(await request(suite.t.baseUrl, 'POST', '/v1/payments', undefined, merchant.auth), 400, 'VALIDATION_FAILED');
    });
  });

  describe('reading and routing', () => {
    it('when the payment id is unknown, then GET answers 404 NOT_FOUND', async () => {
      const error = expectError(await getPayment('pay_doesNotExist0000000000'), 404, 'NOT_FOUND');
      expect(error.message).toContain('pay_doesNotExist0000000000');
    });

    it('when the route is unknown, then it answers 404 NOT_FOUND', async () => {
      expectError(await request(suite.t.baseUrl, 'GET', '/v1/refunds'), 404, 'NOT_FOUND');
      expectError(await request(suite.t.baseUrl, 'DELETE', '/v1/payments/pay_x'), 404, 'NOT_FOUND');
      expectError(await request(suite.t.baseUrl, 'POST', '/v2/payments', paymentBody()), 404, 'NOT_FOUND');
    });

    it('when the payment id in the path is a malformed %-escape, then it answers 400, not 500', async () => {
      expectError(await request(suite.t.baseUrl, 'GET', '/v1/payments/%E0%A4%A'), 400, 'VALIDATION_FAILED');
      expectError(await request(suite.t.baseUrl, 'POST', '/v1/payments/%ZZ/callback', { result: 'FAILED' }), 400, 'VALIDATION_FAILED');
    });
  });

  describe('channel callbacks', () => {
    it('when a valid SUCCESS callback arrives, then the payment becomes PAID with its transactionId and paidAt', async () => {
      const created = await createdPending();
      const before = Date.now();
      const res = await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('wx-tx-1'), paidAmount: created.amount });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        ...created,
        status: 'PAID',
        transactionId: txId('wx-tx-1'),
        paidAt: expect.stringMatching(ISO_UTC_MS),
      });
      expect(Date.parse(res.body.paidAt)).toBeGreaterThanOrEqual(before - 5);
      expect((await getPayment(created.id)).body).toEqual(res.body);
      expect(await eventsFor(created.id)).toEqual([
        expect.objectContaining({ from_status: null, to_status: 'PENDING', cause: 'created' }),
        expect.objectContaining({ from_status: 'PENDING', to_status: 'PAID', cause: 'callback' }),
      ]);
    });

    it('when the same SUCCESS callback is repeated, then it answers 200 unchanged and there is still exactly one PENDING->PAID event', async () => {
      const created = await createdPending();
      const callback = { result: 'SUCCESS', transactionId: txId('wx-tx-2'), paidAmount: created.amount };
      const first = await sendCallback(suite.t.baseUrl, created.id, callback);
      const repeat = await sendCallback(suite.t.baseUrl, created.id, callback);
      expect([first.status, repeat.status]).toEqual([200, 200]);
      expect(repeat.body).toEqual(first.body);
      const paidEvents = (await eventsFor(created.id)).filter((e) => e.to_status === 'PAID');
      expect(paidEvents).toEqual([expect.objectContaining({ from_status: 'PENDING', cause: 'callback' })]);
    });

    it('when the same SUCCESS callback arrives several times at once, then the payment is paid exactly once', async () => {
      const created = await createdPending();
      const callback = { result: 'SUCCESS', transactionId: txId('wx-tx-3'), paidAmount: created.amount };
      const results = await Promise.all(Array.from({ length: 5 }, () => sendCallback(suite.t.baseUrl, created.id, callback)));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(new Set(results.map((r) => r.body.paidAt)).size).toBe(1);
      expect((await eventsFor(created.id)).filter((e) => e.to_status === 'PAID')).toHaveLength(1);
    });

    it('when a paid payment gets a SUCCESS with another transactionId, then it answers 409 and keeps the first transaction', async () => {
      const created = await createdPending();
      await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('wx-tx-first'), paidAmount: created.amount });
      const res = await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('wx-tx-second'), paidAmount: created.amount });
      expectError(res, 409, 'CONFLICT');
      expect((await getPayment(created.id)).body).toEqual(expect.objectContaining({ status: 'PAID', transactionId: txId('wx-tx-first') }));
      expect((await eventsFor(created.id)).map((e) => e.cause)).toEqual(['created', 'callback', 'callback_conflict']);
    });

    describe.each([
      ['signed with another channel\'s secret', (raw: string, id: string) => signGatewayRequest('dev-secret-alipay', id, raw)],
      ['signed over a different body', (_raw: string, id: string) => signGatewayRequest('dev-secret-wechat', id, JSON.stringify({ result: 'FAILED' }))],
      ['not hex', (_raw: string) => `t=${Math.floor(Date.now() / 1000)},v1=${'z'.repeat(64)}`],
      ['too short', (raw: string, id: string) => signGatewayRequest('dev-secret-wechat', id, raw).slice(0, -32)],
      ['a bare hex HMAC of the body (the old scheme)', (raw: string) => createHmac('sha256', 'dev-secret-wechat').update(raw).digest('hex')],
    ])('a callback whose signature is %s', (_name, sign) => {
      it('answers 401 UNAUTHORIZED, and the payment and its events are unchanged', async () => {
        const created = await createdPending();
        const eventsBefore = await eventsFor(created.id);
        const raw = JSON.stringify({ result: 'SUCCESS', transactionId: txId('forged'), paidAmount: created.amount });
        const res = await request(suite.t.baseUrl, 'POST', `/v1/payments/${created.id}/callback`, raw, { 'x-signature': sign(raw, created.id) });
        expectError(res, 401, 'UNAUTHORIZED');
        expect((await getPayment(created.id)).body).toEqual(created);
        expect(await eventsFor(created.id)).toEqual(eventsBefore);
      });
    });

    it('when the signature header is missing, then it answers 401 UNAUTHORIZED and nothing changes', async () => {
      const created = await createdPending();
      const eventsBefore = await eventsFor(created.id);
      const res = await request(suite.t.baseUrl, 'POST', `/v1/payments/${created.id}/callback`, { result: 'SUCCESS', transactionId: txId('unsigned'), paidAmount: created.amount });
      expectError(res, 401, 'UNAUTHORIZED');
      expect((await getPayment(created.id)).body).toEqual(created);
      expect(await eventsFor(created.id)).toEqual(eventsBefore);
    });

    it('when the signature is valid but the body breaks the rules, then it answers 400 naming the field and nothing changes', async () => {
      const created = await createdPending();
      const error = expectError(await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', paidAmount: created.amount }), 400, 'VALIDATION_FAILED');
      expect(error.message).toContain('transactionId');
      expect((await getPayment(created.id)).body.status).toBe('PENDING');
    });

    it('when the callback is for an unknown payment, then it answers 404 NOT_FOUND', async () => {
      expectError(await sendCallback(suite.t.baseUrl, 'pay_doesNotExist0000000000', { result: 'FAILED' }), 404, 'NOT_FOUND');
    });

    it('when paidAmount differs from amount, then it answers 409, the payment is not PAID and the mismatch is recorded in payment_events', async () => {
      const created = await createdPending({ amount: 1999 });
      const res = await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('wx-short'), paidAmount: 1000 });
      const error = expectError(res, 409, 'CONFLICT');
      expect(error.message).toMatch(/1000/);
      expect((await getPayment(created.id)).body).toEqual(created);

      const events = await eventsFor(created.id);
      expect(events.filter((e) => e.to_status === 'PAID')).toEqual([]);
      const mismatch = events.filter((e) => e.cause === 'amount_mismatch');
      expect(mismatch).toEqual([expect.objectContaining({ from_status: 'PENDING', to_status: 'PENDING' })]);
      const details = (mismatch[0] as unknown as { details: unknown }).details;
      const parsed = typeof details === 'string' ? JSON.parse(details) : details;
      expect(parsed).toEqual({ callback: { result: 'SUCCESS', transactionId: txId('wx-short'), paidAmount: 1000 } });
    });

    it('when a FAILED callback arrives, then the payment becomes FAILED with closedAt and no paidAt', async () => {
      const created = await createdPending();
      const res = await sendCallback(suite.t.baseUrl, created.id, { result: 'FAILED' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ...created, status: 'FAILED', closedAt: expect.stringMatching(ISO_UTC_MS) });
      expect((await eventsFor(created.id)).filter((e) => e.to_status === 'FAILED')).toEqual([
        expect.objectContaining({ from_status: 'PENDING', cause: 'callback' }),
      ]);

      // Repeating FAILED changes nothing; a SUCCESS after FAILED is a conflict, not a payment.
      const repeat = await sendCallback(suite.t.baseUrl, created.id, { result: 'FAILED' });
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual(res.body);
      expectError(await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('too-late'), paidAmount: created.amount }), 409, 'CONFLICT');
      expect((await getPayment(created.id)).body).toEqual(res.body);
    });

    it('when a SUCCESS callback arrives after the payment was CLOSED by its timer, then it becomes PAID_AFTER_CLOSE', async () => {
      const created = await createdPending({ timeoutSeconds: 1 });
      const closed = await waitFor(
        `payment ${created.id} to be CLOSED by its 1 s timer`,
        async () => {
          const res = await getPayment(created.id);
          return res.body.status === 'CLOSED' ? res.body : undefined;
        },
        20000,
        100,
      );
      expect(closed.closedAt).toMatch(ISO_UTC_MS);

      const res = await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('wx-late'), paidAmount: created.amount });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ...closed, status: 'PAID_AFTER_CLOSE', transactionId: txId('wx-late'), paidAt: expect.stringMatching(ISO_UTC_MS) });
      expect(Date.parse(res.body.paidAt)).toBeGreaterThanOrEqual(Date.parse(closed.closedAt));
      expect((await eventsFor(created.id)).map((e) => [e.from_status, e.to_status, e.cause])).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'CLOSED', 'timeout'],
        ['CLOSED', 'PAID_AFTER_CLOSE', 'late_callback'],
      ]);

      // And a repeat of the late callback is idempotent too.
      const repeat = await sendCallback(suite.t.baseUrl, created.id, { result: 'SUCCESS', transactionId: txId('wx-late'), paidAmount: created.amount });
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual(res.body);
    });
  });

  describe('ops endpoints', () => {
    it('when the process is alive, then /healthz answers 200', async () => {
      const res = await request(suite.t.baseUrl, 'GET', '/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('when the database and the broker answer, then /readyz answers 200 with both ok', async () => {
      const res = await request(suite.t.baseUrl, 'GET', '/readyz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok', broker: 'ok' } });
    });
  });
});

describe('the payments HTTP API when the database refuses it', () => {
  const config = testConfig({ database: { url: 'mysql://compensator:wrong-password@127.0.0.1:3306/compensator_test' } });
  let t: TestApp;
  let consoleLog: jest.SpyInstance;

  beforeAll(async () => {
    // knex prints every failed connection attempt with console.log; keep that out of the test output.
    const original = console.log.bind(console);
    consoleLog = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      if (!String(args[0]).startsWith('Acquire connection error')) original(...args);
    });
    t = await startTestApp(config);
  });
  afterAll(async () => {
    await t?.stop();
    await deleteTestTopology(config);
    consoleLog.mockRestore();
  });

  it('when a request fails inside, then it answers 500 INTERNAL with no internal message, and the cause is only logged', async () => {
    // A well-formed key, so the request reaches the database before it could be refused.
    const res = await request(t.baseUrl, 'GET', '/v1/payments/pay_anything0000000000000', undefined, { authorization: `Bearer sk_${'A'.repeat(43)}` });
    expectError(res, 500, 'INTERNAL');
    expect(res.body).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    const text = JSON.stringify(res.body);
    for (const leak of ['Access denied', 'ER_', 'compensator', 'wrong-password', 'at ', 'knex', 'mysql']) expect(text).not.toContain(leak);
    await waitFor('the 500 to be logged with its cause', () => t.logs.find((l) => l.includes('request failed') && l.includes('Access denied')), 5000);
  });

  it('when the database does not answer, then /readyz answers 503 UNAVAILABLE naming the database', async () => {
    const res = await request(t.baseUrl, 'GET', '/readyz');
    const error = expectError(res, 503, 'UNAVAILABLE');
    expect(error.details).toEqual([expect.objectContaining({ path: 'database', message: expect.stringMatching(/^failed/) })]);
  });
});
