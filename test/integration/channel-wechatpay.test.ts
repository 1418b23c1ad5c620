import express from 'express';
import type { Knex } from 'knex';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createChannelNotifyRoutes } from '../../src/channels/channel-notify-routes';
import { createWechatPayAdapter } from '../../src/channels/wechatpay/wechatpay-adapter';
import type { RateLimiter } from '../../src/channels/rate-limiter';
import { authorizationHeader } from '../../src/channels/wechatpay/wechatpay-signature';
import type { PaymentResource } from '../../src/payments/payment-resource';
import { createLogger } from '../../src/shared/logger';
import { createOutboundHttp } from '../../src/shared/outbound-http';
import { generateWechatPayFakeKeys, startWechatPayFake, type WechatPayFakeCall } from '../../src/simulator/wechatpay-fake';
import { createPayment, getPayment, merchantFor, paymentBody, request, txId } from '../helpers/api';
import { eventsOf, internalIdOf, openTestDatabase } from '../helpers/fixtures';
import { deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

const keys = generateWechatPayFakeKeys();
// Credentials come from the environment only, as in production (CHANNEL_<NAME>_*).
process.env.CHANNEL_WECHATPAY_PRIVATE_KEY = keys.merchantPrivateKey;
process.env.CHANNEL_WECHATPAY_API_V3_KEY = keys.apiV3Key;
process.env.CHANNEL_WECHATPAY_PLATFORM_PUBLIC_KEY = keys.platformPublicKey;
const credentials = { PRIVATE_KEY: keys.merchantPrivateKey, API_V3_KEY: keys.apiV3Key, PLATFORM_PUBLIC_KEY: keys.platformPublicKey };

describe('WeChat Pay APIv3: adapter, fake and native notifications', () => {
  let fake: Awaited<ReturnType<typeof startWechatPayFake>>;
  let config: ReturnType<typeof testConfig>;
  let t: TestApp;
  let db: Knex;
  const http = createOutboundHttp({ policy: { allowLoopback: true, allowPrivateHosts: [] } });
  let takes = 0;
  const limiter: RateLimiter = { take: async () => void takes++ };

  beforeAll(async () => {
    fake = await startWechatPayFake({ ...keys, merchantPublicKey: keys.merchantPublicKey, platformPrivateKey: keys.platformPrivateKey });
    config = testConfig({
      channels: {
        wechatpay: { timeoutSeconds: 900, adapter: { type: 'wechatpay', baseUrl: fake.url, mchid: keys.mchid, merchantSerialNo: keys.merchantSerialNo, platformSerial: keys.platformSerial, timeoutMs: 1000 } },
        wechat: { timeoutSeconds: 900, adapter: { type: 'none' } },
        alipay: { timeoutSeconds: 900, adapter: { type: 'none' } },
      },
    });
    t = await startTestApp(config);
    db = openTestDatabase(config);
  });
  afterAll(async () => {
    await t?.stop();
    await db?.destroy();
    await fake?.close();
    await http.close();
    await deleteTestTopology(config);
  });

  const adapterConfig = () => config.channels.wechatpay!.adapter as Extract<(typeof config.channels)[string]['adapter'], { type: 'wechatpay' }>;
  const adapter = (overrides: { credentials?: Record<string, string>; merchantSerialNo?: string } = {}) =>
    createWechatPayAdapter({ name: 'wechatpay', config: { ...adapterConfig(), ...(overrides.merchantSerialNo ? { merchantSerialNo: overrides.merchantSerialNo } : {}) }, credentials: overrides.credentials ?? credentials, http, limiter });

  let seq = 0;
  /** A payment resource as the worker passes it; its id is the out_trade_no. */
  const resource = (amount = 1999): PaymentResource => ({
    id: `pay_test${Date.now().toString(36)}${String(++seq).padStart(4, '0')}`,
    merchantId: 'm_1',
    orderId: `o-${seq}`,
    amount,
    currency: 'CNY',
    channel: 'wechatpay',
    status: 'PENDING',
    createdAt: new Date().toISOString(),
    expiresAt: new Date().toISOString(),
    paidAt: null,
    closedAt: null,
    transactionId: null,
  });
  const context = { attempt: 1 };

  async function script(key: string, body: { answers?: unknown[]; close?: unknown[] }) {
    const res = await request(fake.url, 'PUT', `/script/${encodeURIComponent(key)}`, body);
    expect(res.status).toBe(204);
  }
  const callsOf = async (outTradeNo: string) => (await request<{ calls: WechatPayFakeCall[] }>(fake.url, 'GET', `/calls?outTradeNo=${encodeURIComponent(outTradeNo)}`)).body.calls;

  describe('the adapter against the fake', () => {
    it('when the order is SUCCESS, then it is PAID with transaction_id and amount.total (not payer_total), and the request signature verified at the fake', async () => {
      const p = resource();
      await script(p.id, { answers: [{ kind: 'paid', transactionId: '4200000000000000000000000000001', total: 1999, payerTotal: 1500 }] });
      const before = takes;
      expect(await adapter().queryOrder(p, context)).toEqual({ status: 'PAID', transactionId: '4200000000000000000000000000001', paidAmount: 1999 });
      expect(takes).toBe(before + 1);
      expect(await callsOf(p.id)).toEqual([expect.objectContaining({ op: 'query', signed: true, answered: '200 SUCCESS' })]);
    });

    it.each([
      ['REFUND', 'PAID', { status: 'PAID', transactionId: 'wx-refund-1', paidAmount: 1999 }],
      ['NOTPAY', 'NOT_PAID', { status: 'NOT_PAID' }],
      ['CLOSED', 'NOT_PAID', { status: 'NOT_PAID' }],
      ['PAYERROR', 'NOT_PAID', { status: 'NOT_PAID' }],
      ['REVOKED', 'NOT_PAID', { status: 'NOT_PAID' }],
      ['USERPAYING', 'UNKNOWN', { status: 'UNKNOWN', reason: expect.stringMatching(/USERPAYING/) }],
    ])('when the order is %s, then the query says %s', async (state, _label, expected) => {
      const p = resource();
      await script(p.id, { answers: [{ kind: 'state', state, total: 1999, ...(state === 'REFUND' ? { transactionId: 'wx-refund-1' } : {}) }] });
      expect(await adapter().queryOrder(p, context)).toEqual(expected);
    });

    it('when WeChat Pay has no such order (a signed 404 ORDER_NOT_EXIST), then it is NOT_PAID', async () => {
      const p = resource();
      expect(await adapter().queryOrder(p, context)).toEqual({ status: 'NOT_PAID', orderMissing: true });
      expect((await callsOf(p.id))[0]).toEqual(expect.objectContaining({ answered: '404 ORDER_NOT_EXIST', signed: true }));
    });

    it('when an order is closed twice (a crash between the close and the commit), then both closes succeed: 204, then ORDER_CLOSED', async () => {
      const p = resource();
      const before = takes;
      await adapter().closeOrder(p, context);
      await adapter().closeOrder(p, context);
      expect((await callsOf(p.id)).map((c) => [c.op, c.signed, c.answered])).toEqual([
        ['close', true, '204'],
        ['close', true, '400 ORDER_CLOSED'],
      ]);
      expect(takes).toBe(before + 2);
      expect(await adapter().queryOrder(p, context)).toEqual({ status: 'NOT_PAID' }); // CLOSED now
    });

    it('when the close answers USER_PAYING, a 5xx or throttling, then the close throws so the worker asks again', async () => {
      const p = resource();
      await script(p.id, { close: [{ kind: 'paying' }, { kind: 'error' }, { kind: 'throttled' }] });
      await expect(adapter().closeOrder(p, context)).rejects.toThrow(/202 USER_PAYING/);
      await expect(adapter().closeOrder(p, context)).rejects.toThrow(/500 SYSTEM_ERROR/);
      await expect(adapter().closeOrder(p, context)).rejects.toThrow(/429 FREQUENCY_LIMITED \(throttled\)/);
    });

    it('when the channel throttles or fails, then the query throws (a retry), never an answer', async () => {
      const p = resource();
      await script(p.id, { answers: [{ kind: 'throttled' }, { kind: 'error' }, { kind: 'error', status: 503, code: 'SYSTEM_ERROR' }, { kind: 'error', status: 403, code: 'FREQUENCY_LIMITED' }] });
      await expect(adapter().queryOrder(p, context)).rejects.toThrow(/429 FREQUENCY_LIMITED \(throttled\)/);
      await expect(adapter().queryOrder(p, context)).rejects.toThrow(/500 SYSTEM_ERROR/);
      await expect(adapter().queryOrder(p, context)).rejects.toThrow(/503 SYSTEM_ERROR/);
      await expect(adapter().queryOrder(p, context)).rejects.toThrow(/403 FREQUENCY_LIMITED \(throttled\)/);
    });

    it.each(['body', 'signature', 'serial', 'stale', 'unsigned'])('when the answer is tampered (%s), then the adapter refuses it', async (tamper) => {
      const p = resource();
      await script(p.id, { answers: [{ kind: 'not_paid', tamper }], close: [{ kind: 'closed', tamper }] });
      await expect(adapter().queryOrder(p, context)).rejects.toThrow(/refused/);
      await expect(adapter().closeOrder(p, context)).rejects.toThrow(/refused/);
    });

    it('when a signed answer names another order, or another currency, then it is not believed', async () => {
      const p = resource();
      await script(p.id, { answers: [{ kind: 'paid', total: 1999, outTradeNo: 'pay_someoneelse000000000000' }, { kind: 'paid', total: 1999, currency: 'USD' }] });
      await expect(adapter().queryOrder(p, context)).rejects.toThrow(/another order/);
      expect(await adapter().queryOrder(p, context)).toEqual({ status: 'UNKNOWN', reason: expect.stringMatching(/USD/) });
    });

    it('when the request is signed with another key or serial, then the fake refuses it with 401 SIGN_ERROR and the adapter throws', async () => {
      const p = resource();
      const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await expect(adapter({ credentials: { ...credentials, PRIVATE_KEY: stranger } }).queryOrder(p, context)).rejects.toThrow(/401 SIGN_ERROR/);
      await expect(adapter({ merchantSerialNo: 'ABCDEF0123456789' }).closeOrder(p, context)).rejects.toThrow(/401 SIGN_ERROR/);
      expect((await callsOf(p.id)).map((c) => [c.op, c.signed, c.refused])).toEqual([
        ['query', false, expect.stringMatching(/does not verify/)],
        ['close', false, expect.stringMatching(/serial_no/)],
      ]);
    });

    it('when a credential is missing or is not a key, then the adapter fails at start naming the variable', () => {
      expect(() => adapter({ credentials: { ...credentials, API_V3_KEY: 'short' } })).toThrow(/CHANNEL_WECHATPAY_API_V3_KEY/);
      expect(() => adapter({ credentials: { ...credentials, PRIVATE_KEY: 'not a pem' } })).toThrow(/CHANNEL_WECHATPAY_PRIVATE_KEY/);
    });
  });

  describe('the remedy through the worker', () => {
    const statusOf = async (id: string) => (await getPayment(t.baseUrl, id)).body;
    const untilStatus = (id: string, status: string, ms = 15000) =>
      waitFor(`${id} to be ${status}`, async () => {
        const p = await statusOf(id);
        return p.status === status ? p : undefined;
      }, ms, 50);

    /** A payment due in a second whose channel order answers `answers`. */
    async function createDue(answers?: unknown[], extra: Record<string, unknown> = {}) {
      const res = await createPayment(t.baseUrl, paymentBody({ channel: 'wechatpay', timeoutSeconds: 1, ...extra }));
      expect(res.status).toBe(201);
      const p = res.body as { id: string; expiresAt: string; amount: number };
      if (answers) await script(p.id, { answers });
      return p;
    }

    it('when a merchant cancels before the deadline and WeChat Pay has no such order yet, then nothing is closed: 503, still PENDING; with the order unpaid, the cancel closes it', async () => {
      const res = await createPayment(t.baseUrl, paymentBody({ channel: 'wechatpay', timeoutSeconds: 900 }));
      const p = res.body as { id: string; merchantId: string };
      const merchant = await merchantFor(t.baseUrl, {});
      const cancel = () => request(t.baseUrl, 'POST', `/v1/payments/${p.id}/cancel`, undefined, merchant.auth);
      // The checkout has not created the WeChat Pay order yet: the customer may still pay it.
      expect((await cancel()).status).toBe(503);
      expect((await statusOf(p.id)).status).toBe('PENDING');
      await script(p.id, { answers: [{ kind: 'not_paid' }] });
      expect((await cancel()).body.status).toBe('CLOSED');
    });

    it('when each trade_state is answered at the deadline, then the payment settles as documented', async () => {
      const cases = [
        { answers: [{ kind: 'paid', total: 1999, transactionId: txId('wx-remedy-success') }], status: 'PAID', ops: ['query'] },
        { answers: [{ kind: 'state', state: 'REFUND', total: 1999, transactionId: txId('wx-remedy-refund') }], status: 'PAID', ops: ['query'] },
        { answers: [{ kind: 'not_paid' }], status: 'CLOSED', ops: ['query', 'close'] },
        { answers: [{ kind: 'state', state: 'CLOSED' }], status: 'CLOSED', ops: ['query', 'close'] },
        { answers: [{ kind: 'state', state: 'PAYERROR' }], status: 'CLOSED', ops: ['query', 'close'] },
        { answers: [{ kind: 'state', state: 'REVOKED' }], status: 'CLOSED', ops: ['query', 'close'] },
        { answers: undefined, status: 'CLOSED', ops: ['query', 'close'] }, // no such order
      ];
      const payments = await Promise.all(cases.map((c) => createDue(c.answers)));
      for (const [i, c] of cases.entries()) {
        const p = payments[i]!;
        const settled = await untilStatus(p.id, c.status);
        if (c.status === 'PAID') expect(settled.transactionId).toBe((c.answers![0] as { transactionId: string }).transactionId);
        const calls = await callsOf(p.id);
        expect(calls.map((call) => call.op)).toEqual(c.ops);
        expect(calls.every((call) => call.signed)).toBe(true);
      }
    });

    it('when the customer is paying (USERPAYING), then the order is never closed while it is, and the remedy asks again on schedule', async () => {
      const p = await createDue([{ kind: 'paying' }, { kind: 'paying' }, { kind: 'paid', total: 1999, transactionId: txId('wx-after-paying') }]);
      const paid = await untilStatus(p.id, 'PAID');
      expect(paid.transactionId).toBe(txId('wx-after-paying'));
      const calls = await callsOf(p.id);
      expect(calls.map((c) => [c.op, c.answered])).toEqual([
        ['query', '200 USERPAYING'],
        ['query', '200 USERPAYING'],
        ['query', '200 SUCCESS'],
      ]);
      const at = calls.map((c) => Date.parse(c.at));
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1000);
    });

    it('when the channel errors twice and then says NOTPAY, then it closes on the third attempt, each retry on schedule', async () => {
      const p = await createDue([{ kind: 'error' }, { kind: 'error' }, { kind: 'not_paid' }]);
      await untilStatus(p.id, 'CLOSED');
      const calls = await callsOf(p.id);
      expect(calls.map((c) => [c.op, c.answered])).toEqual([
        ['query', '500 SYSTEM_ERROR'],
        ['query', '500 SYSTEM_ERROR'],
        ['query', '200 NOTPAY'],
        ['close', '204'],
      ]);
      const at = calls.map((c) => Date.parse(c.at));
      expect(at[0]!).toBeGreaterThanOrEqual(Date.parse(p.expiresAt));
      // The test schedule is [1, 1, 2] seconds: each retry is due no earlier than 1 s after the failure.
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1000);
    });

    it('when the channel throttles (429, then FREQUENCY_LIMITED) and then says SUCCESS, then the payment is PAID on the third attempt, on schedule', async () => {
      const p = await createDue([{ kind: 'throttled' }, { kind: 'error', status: 403, code: 'FREQUENCY_LIMITED' }, { kind: 'paid', total: 1999, transactionId: txId('wx-after-throttle') }]);
      await untilStatus(p.id, 'PAID');
      const calls = await callsOf(p.id);
      expect(calls.map((c) => c.answered)).toEqual(['429 FREQUENCY_LIMITED', '403 FREQUENCY_LIMITED', '200 SUCCESS']);
      const at = calls.map((c) => Date.parse(c.at));
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1000);
    });

    it('when a NOTPAY answer is changed to SUCCESS in transit, then it is not believed: the remedy retries and closes on the honest NOTPAY', async () => {
      const p = await createDue([{ kind: 'not_paid', tamper: 'body' }, { kind: 'not_paid' }]);
      await untilStatus(p.id, 'CLOSED');
      expect((await callsOf(p.id)).map((c) => c.op)).toEqual(['query', 'query', 'close']);
      const events = await eventsOf(db, [await internalIdOf(db, p.id)]);
      expect(events.map((e) => e.to_status)).toEqual(['PENDING', 'CLOSED']);
    });
  });

  describe('native notifications', () => {
    const notifyUrl = () => `${t.baseUrl}/v1/channels/wechatpay/notify`;
    async function pending(extra: Record<string, unknown> = {}) {
      const res = await createPayment(t.baseUrl, paymentBody({ channel: 'wechatpay', timeoutSeconds: 900, ...extra }));
      expect(res.status).toBe(201);
      return res.body as { id: string; amount: number };
    }
    interface Sent {
      status: number;
      body: string;
      sent: { url: string; headers: Record<string, string>; body: string };
    }
    const notify = async (outTradeNo: string, body: Record<string, unknown> = {}) => {
      const res = await request<Sent>(fake.url, 'POST', `/notify/${encodeURIComponent(outTradeNo)}`, { target: notifyUrl(), ...body });
      expect(res.status).toBe(200);
      return res.body;
    };
    const transitionsOf = async (id: string) => (await eventsOf(db, [await internalIdOf(db, id)])).map((e) => [e.from_status, e.to_status, e.cause]);

    it('when a valid TRANSACTION.SUCCESS arrives, then the payment is PAID once with 204 and no body, and the same notification again changes nothing', async () => {
      const p = await pending();
      const first = await notify(p.id, { total: p.amount, transactionId: txId('wx-notify-1') });
      expect([first.status, first.body]).toEqual([204, '']);
      const paid = (await getPayment(t.baseUrl, p.id)).body;
      expect([paid.status, paid.transactionId]).toEqual(['PAID', txId('wx-notify-1')]);
      // WeChat Pay repeats a notification until it is answered: the exact bytes again, within 300 s.
      const again = await request(t.baseUrl, 'POST', '/v1/channels/wechatpay/notify', first.sent.body, first.sent.headers);
      expect(again.status).toBe(204);
      expect(await transitionsOf(p.id)).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'PAID', 'callback'],
      ]);
    });

    it('when a captured notification is replayed more than 300 s after it was signed, then it is refused and nothing changes', async () => {
      // The service's own notify routes on a clock 301 s ahead: the replay, as the service sees it.
      const later = express().use(createChannelNotifyRoutes({ config, payments: t.app.payments, logger: createLogger({ level: 'error', stream: new PassThrough() }), now: () => Date.now() + 301_000 }));
      const server: Server = await new Promise((resolve) => {
        const s = later.listen(0, '127.0.0.1', () => resolve(s));
      });
      try {
        const p = await pending();
        const replayed = await notify(p.id, { total: p.amount, transactionId: txId('wx-replayed'), target: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/channels/wechatpay/notify` });
        expect([replayed.status, JSON.parse(replayed.body).code]).toEqual([401, 'FAIL']);
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created']]);
        // The same bytes on time are good: only their age was refused.
        expect((await request(t.baseUrl, 'POST', '/v1/channels/wechatpay/notify', replayed.sent.body, replayed.sent.headers)).status).toBe(204);
        expect((await getPayment(t.baseUrl, p.id)).body.status).toBe('PAID');
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it.each([
      ['signature', 401],
      ['probe', 401],
      ['serial', 401],
      ['stale', 401],
      ['body', 401],
      ['ciphertext', 400],
    ])('when the notification is spoiled (%s), then it answers %i FAIL and nothing changes', async (tamper, status) => {
      const p = await pending();
      const reply = await notify(p.id, { total: p.amount, tamper });
      expect(reply.status).toBe(status);
      expect(JSON.parse(reply.body)).toEqual({ code: 'FAIL', message: expect.any(String) });
      expect((await getPayment(t.baseUrl, p.id)).body.status).toBe('PENDING');
      expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created']]);
    });

    it('when a notification names no payment, another channel’s payment, or another merchant, then it answers FAIL and nothing changes', async () => {
      const unknown = await notify('pay_0000000000000000000000', { total: 1999 });
      expect([unknown.status, JSON.parse(unknown.body).code]).toEqual([404, 'FAIL']);

      const other = await createPayment(t.baseUrl, paymentBody({ channel: 'wechat' }));
      const otherChannel = await notify(other.body.id, { total: other.body.amount });
      expect(otherChannel.status).toBe(404);
      expect((await getPayment(t.baseUrl, other.body.id)).body.status).toBe('PENDING');

      const p = await pending();
      const otherMerchant = await notify(p.id, { total: p.amount, mchid: '1900000999' });
      expect(otherMerchant.status).toBe(400);
      expect((await getPayment(t.baseUrl, p.id)).body.status).toBe('PENDING');
    });

    it('when the notification pays another amount, then the mismatch is recorded, the payment stays PENDING and WeChat Pay is told to stop', async () => {
      const p = await pending();
      const reply = await notify(p.id, { total: p.amount - 1 });
      expect(reply.status).toBe(204);
      expect((await getPayment(t.baseUrl, p.id)).body.status).toBe('PENDING');
      expect(await transitionsOf(p.id)).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'PENDING', 'amount_mismatch'],
      ]);
    });

    it('when a SUCCESS arrives after the payment was closed, then it becomes PAID_AFTER_CLOSE', async () => {
      const res = await createPayment(t.baseUrl, paymentBody({ channel: 'wechatpay', timeoutSeconds: 1 }));
      const p = res.body as { id: string; amount: number };
      await script(p.id, { answers: [{ kind: 'not_paid' }] });
      await waitFor('the close', async () => ((await getPayment(t.baseUrl, p.id)).body.status === 'CLOSED' ? true : undefined), 15000, 50);
      const reply = await notify(p.id, { total: p.amount, transactionId: txId('wx-late-1') });
      expect(reply.status).toBe(204);
      const late = (await getPayment(t.baseUrl, p.id)).body;
      expect([late.status, late.transactionId]).toEqual(['PAID_AFTER_CLOSE', txId('wx-late-1')]);
    });

    it('when the checkout created the order with time_expire and the customer pays it, then WeChat Pay notifies and the payment is PAID; a closed order can no longer be paid', async () => {
      /** The checkout's side: the native order with out_trade_no = our id and time_expire = our expiresAt. */
      const createOrder = async (p: { id: string; amount: number; expiresAt: string }) => {
        const body = JSON.stringify({ appid: 'wxd678efh567hg6787', mchid: keys.mchid, description: 'test', out_trade_no: p.id, time_expire: p.expiresAt, notify_url: notifyUrl(), amount: { total: p.amount, currency: 'CNY' } });
        const path = '/v3/pay/transactions/native';
        const authorization = authorizationHeader({ mchid: keys.mchid, serialNo: keys.merchantSerialNo, privateKey: createPrivateKey(keys.merchantPrivateKey), method: 'POST', pathAndQuery: path, body });
        const res = await request(fake.url, 'POST', path, body, { authorization, accept: 'application/json', 'user-agent': 'test-checkout' });
        expect(res.status).toBe(200);
        expect(res.body.code_url).toMatch(/^weixin:\/\//);
      };
      const p = (await pending()) as { id: string; amount: number; expiresAt: string };
      await createOrder(p);
      const paid = await request(fake.url, 'POST', `/pay/${p.id}`, {});
      expect([paid.status, paid.body.notification.status]).toEqual([200, 204]);
      const settled = (await getPayment(t.baseUrl, p.id)).body;
      expect([settled.status, settled.transactionId]).toEqual(['PAID', paid.body.transactionId]);
      expect(await adapter().queryOrder({ ...resource(), id: p.id }, context)).toEqual({ status: 'PAID', transactionId: paid.body.transactionId, paidAmount: p.amount });

      const q = (await pending()) as { id: string; amount: number; expiresAt: string };
      await createOrder(q);
      await adapter().closeOrder({ ...resource(), id: q.id }, context);
      expect((await request(fake.url, 'POST', `/pay/${q.id}`, {})).status).toBe(400);
    });
  });
});
