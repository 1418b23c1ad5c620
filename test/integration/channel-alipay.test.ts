import type { Knex } from 'knex';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALIPAY_NOTIFY_MAX_AGE_MS, parseAlipayTime } from '../../src/channels/alipay/alipay-notify';
import { createAlipayAdapter, formatAlipayTime, yuanToMinorUnits } from '../../src/channels/alipay/alipay-adapter';
import type { RateLimiter } from '../../src/channels/rate-limiter';
import type { PaymentResource } from '../../src/payments/payment-resource';
import { generatePublicId } from '../../src/payments/payments-service';
import { createAlipayFakeApp, generateAlipayKeys, type AlipayFakeCall, type AlipayFakeTrade } from '../../src/simulator/alipay-fake';
import { createPayment, getPayment, paymentBody, request, txId } from '../helpers/api';
import { eventsOf, internalIdOf, openTestDatabase } from '../helpers/fixtures';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { createOutboundHttp } from '../../src/shared/outbound-http';
import { waitFor } from '../helpers/wait';

const APP_ID = '2021000000000001';
const keys = generateAlipayKeys();

interface TestAlipayFake {
  url: string;
  gateway: string;
  script(outTradeNo: string, answers: unknown[], closeAnswers?: unknown[]): Promise<void>;
  calls(outTradeNo: string): Promise<AlipayFakeCall[]>;
  trade(outTradeNo: string): Promise<AlipayFakeTrade | undefined>;
  notify(outTradeNo: string, body: Record<string, unknown>): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

/** The Alipay fake, in-process on a free loopback port, knowing the app's public key and signing with its own. */
async function startAlipayFake(): Promise<TestAlipayFake> {
  const server: Server = await new Promise((resolve) => {
    const s = createAlipayFakeApp({ appId: APP_ID, appPublicKey: keys.appPublicKey, alipayPrivateKey: keys.alipayPrivateKey }).listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const send = (method: string, path: string, body?: unknown) => fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return {
    url,
    gateway: `${url}/gateway.do`,
    async script(outTradeNo, answers, closeAnswers) {
      const res = await send('PUT', `/script/${outTradeNo}`, { answers, ...(closeAnswers ? { closeAnswers } : {}) });
      if (res.status !== 204) throw new Error(`script failed: ${res.status} ${await res.text()}`);
    },
    async calls(outTradeNo) {
      return ((await (await send('GET', `/calls?outTradeNo=${outTradeNo}`)).json()) as { calls: AlipayFakeCall[] }).calls;
    },
    async trade(outTradeNo) {
      const res = await send('GET', `/trades/${outTradeNo}`);
      return res.status === 404 ? undefined : ((await res.json()) as AlipayFakeTrade);
    },
    async notify(outTradeNo, body) {
      const res = await send('POST', `/notify/${outTradeNo}`, body);
      if (res.status !== 200) throw new Error(`notify failed: ${res.status} ${await res.text()}`);
      return (await res.json()) as { status: number; body: string };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function resource(fields: Partial<PaymentResource> = {}): PaymentResource {
  const at = new Date().toISOString();
  return { id: generatePublicId(), merchantId: 'm_1', orderId: 'o-1', amount: 1999, currency: 'CNY', channel: 'alipay', status: 'PENDING', createdAt: at, expiresAt: at, paidAt: null, closedAt: null, transactionId: null, ...fields };
}

const context = { attempt: 1 };
/** The outbound client the app gives channel adapters (loopback allowed, as outside production). */
const http = createOutboundHttp({ policy: { allowLoopback: true, allowPrivateHosts: [] }, maxResponseBytes: 16 * 1024 });

describe('Alipay channel: alipay-sdk against a protocol-faithful fake', () => {
  let fake: TestAlipayFake;
  beforeAll(async () => {
    fake = await startAlipayFake();
  });
  afterAll(async () => {
    await fake?.close();
  });

  function adapterWith(credentials: Record<string, string> = {}, limiter: RateLimiter = { take: async () => {} }) {
    return createAlipayAdapter({
      name: 'alipay',
      config: { type: 'alipay', gateway: fake.gateway, appId: APP_ID, timeoutMs: 1000, queriesPerSecond: 50 },
      http,
      credentials: { PRIVATE_KEY: keys.appPrivateKey, ALIPAY_PUBLIC_KEY: keys.alipayPublicKey, ...credentials },
      limiter,
    });
  }

  describe('the adapter', () => {
    it('when total_amount is a yuan string, then it is read in fen exactly, and anything that is not one is refused', () => {
      expect(yuanToMinorUnits('19.99')).toBe(1999);
      expect(yuanToMinorUnits('0.01')).toBe(1);
      expect(yuanToMinorUnits('0.1')).toBe(10);
      expect(yuanToMinorUnits('100')).toBe(10000);
      expect(yuanToMinorUnits('1.10')).toBe(110);
      expect(yuanToMinorUnits('4.35')).toBe(435); // 4.35 * 100 is 434.99999999999994 in floating point
      expect(yuanToMinorUnits('999999999999.99')).toBe(99999999999999);
      expect(yuanToMinorUnits(19.99)).toBe(1999);
      for (const bad of ['19.999', '-1', '1e3', '', ' 1', '01', '1.', '.5', '1,00', '1000000000000', null, undefined, Number.NaN]) {
        expect(yuanToMinorUnits(bad)).toBeUndefined();
      }
    });

    it('when Alipay says each trade_status, then it maps as the README says', async () => {
      const adapter = adapterWith();
      const cases: Array<[unknown, unknown]> = [
        [{ kind: 'paid', totalAmount: '19.99', tradeNo: '2026120122001400000000000001' }, { status: 'PAID', transactionId: '2026120122001400000000000001', paidAmount: 1999 }],
        [{ kind: 'paid', totalAmount: '19.99', tradeNo: '2026120122001400000000000002', finished: true }, { status: 'PAID', transactionId: '2026120122001400000000000002', paidAmount: 1999 }],
        [{ kind: 'waiting' }, { status: 'NOT_PAID' }],
        [{ kind: 'closed' }, { status: 'NOT_PAID' }],
        [{ kind: 'missing' }, { status: 'NOT_PAID', orderMissing: true }],
        [{ kind: 'status', tradeStatus: 'TRADE_PENDING' }, { status: 'UNKNOWN', reason: expect.stringContaining('TRADE_PENDING') }],
      ];
      for (const [answer, expected] of cases) {
        const payment = resource();
        await fake.script(payment.id, [answer]);
        expect(await adapter.queryOrder(payment, context)).toEqual(expected);
      }
    });

    it('when a payment is not in CNY, then a paid trade is UNKNOWN for a person, never PAID by fen of another currency', async () => {
      const payment = resource({ currency: 'USD' });
      await fake.script(payment.id, [{ kind: 'paid', totalAmount: '19.99' }]);
      expect(await adapterWith().queryOrder(payment, context)).toEqual({ status: 'UNKNOWN', reason: expect.stringContaining('CNY') });
    });

    it('when the app signs a request, then the fake verifies it; with another key the fake refuses it and the adapter throws', async () => {
      const payment = resource();
      await adapterWith().queryOrder(payment, context);
      const [call] = await fake.calls(payment.id);
      expect([call?.method, call?.signed, call?.appId]).toEqual(['alipay.trade.query', true, APP_ID]);
      // Beijing time whatever the process's time zone (the SDK alone would write local time).
      expect(Math.abs(parseAlipayTime(call?.timestamp ?? undefined)! - Date.now())).toBeLessThan(60_000);

      const stranger = generateAlipayKeys().appPrivateKey;
      await expect(adapterWith({ PRIVATE_KEY: stranger }).queryOrder(payment, context)).rejects.toThrow(/40002 isv\.invalid-signature/);
      const last = (await fake.calls(payment.id)).pop();
      expect([last?.signed, last?.answered]).toEqual([false, 'isv.invalid-signature']);
    });

    it('when an answer is altered after Alipay signed it, or signed by another key, then the adapter refuses it', async () => {
      const payment = resource();
      await fake.script(payment.id, [{ kind: 'paid', totalAmount: '19.99', tamper: true }]);
      await expect(adapterWith().queryOrder(payment, context)).rejects.toThrow(/signature did not verify/);
      await fake.script(payment.id, [{ kind: 'closed', forge: true }]);
      await expect(adapterWith().queryOrder(payment, context)).rejects.toThrow(/signature did not verify/);
      // A second response object after the sign (JSON.parse keeps the last one) is not believed:
      // only the signed text is read.
      const smuggled = resource();
      await fake.script(smuggled.id, [{ kind: 'paid', totalAmount: '19.99', tradeNo: '2026120122001400000000000003', smuggle: true }]);
      expect(await adapterWith().queryOrder(smuggled, context)).toEqual({ status: 'PAID', transactionId: '2026120122001400000000000003', paidAmount: 1999 });
      await fake.script(smuggled.id, [{ kind: 'closed', smuggle: true }]);
      expect(await adapterWith().queryOrder(smuggled, context)).toEqual({ status: 'NOT_PAID' });
      // A close's answer too.
      const closing = resource();
      await fake.script(closing.id, [{ kind: 'waiting' }], [{ kind: 'normal', tamper: true }]);
      expect(await adapterWith().queryOrder(closing, context)).toEqual({ status: 'NOT_PAID' });
      await expect(adapterWith().closeOrder(closing, context)).rejects.toThrow(/alipay\.trade\.close: the answer's signature did not verify/);
    });

    it('when Alipay throttles, errors or is slow, then the adapter throws so the worker retries', async () => {
      const adapter = adapterWith();
      const cases: Array<[unknown, RegExp]> = [
        [{ kind: 'error', status: 503 }, /HTTP 503/],
        [{ kind: 'error', status: 500 }, /HTTP 500/],
        [{ kind: 'throttled' }, /HTTP 429/],
        [{ kind: 'system_error' }, /20000 aop\.ACQ\.SYSTEM_ERROR/],
        [{ kind: 'system_error', code: '40004', subCode: 'ACQ.SYSTEM_ERROR' }, /40004 ACQ\.SYSTEM_ERROR/],
        [{ kind: 'slow', ms: 1500 }, /no answer within 1000 ms/],
      ];
      for (const [answer, error] of cases) {
        const payment = resource();
        await fake.script(payment.id, [answer]);
        await expect(adapter.queryOrder(payment, context)).rejects.toThrow(error);
      }
    });

    it('when the gateway is not listening, then the adapter throws a network error, which the worker retries', async () => {
      const adapter = createAlipayAdapter({
        name: 'alipay',
        config: { type: 'alipay', gateway: 'http://127.0.0.1:9/gateway.do', appId: APP_ID, timeoutMs: 500, queriesPerSecond: 50 },
        http,
        credentials: { PRIVATE_KEY: keys.appPrivateKey, ALIPAY_PUBLIC_KEY: keys.alipayPublicKey },
        limiter: { take: async () => {} },
      });
      await expect(adapter.queryOrder(resource(), context)).rejects.toMatchObject({ name: 'OutboundError', kind: 'network', message: expect.stringMatching(/ECONNREFUSED/) });
    });

    it('when a trade is waiting, then close closes it; closing it again (a repeat after a crash) is success', async () => {
      const adapter = adapterWith();
      const payment = resource();
      await fake.script(payment.id, [{ kind: 'waiting' }]);
      expect(await adapter.queryOrder(payment, context)).toEqual({ status: 'NOT_PAID' });
      await adapter.closeOrder(payment, context);
      expect((await fake.trade(payment.id))?.status).toBe('TRADE_CLOSED');
      await adapter.closeOrder(payment, context);
      expect((await fake.calls(payment.id)).map((c) => [c.method, c.answered])).toEqual([
        ['alipay.trade.query', 'WAIT_BUYER_PAY'],
        ['alipay.trade.close', 'Success'],
        ['alipay.trade.close', 'ACQ.TRADE_STATUS_ERROR'],
        ['alipay.trade.query', 'TRADE_CLOSED'],
      ]);
    });

    it('when the buyer pays between the query and the close, then the close throws instead of succeeding', async () => {
      const payment = resource();
      await fake.script(payment.id, [{ kind: 'waiting', paidBeforeClose: true }, { kind: 'paid', totalAmount: '19.99' }]);
      const adapter = adapterWith();
      expect(await adapter.queryOrder(payment, context)).toEqual({ status: 'NOT_PAID' });
      await expect(adapter.closeOrder(payment, context)).rejects.toThrow(/refused: the trade is TRADE_SUCCESS/);
      expect((await fake.trade(payment.id))?.status).toBe('TRADE_SUCCESS');
    });

    it('when there is no trade, then close is success; when the query found the trade closed, close calls nobody', async () => {
      const adapter = adapterWith();
      const missing = resource();
      await adapter.closeOrder(missing, context);
      expect((await fake.calls(missing.id)).map((c) => c.answered)).toEqual(['ACQ.TRADE_NOT_EXIST']);

      const closed = resource();
      await fake.script(closed.id, [{ kind: 'closed' }]);
      expect(await adapter.queryOrder(closed, context)).toEqual({ status: 'NOT_PAID' });
      await adapter.closeOrder(closed, context);
      expect((await fake.calls(closed.id)).map((c) => c.method)).toEqual(['alipay.trade.query']);
    });

    it('when the adapter calls Alipay, then it takes the limiter before every request', async () => {
      let taken = 0;
      const adapter = adapterWith({}, { take: async () => void taken++ });
      const payment = resource();
      await fake.script(payment.id, [{ kind: 'paid', totalAmount: '19.99' }]);
      await adapter.queryOrder(payment, context);
      await expect(adapter.closeOrder(payment, context)).rejects.toThrow(); // close refused, then one more query
      expect([taken, (await fake.calls(payment.id)).length]).toEqual([3, 3]);
    });

    it('when the keys come as the bare base64 Alipay tools write (PKCS#1 or PKCS#8, SPKI), then they work; a bad key fails naming its variable', async () => {
      const bare = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, '');
      const pkcs1 = createPrivateKey(keys.appPrivateKey).export({ format: 'der', type: 'pkcs1' }).toString('base64');
      const spki = bare(createPublicKey(keys.alipayPublicKey).export({ format: 'pem', type: 'spki' }) as string);
      for (const privateKey of [pkcs1, bare(keys.appPrivateKey)]) {
        const payment = resource();
        await adapterWith({ PRIVATE_KEY: privateKey, ALIPAY_PUBLIC_KEY: spki }).queryOrder(payment, context);
        expect((await fake.calls(payment.id))[0]?.signed).toBe(true);
      }
      expect(() => adapterWith({ PRIVATE_KEY: 'not a key' })).toThrow(/CHANNEL_ALIPAY_PRIVATE_KEY/);
      expect(() => adapterWith({ ALIPAY_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' })).toThrow(/CHANNEL_ALIPAY_ALIPAY_PUBLIC_KEY/);
    });
  });

  describe('through the service, on the real stack', () => {
    let config: ReturnType<typeof testConfig>;
    let t: TestApp;
    let db: Knex;
    let notifyUrl: string;
    const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

    beforeAll(async () => {
      // Credentials only from the environment, as in production.
      process.env.CHANNEL_ALIPAY_PRIVATE_KEY = keys.appPrivateKey;
      process.env.CHANNEL_ALIPAY_ALIPAY_PUBLIC_KEY = keys.alipayPublicKey;
      config = testConfig({ channels: { alipay: { timeoutSeconds: 900, adapter: { type: 'alipay', gateway: fake.gateway, appId: APP_ID, timeoutMs: 1000 } } } });
      t = await startTestApp(config);
      db = openTestDatabase(config);
      notifyUrl = `${t.baseUrl}/v1/channels/alipay/notify`;
    });
    afterAll(async () => {
      await t?.stop();
      await db?.destroy();
      if (config) await deleteTestTopology(config);
      delete process.env.CHANNEL_ALIPAY_PRIVATE_KEY;
      delete process.env.CHANNEL_ALIPAY_ALIPAY_PUBLIC_KEY;
    });

    /** A payment on the alipay channel, due in `seconds`, with the fake scripted for it at once. */
    async function createDue(seconds: number, answers?: unknown[], closeAnswers?: unknown[], channel = 'alipay') {
      const res = await createPayment(t.baseUrl, paymentBody({ channel, timeoutSeconds: seconds }));
      expect(res.status).toBe(201);
      const p = res.body as { id: string; expiresAt: string; amount: number };
      if (answers) await fake.script(p.id, answers, closeAnswers);
      return p;
    }
    const statusOf = async (id: string) => (await getPayment(t.baseUrl, id)).body;
    const untilStatus = (id: string, status: string, ms = 15000) =>
      waitFor(`${id} to be ${status}`, async () => {
        const p = await statusOf(id);
        return p.status === status ? p : undefined;
      }, ms, 50);
    const transitionsOf = async (id: string) => (await eventsOf(db, [await internalIdOf(db, id)])).map((e) => [e.from_status, e.to_status, e.cause]);

    describe('the remedy', () => {
      it('when Alipay says TRADE_SUCCESS at the deadline, then the payment becomes PAID with the trade_no, and nothing is closed', async () => {
        const tradeNo = txId('ali-remedy-paid');
        const p = await createDue(2, [{ kind: 'paid', totalAmount: '19.99', tradeNo }]);
        const paid = await untilStatus(p.id, 'PAID');
        expect(paid.transactionId).toBe(tradeNo);
        expect((await fake.calls(p.id)).map((c) => [c.method, c.signed])).toEqual([['alipay.trade.query', true]]);
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created'], ['PENDING', 'PAID', 'remedy']]);
      });

      it('when Alipay says TRADE_FINISHED, then the payment becomes PAID', async () => {
        const tradeNo = txId('ali-remedy-finished');
        const p = await createDue(2, [{ kind: 'paid', totalAmount: '19.99', tradeNo, finished: true }]);
        expect((await untilStatus(p.id, 'PAID')).transactionId).toBe(tradeNo);
      });

      it('when Alipay says WAIT_BUYER_PAY, then the trade is closed at Alipay and the payment becomes CLOSED', async () => {
        const p = await createDue(2, [{ kind: 'waiting' }]);
        await untilStatus(p.id, 'CLOSED');
        expect((await fake.calls(p.id)).map((c) => [c.method, c.answered, c.signed])).toEqual([
          ['alipay.trade.query', 'WAIT_BUYER_PAY', true],
          ['alipay.trade.close', 'Success', true],
        ]);
        expect((await fake.trade(p.id))?.status).toBe('TRADE_CLOSED');
      });

      it('when there is no trade at Alipay (ACQ.TRADE_NOT_EXIST), then the payment is NOT_PAID and becomes CLOSED', async () => {
        const p = await createDue(2, [{ kind: 'missing' }]);
        await untilStatus(p.id, 'CLOSED');
        expect((await fake.calls(p.id)).map((c) => [c.method, c.answered])).toEqual([
          ['alipay.trade.query', 'ACQ.TRADE_NOT_EXIST'],
          ['alipay.trade.close', 'ACQ.TRADE_NOT_EXIST'],
        ]);
      });

      it('when Alipay already closed the trade (TRADE_CLOSED), then the payment becomes CLOSED without a close call', async () => {
        const p = await createDue(2, [{ kind: 'closed' }]);
        await untilStatus(p.id, 'CLOSED');
        expect((await fake.calls(p.id)).map((c) => c.method)).toEqual(['alipay.trade.query']);
      });

      it('when the buyer pays between the query and the close, then the payment is never CLOSED: it is retried and becomes PAID', async () => {
        const tradeNo = txId('ali-remedy-race');
        const p = await createDue(2, [{ kind: 'waiting', paidBeforeClose: true }, { kind: 'paid', totalAmount: '19.99', tradeNo }]);
        expect((await untilStatus(p.id, 'PAID')).transactionId).toBe(tradeNo);
        expect((await fake.calls(p.id)).map((c) => [c.method, c.answered])).toEqual([
          ['alipay.trade.query', 'WAIT_BUYER_PAY'],
          ['alipay.trade.close', 'ACQ.TRADE_STATUS_ERROR'],
          ['alipay.trade.query', 'TRADE_SUCCESS'],
          ['alipay.trade.query', 'TRADE_SUCCESS'],
        ]);
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created'], ['PENDING', 'PAID', 'remedy']]);
      });

      it('when Alipay answers a trade_status this adapter does not act on, then it is never closed and is asked again on the schedule until parked', async () => {
        const p = await createDue(2, [{ kind: 'status', tradeStatus: 'TRADE_PENDING' }]);
        const item = await waitFor('the payment to be parked', async () => {
          const res = await request(t.baseUrl, 'GET', '/v1/admin/parked?limit=100&purpose=compensation', undefined, admin);
          return (res.body.items as Array<{ paymentId: string; reason: string; attempts: number; lastError: string }>).find((i) => i.paymentId === p.id);
        }, 20000, 200);
        expect([item.reason, item.attempts]).toEqual(['retries_exhausted', config.retry.remedy.length + 1]);
        expect(item.lastError).toMatch(/TRADE_PENDING/);
        const calls = await fake.calls(p.id);
        expect(calls.map((c) => c.method)).toEqual(Array(config.retry.remedy.length + 1).fill('alipay.trade.query'));
        expect((await statusOf(p.id)).status).toBe('PENDING');
      });

      it('when Alipay errors (5xx) and then throttles (429), then the payment closes on the third attempt, each retry on the schedule', async () => {
        const p = await createDue(2, [{ kind: 'error', status: 503 }, { kind: 'throttled' }, { kind: 'missing' }]);
        await untilStatus(p.id, 'CLOSED');
        const queries = (await fake.calls(p.id)).filter((c) => c.method === 'alipay.trade.query');
        expect(queries.map((q) => q.answered)).toEqual(['error', 'throttled', 'ACQ.TRADE_NOT_EXIST']);
        const at = queries.map((q) => Date.parse(q.at));
        expect(at[0]!).toBeGreaterThanOrEqual(Date.parse(p.expiresAt));
        // The test schedule is [1, 1, 2] seconds: each retry is due no earlier than 1 s after the failure.
        expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
        expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(1000);
        const failures = t.logs.filter((l) => l.includes('"channel call failed"') && l.includes(p.id));
        expect(failures).toEqual([expect.stringMatching(/HTTP 503/), expect.stringMatching(/HTTP 429/)]);
      });

      it('when Alipay answers aop.ACQ.SYSTEM_ERROR and then ACQ.SYSTEM_ERROR, then the payment is asked again and becomes PAID on the third attempt', async () => {
        const tradeNo = txId('ali-remedy-system-error');
        const p = await createDue(2, [{ kind: 'system_error' }, { kind: 'system_error', code: '40004', subCode: 'ACQ.SYSTEM_ERROR' }, { kind: 'paid', totalAmount: '19.99', tradeNo }]);
        expect((await untilStatus(p.id, 'PAID')).transactionId).toBe(tradeNo);
        expect((await fake.calls(p.id)).map((c) => c.answered)).toEqual(['aop.ACQ.SYSTEM_ERROR', 'ACQ.SYSTEM_ERROR', 'TRADE_SUCCESS']);
      });

      it('when the close fails at Alipay, then it is retried on the schedule and closes', async () => {
        const p = await createDue(2, [{ kind: 'waiting' }], [{ kind: 'error', status: 502 }, { kind: 'normal' }]);
        await untilStatus(p.id, 'CLOSED');
        expect((await fake.calls(p.id)).map((c) => [c.method, c.answered])).toEqual([
          ['alipay.trade.query', 'WAIT_BUYER_PAY'],
          ['alipay.trade.close', 'error'],
          ['alipay.trade.query', 'WAIT_BUYER_PAY'],
          ['alipay.trade.close', 'Success'],
        ]);
      });

      it('when a paid answer is altered in transit to say TRADE_CLOSED, then it is refused, nothing is closed, and the next attempt pays', async () => {
        const tradeNo = txId('ali-remedy-tampered');
        const p = await createDue(2, [{ kind: 'paid', totalAmount: '19.99', tradeNo, tamper: true }, { kind: 'paid', totalAmount: '19.99', tradeNo }]);
        expect((await untilStatus(p.id, 'PAID')).transactionId).toBe(tradeNo);
        expect((await fake.calls(p.id)).map((c) => c.method)).toEqual(['alipay.trade.query', 'alipay.trade.query']);
      });
    });

    describe('native notifications', () => {
      const paid = (tradeNo: string, extra: Record<string, unknown> = {}) => ({ url: notifyUrl, tradeStatus: 'TRADE_SUCCESS', totalAmount: '19.99', tradeNo, ...extra });

      it('when a valid TRADE_SUCCESS arrives, then the payment becomes PAID once and the answer is success; again, nothing more changes', async () => {
        const p = await createDue(900);
        const tradeNo = txId('ali-notify-1');
        expect(await fake.notify(p.id, paid(tradeNo))).toEqual({ status: 200, body: 'success' });
        const after = await statusOf(p.id);
        expect([after.status, after.transactionId]).toEqual(['PAID', tradeNo]);
        expect(await fake.notify(p.id, paid(tradeNo))).toEqual({ status: 200, body: 'success' });
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created'], ['PENDING', 'PAID', 'callback']]);
      });

      it('when TRADE_FINISHED arrives for a payment paid by TRADE_SUCCESS (the end of the refund period), then it is a no-op answered success', async () => {
        const p = await createDue(900);
        const tradeNo = txId('ali-notify-finished');
        expect((await fake.notify(p.id, paid(tradeNo))).body).toBe('success');
        expect((await fake.notify(p.id, paid(tradeNo, { tradeStatus: 'TRADE_FINISHED' }))).body).toBe('success');
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created'], ['PENDING', 'PAID', 'callback']]);
      });

      it('when the signature is bad (signed by another key, or a field altered after signing), then nothing changes and the answer is fail', async () => {
        const p = await createDue(900);
        expect(await fake.notify(p.id, paid(txId('ali-notify-forged'), { forge: true }))).toEqual({ status: 400, body: 'fail' });
        expect((await fake.notify(p.id, paid(txId('ali-notify-tampered'), { tamper: true }))).body).toBe('fail');
        expect((await statusOf(p.id)).status).toBe('PENDING');
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created']]);
      });

      it('when a notification is replayed after the freshness bound, then nothing changes and the answer is fail; a retry within it is accepted', async () => {
        const p = await createDue(900);
        const tradeNo = txId('ali-notify-stale');
        expect((await fake.notify(p.id, paid(tradeNo, { notifyTimeMs: Date.now() - ALIPAY_NOTIFY_MAX_AGE_MS - 60_000 }))).body).toBe('fail');
        expect((await fake.notify(p.id, paid(tradeNo, { notifyTimeMs: Date.now() + 10 * 60_000 }))).body).toBe('fail');
        expect((await statusOf(p.id)).status).toBe('PENDING');
        // Alipay's last retry comes about 24h24m after the first.
        expect((await fake.notify(p.id, paid(tradeNo, { notifyTimeMs: Date.now() - (24 * 60 + 24) * 60_000 }))).body).toBe('success');
        expect((await statusOf(p.id)).status).toBe('PAID');
      });

      it('when the order is unknown, or a payment of another channel, or the app_id is another app, then nothing changes and the answer is fail', async () => {
        expect((await fake.notify(generatePublicId(), paid(txId('ali-notify-unknown')))).body).toBe('fail');
        const other = await createDue(900, undefined, undefined, 'wechat');
        expect((await fake.notify(other.id, paid(txId('ali-notify-other-channel')))).body).toBe('fail');
        expect((await statusOf(other.id)).status).toBe('PENDING');
        const p = await createDue(900);
        expect((await fake.notify(p.id, paid(txId('ali-notify-other-app'), { appId: '2021000000009999' }))).body).toBe('fail');
        expect((await statusOf(p.id)).status).toBe('PENDING');
      });

      it('when a SUCCESS arrives after the payment was closed, then it becomes PAID_AFTER_CLOSE', async () => {
        const p = await createDue(2, [{ kind: 'waiting' }]);
        await untilStatus(p.id, 'CLOSED');
        const tradeNo = txId('ali-notify-late');
        expect((await fake.notify(p.id, paid(tradeNo))).body).toBe('success');
        const late = await statusOf(p.id);
        expect([late.status, late.transactionId]).toEqual(['PAID_AFTER_CLOSE', tradeNo]);
        expect((await transitionsOf(p.id)).pop()).toEqual(['CLOSED', 'PAID_AFTER_CLOSE', 'late_callback']);
      });

      it('when the paid amount differs, then the mismatch is recorded, the payment stays PENDING, and Alipay is told success so it stops', async () => {
        const p = await createDue(900);
        expect((await fake.notify(p.id, paid(txId('ali-notify-mismatch'), { totalAmount: '19.98' }))).body).toBe('success');
        expect((await statusOf(p.id)).status).toBe('PENDING');
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created'], ['PENDING', 'PENDING', 'amount_mismatch']]);
      });

      it('when WAIT_BUYER_PAY or TRADE_CLOSED arrives, then nothing changes and the answer is success', async () => {
        const p = await createDue(900);
        expect((await fake.notify(p.id, { url: notifyUrl, tradeStatus: 'TRADE_CLOSED' })).body).toBe('success');
        expect((await fake.notify(p.id, { url: notifyUrl, tradeStatus: 'WAIT_BUYER_PAY' })).body).toBe('success');
        expect(await transitionsOf(p.id)).toEqual([[null, 'PENDING', 'created']]);
      });

      it('when the body is not a form, or a field is repeated, then the answer is fail', async () => {
        const p = await createDue(900);
        const json = await request(t.baseUrl, 'POST', '/v1/channels/alipay/notify', { out_trade_no: p.id, trade_status: 'TRADE_SUCCESS' });
        expect([json.status, json.body]).toEqual([400, 'fail']);
        const repeated = await request(t.baseUrl, 'POST', '/v1/channels/alipay/notify', `out_trade_no=${p.id}&out_trade_no=${p.id}&sign_type=RSA2`, { 'content-type': 'application/x-www-form-urlencoded' });
        expect([repeated.status, repeated.body]).toEqual([400, 'fail']);
        expect((await statusOf(p.id)).status).toBe('PENDING');
      });
    });
  });
});

describe('Alipay times', () => {
  it('when notify_time is Beijing time, then it reads as the instant it names, and a date that does not exist is refused', () => {
    expect(parseAlipayTime('2026-12-01 20:00:00')).toBe(Date.parse('2026-12-01T12:00:00Z'));
    expect(parseAlipayTime(formatAlipayTime(Date.parse('2026-03-01T00:00:05Z')))).toBe(Date.parse('2026-03-01T00:00:05Z'));
    for (const bad of ['2026-02-30 10:00:00', '2026-12-01T20:00:00', '2026-12-01 20:00', '', undefined]) expect(parseAlipayTime(bad)).toBeUndefined();
  });
});
