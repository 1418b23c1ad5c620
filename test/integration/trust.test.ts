import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { createDelayScheduler } from '../../src/delay/delay-scheduler';
import { DESTINATIONS } from '../../src/messaging/topology';
import { createSecretBox } from '../../src/merchants/merchant-credentials';
import { signGatewayRequest } from '../../src/shared/gateway-signature';
import { paymentBody, registerMerchant, request, sendCallback, txId, type TestMerchant } from '../helpers/api';
import { eventsOf, internalIdOf } from '../helpers/fixtures';
import { TEST_ADMIN_TOKEN, testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

interface Delivery {
  body: string;
  headers: IncomingMessage['headers'];
}

describe('trust: every request belongs to a merchant and proves it', () => {
  // A short rotation overlap, so a test can watch the old secret stop signing; keys cached as deployed.
  const config = testConfig({ notifications: { secretRotationOverlapSeconds: 2 }, http: { apiKeyCacheMs: 2000 } });
  const suite = useTestApp(config);
  let receiver: Server;
  let receiverUrl: string;
  const deliveries = new Map<string, Delivery[]>();
  let shopX: TestMerchant;
  let shopY: TestMerchant;

  beforeAll(async () => {
    // The merchants' endpoint: keeps every notification by payment id.
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const id = (JSON.parse(body) as { payment: { id: string } }).payment.id;
        deliveries.set(id, [...(deliveries.get(id) ?? []), { body, headers: req.headers }]);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    shopX = await registerMerchant(suite.t.baseUrl, { notifyUrl: receiverUrl });
    shopY = await registerMerchant(suite.t.baseUrl, { notifyUrl: receiverUrl });
  });
  afterAll(async () => {
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  });

  const create = (merchant: TestMerchant, overrides: Record<string, unknown> = {}) => request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(overrides), merchant.auth);
  async function created(merchant: TestMerchant, overrides: Record<string, unknown> = {}): Promise<Record<string, any>> {
    const res = await create(merchant, overrides);
    expect(res.status).toBe(201);
    return res.body;
  }
  const read = (merchant: TestMerchant, id: string) => request(suite.t.baseUrl, 'GET', `/v1/payments/${id}`, undefined, merchant.auth);
  const eventsFor = async (publicId: string) => eventsOf(suite.db, [await internalIdOf(suite.db, publicId)]);
  const postCallback = (id: string, raw: string, signature: string) => request(suite.t.baseUrl, 'POST', `/v1/payments/${id}/callback`, raw, { 'x-signature': signature });

  describe('callbacks are bound to their payment and a time', () => {
    it('when a callback signed for payment A is posted to payment B, then it answers 401 and B is unchanged', async () => {
      const a = await created(shopX, { amount: 500 });
      const b = await created(shopX, { amount: 500 });
      const raw = JSON.stringify({ result: 'SUCCESS', transactionId: txId('bound-a'), paidAmount: 500 });
      const res = await postCallback(b.id, raw, signGatewayRequest('dev-secret-wechat', a.id, raw));
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      expect((await read(shopX, b.id)).body).toEqual(b);
      expect((await eventsFor(b.id)).map((e) => e.cause)).toEqual(['created']);
      // The same bytes signed for A still pay A: the signature was good, just not for B.
      expect((await postCallback(a.id, raw, signGatewayRequest('dev-secret-wechat', a.id, raw))).body.status).toBe('PAID');
    });

    it('when a FAILED callback observed for one payment is replayed to another, then it answers 401 and nothing fails', async () => {
      const a = await created(shopX);
      const b = await created(shopX);
      const raw = JSON.stringify({ result: 'FAILED' });
      const signature = signGatewayRequest('dev-secret-wechat', a.id, raw);
      expect((await postCallback(a.id, raw, signature)).body.status).toBe('FAILED');
      expect((await postCallback(b.id, raw, signature)).status).toBe(401);
      expect((await read(shopX, b.id)).body.status).toBe('PENDING');
    });

    it.each([
      ['301 s old', -301_000],
      // t is whole seconds: signed 301 s ahead, it reads as 300 s if the server's clock ticks over
      // a second in between; 302 s is past the window however the request's time falls.
      ['302 s in the future', 302_000],
    ])('when t is %s, then it answers 401 and nothing changes; 299 s old is still accepted', async (_name, offsetMs) => {
      const p = await created(shopX);
      const raw = JSON.stringify({ result: 'SUCCESS', transactionId: txId(`stale-${offsetMs}`), paidAmount: p.amount });
      const res = await postCallback(p.id, raw, signGatewayRequest('dev-secret-wechat', p.id, raw, Date.now() + offsetMs));
      expect(res.status).toBe(401);
      expect(res.body.error.message).toMatch(/300 s/);
      expect((await eventsFor(p.id)).map((e) => e.cause)).toEqual(['created']);
      const fresh = await postCallback(p.id, raw, signGatewayRequest('dev-secret-wechat', p.id, raw, Date.now() - 299_000));
      expect(fresh.body.status).toBe('PAID');
    });

    it.each([
      ['empty', ''],
      ['no t', `v1=${'a'.repeat(64)}`],
      ['no v1', `t=${Math.floor(Date.now() / 1000)}`],
      ['a t that is not a number', `t=soon,v1=${'a'.repeat(64)}`],
      ['two t', `t=1,t=2,v1=${'a'.repeat(64)}`],
      ['upper-case hex', (id: string, raw: string) => signGatewayRequest('dev-secret-wechat', id, raw).toUpperCase()],
      ['a signature with a stray =', (id: string, raw: string) => `${signGatewayRequest('dev-secret-wechat', id, raw)}=`],
    ])('when the header is malformed (%s), then it answers 401 and nothing changes', async (_name, header) => {
      const p = await created(shopX);
      const raw = JSON.stringify({ result: 'FAILED' });
      const res = await postCallback(p.id, raw, typeof header === 'string' ? header : header(p.id, raw));
      expect(res.status).toBe(401);
      expect((await read(shopX, p.id)).body.status).toBe('PENDING');
    });

    it('when a transaction id already paid another payment, then a second payment answers 409, stays PENDING, and the conflict is in payment_events', async () => {
      const first = await created(shopX);
      const second = await created(shopX);
      const callback = { result: 'SUCCESS', transactionId: txId('shared-tx'), paidAmount: 1999 };
      expect((await sendCallback(suite.t.baseUrl, first.id, callback)).body.status).toBe('PAID');
      const res = await sendCallback(suite.t.baseUrl, second.id, callback);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 409, code: 'CONFLICT' });
      expect(JSON.stringify(res.body)).not.toContain(first.id);
      expect((await read(shopX, second.id)).body).toEqual(second);
      const events = await eventsFor(second.id);
      expect(events.map((e) => [e.from_status, e.to_status, e.cause])).toEqual([
        [null, 'PENDING', 'created'],
        ['PENDING', 'PENDING', 'callback_conflict'],
      ]);
    });

    it('when two payments race for one transaction id, then exactly one is paid and the other records the conflict', async () => {
      const ps = await Promise.all([created(shopX), created(shopX)]);
      const callback = { result: 'SUCCESS', transactionId: txId('raced-tx'), paidAmount: 1999 };
      const answers = await Promise.all(ps.map((p) => sendCallback(suite.t.baseUrl, p.id, callback)));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
      const statuses = await Promise.all(ps.map(async (p) => (await read(shopX, p.id)).body.status));
      expect(statuses.sort()).toEqual(['PAID', 'PENDING']);
    });
  });

  describe('intake needs a merchant key, and the merchant comes from the key', () => {
    it('when a create has no key, then it answers 401 and creates nothing', async () => {
      const body = paymentBody();
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', body);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      expect(await suite.db('payments').where({ order_id: body.orderId }).count({ n: '*' })).toEqual([{ n: 0 }]);
    });

    it('when a key is revoked, then it answers 401 at once, and the merchant\'s other keys still work', async () => {
      const shop = await registerMerchant(suite.t.baseUrl);
      const second = await request(suite.t.baseUrl, 'POST', `/v1/admin/merchants/${shop.merchantId}/api-keys`, undefined, admin);
      expect(second.status).toBe(201);
      expect(second.body.key).toMatch(/^sk_/);
      expect((await create(shop)).status).toBe(201);
      expect((await request(suite.t.baseUrl, 'DELETE', `/v1/admin/merchants/${shop.merchantId}/api-keys/${shop.apiKey.id}`, undefined, admin)).status).toBe(204);
      const revoked = await create(shop);
      expect({ status: revoked.status, code: revoked.body.error.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), { authorization: `Bearer ${second.body.key}` })).status).toBe(201);
      // Revoking it again is a 404: there is no live key by that id.
      expect((await request(suite.t.baseUrl, 'DELETE', `/v1/admin/merchants/${shop.merchantId}/api-keys/${shop.apiKey.id}`, undefined, admin)).status).toBe(404);
    });

    it('when another process revokes a key this one has just used, then this one takes it for at most http.apiKeyCacheMs more, then answers 401', async () => {
      const shop = await registerMerchant(suite.t.baseUrl);
      expect((await create(shop)).status).toBe(201);
      // Another replica's revoke (or the CLI's): the row changes, and this process is not told.
      await suite.db('merchant_api_keys').where({ id: shop.apiKey.id }).update({ revoked_at: new Date() });
      const revokedAt = Date.now();
      expect((await create(shop)).status).toBe(201); // the cached key, well within its 2 s
      await waitFor('the revoked key to answer 401', async () => (await create(shop)).status === 401, 15000, 50);
      expect(Date.now() - revokedAt).toBeLessThan(config.http.apiKeyCacheMs + 1500);
      // And a rejected key is never cached: it is asked about again (and still refused).
      expect((await create(shop)).status).toBe(401);
    });

    it.each([
      ['an unknown key', `Bearer sk_${'Z'.repeat(43)}`],
      ['a key of the wrong shape', 'Bearer hunter2'],
      ['basic auth', 'Basic dXNlcjpwYXNz'],
    ])('when the key is %s, then it answers 401', async (_name, authorization) => {
      expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), { authorization })).status).toBe(401);
      expect((await request(suite.t.baseUrl, 'GET', '/v1/payments/pay_0000000000000000000000', undefined, { authorization })).status).toBe(401);
    });

    it('when merchant X\'s key names merchant Y, then it answers 403 FORBIDDEN and creates nothing', async () => {
      const body = paymentBody({ merchantId: shopY.merchantId });
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', body, shopX.auth);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
      expect(await suite.db('payments').where({ order_id: body.orderId }).count({ n: '*' })).toEqual([{ n: 0 }]);
    });

    it('when a merchant\'s key creates without merchantId, then the payment belongs to the key\'s merchant', async () => {
      const p = await created(shopX);
      expect(p.merchantId).toBe(shopX.merchantId);
    });

    it('when merchant X reads merchant Y\'s payment, then it answers 404, exactly as for an unknown id', async () => {
      const ofY = await created(shopY);
      const res = await read(shopX, ofY.id);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
      expect((await read(shopY, ofY.id)).body).toEqual(ofY);
    });

    it('when an order repeats with another body, then the 409 names no payment id', async () => {
      const body = paymentBody();
      const first = await request(suite.t.baseUrl, 'POST', '/v1/payments', body, shopX.auth);
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', { ...body, amount: 1 }, shopX.auth);
      expect(res.status).toBe(409);
      expect(JSON.stringify(res.body)).not.toContain(first.body.id);
      expect(JSON.stringify(res.body)).not.toMatch(/pay_[0-9A-Za-z]{22}/);
    });

    it('when notifyUrl has another origin than the registered one, then it answers 400; the same origin with another path is accepted', async () => {
      const origin = new URL(receiverUrl).origin;
      for (const other of ['https://attacker.example/hooks', `${origin.replace('http:', 'https:')}/hooks`, `http://localhost:${new URL(receiverUrl).port}/hooks`]) {
        const res = await create(shopX, { notifyUrl: other });
        expect({ url: other, status: res.status, path: res.body.error?.details?.[0]?.path }).toEqual({ url: other, status: 400, path: 'notifyUrl' });
      }
      expect((await create(shopX, { notifyUrl: `${origin}/other/path?order=1` })).status).toBe(201);
    });

    it('when a platform key acts for its merchants, then it must name one it may act for', async () => {
      const key = await request(suite.t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: [shopX.merchantId] }, admin);
      expect(key.status).toBe(201);
      const auth = { authorization: `Bearer ${key.body.key}` };
      const forX = await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody({ merchantId: shopX.merchantId }), auth);
      expect({ status: forX.status, merchantId: forX.body.merchantId }).toEqual({ status: 201, merchantId: shopX.merchantId });
      expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody({ merchantId: shopY.merchantId }), auth)).status).toBe(403);
      expect((await request(suite.t.baseUrl, 'GET', `/v1/payments/${forX.body.id}`, undefined, auth)).status).toBe(200);
      const ofY = await created(shopY);
      expect((await request(suite.t.baseUrl, 'GET', `/v1/payments/${ofY.id}`, undefined, auth)).status).toBe(404);
      // A platform key for a merchant that does not exist is refused when it is made.
      expect((await request(suite.t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: ['m_nobody_at_all'] }, admin)).status).toBe(400);
    });
  });

  describe('merchant admin', () => {
    it('when a platform key is revoked, then it answers 401 at once, and the key list shows it revoked', async () => {
      const key = await request(suite.t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: ['*'] }, admin);
      const auth = { authorization: `Bearer ${key.body.key}` };
      expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody({ merchantId: shopX.merchantId }), auth)).status).toBe(201);
      expect((await request(suite.t.baseUrl, 'DELETE', `/v1/admin/api-keys/${key.body.id}`, undefined, admin)).status).toBe(204);
      expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody({ merchantId: shopX.merchantId }), auth)).status).toBe(401);
      const list = await request(suite.t.baseUrl, 'GET', '/v1/admin/api-keys', undefined, admin);
      expect(list.body.platformKeys).toEqual(expect.arrayContaining([{ id: key.body.id, merchants: ['*'], amqpUser: null, createdAt: expect.any(String), revokedAt: expect.any(String) }]));
      expect(JSON.stringify(list.body)).not.toContain(key.body.key);
      expect((await request(suite.t.baseUrl, 'DELETE', `/v1/admin/api-keys/${key.body.id}`, undefined, admin)).status).toBe(404);
    });

    it('when the current webhook secret was sealed under another MERCHANT_SECRETS_KEY, then rotation answers 409 and keeps it', async () => {
      const shop = await registerMerchant(suite.t.baseUrl);
      const foreign = createSecretBox(Buffer.alloc(32, 9)).seal('whsec_AAAA', shop.merchantId);
      await suite.db('merchant_webhook_secrets').where({ merchant_id: shop.merchantId }).update({ sealed_secret: foreign });
      const res = await request(suite.t.baseUrl, 'POST', `/v1/admin/merchants/${shop.merchantId}/webhook-secrets`, undefined, admin);
      expect(res.status).toBe(409);
      const rows = await suite.db('merchant_webhook_secrets').where({ merchant_id: shop.merchantId });
      expect(rows.map((r: { expires_at: Date | null }) => r.expires_at)).toEqual([null]);
    });

    it('when a merchant is registered, then its secrets are shown once: never by GET, and never stored in plain text', async () => {
      const shop = await registerMerchant(suite.t.baseUrl);
      expect(shop.apiKey.key).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
      expect(shop.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(shop.webhookSecret.slice(6), 'base64')).toHaveLength(32);

      const read = await request(suite.t.baseUrl, 'GET', `/v1/admin/merchants/${shop.merchantId}`, undefined, admin);
      expect(read.body).toEqual({ merchantId: shop.merchantId, name: shop.name, notifyUrl: shop.notifyUrl, createdAt: shop.createdAt, apiKeys: [{ id: shop.apiKey.id, createdAt: expect.any(String), revokedAt: null }] });

      const keyRows = await suite.db('merchant_api_keys').where({ merchant_id: shop.merchantId });
      expect(keyRows).toHaveLength(1);
      expect(keyRows[0].key_hash).toBe(createHash('sha256').update(shop.apiKey.key).digest('hex'));
      const secretRows = await suite.db('merchant_webhook_secrets').where({ merchant_id: shop.merchantId });
      expect(secretRows).toHaveLength(1);
      const stored = JSON.stringify([keyRows, secretRows]);
      for (const secret of [shop.apiKey.key, shop.apiKey.key.slice(3), shop.webhookSecret, shop.webhookSecret.slice(6)]) expect(stored).not.toContain(secret);
      expect(secretRows[0].sealed_secret).toMatch(/^v1:/);
    });

    it('when a merchant id is taken, or the body is bad, or the token is missing, then it answers 409, 400 and 401', async () => {
      const body = { merchantId: shopX.merchantId, name: 'Again', notifyUrl: receiverUrl };
      expect((await request(suite.t.baseUrl, 'POST', '/v1/admin/merchants', body, admin)).status).toBe(409);
      expect((await request(suite.t.baseUrl, 'POST', '/v1/admin/merchants', { ...body, merchantId: 'm_new_1', notifyUrl: 'ftp://x' }, admin)).status).toBe(400);
      expect((await request(suite.t.baseUrl, 'POST', '/v1/admin/merchants', { ...body, merchantId: 'm_new_2' })).status).toBe(401);
      expect((await request(suite.t.baseUrl, 'GET', `/v1/admin/merchants/${shopX.merchantId}`)).status).toBe(401);
      expect((await request(suite.t.baseUrl, 'GET', '/v1/admin/merchants/m_nobody_at_all', undefined, admin)).status).toBe(404);
    });
  });

  describe('notifications per Standard Webhooks, signed with the merchant\'s own secret', () => {
    async function paidNotification(merchant: TestMerchant): Promise<Delivery> {
      const p = await created(merchant);
      await sendCallback(suite.t.baseUrl, p.id, { result: 'SUCCESS', transactionId: txId(`n-${p.id}`), paidAmount: p.amount });
      return waitFor(`the notification of ${p.id}`, () => deliveries.get(p.id)?.[0], 15000);
    }
    const verifies = (secret: string, d: Delivery) => {
      try {
        new Webhook(secret).verify(d.body, d.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    };

    it('when a payment is paid, then its notification verifies with its merchant\'s secret through the library, and not with another merchant\'s', async () => {
      const d = await paidNotification(shopX);
      expect(d.headers['webhook-id']).toBe(JSON.parse(d.body).eventId);
      expect(d.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(Math.abs(Number(d.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      expect(verifies(shopX.webhookSecret, d)).toBe(true);
      expect(verifies(shopY.webhookSecret, d)).toBe(false);
      // A body altered on the way fails too.
      expect(verifies(shopX.webhookSecret, { ...d, body: d.body.replace('payment.paid', 'payment.failed') })).toBe(false);
    });

    it('when the webhook secret is rotated, then both secrets verify during the overlap, and only the new one after it', async () => {
      const shop = await registerMerchant(suite.t.baseUrl, { notifyUrl: receiverUrl });
      const rotated = await request(suite.t.baseUrl, 'POST', `/v1/admin/merchants/${shop.merchantId}/webhook-secrets`, undefined, admin);
      expect(rotated.status).toBe(201);
      const fresh = rotated.body.webhookSecret as string;
      expect(fresh).not.toBe(shop.webhookSecret);

      const during = await paidNotification(shop);
      expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
      expect([verifies(shop.webhookSecret, during), verifies(fresh, during)]).toEqual([true, true]);

      // The overlap is 2 s in this suite: notifications made after it carry the new signature only.
      const after = await waitFor('a notification signed after the overlap', async () => {
        const d = await paidNotification(shop);
        return String(d.headers['webhook-signature']).split(' ').length === 1 ? d : undefined;
      }, 20000, 500);
      expect([verifies(shop.webhookSecret, after), verifies(fresh, after)]).toEqual([false, true]);
    });
  });

  describe('a notification message is believed only as far as the database agrees', () => {
    it('when someone publishes a "payment.paid" for a payment that is still PENDING, then it is never signed or sent, and ends parked', async () => {
      const p = await created(shopX, { timeoutSeconds: 900 });
      const id = await internalIdOf(suite.db, p.id);
      const scheduler = createDelayScheduler({ broker: suite.t.app.broker, names: suite.t.app.names });
      await scheduler.schedule({
        destination: DESTINATIONS.notification,
        deadline: Date.now(),
        attempt: 1,
        body: { eventId: 'forged-1', type: 'payment.paid', paymentId: id, notifyUrl: receiverUrl, payment: { ...p, status: 'PAID', transactionId: 'forged' } },
      });
      const item = await waitFor('the forged notification to be parked', async () => {
        const res = await request(suite.t.baseUrl, 'GET', '/v1/admin/parked?purpose=notification&limit=200', undefined, admin);
        return (res.body.items as Array<{ paymentId: string; reason: string; lastError: string }>).find((i) => i.paymentId === p.id);
      }, 20000, 250);
      expect(item).toEqual(expect.objectContaining({ reason: 'retries_exhausted', lastError: expect.stringMatching(/never became PAID/) }));
      expect(deliveries.get(p.id)).toBeUndefined();
    });
  });

  describe('the merchants CLI', () => {
    const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, 'dist/merchants/merchants-cli.js'), ...args], { env: { ...process.env, NODE_ENV: 'test' }, cwd: ROOT });

    it('when an operator adds a merchant with the CLI, then its key creates payments and list shows it without secrets', async () => {
      const id = `m_cli_${Date.now()}`;
      const added = JSON.parse((await cli('add', '--id', id, '--name', 'CLI shop', '--notify-url', receiverUrl)).stdout);
      expect(added).toEqual(expect.objectContaining({ merchantId: id, apiKey: { id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^sk_/) }, webhookSecret: expect.stringMatching(/^whsec_/) }));
      const res = await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), { authorization: `Bearer ${added.apiKey.key}` });
      expect({ status: res.status, merchantId: res.body.merchantId }).toEqual({ status: 201, merchantId: id });

      const listed = (await cli('list')).stdout;
      expect(JSON.parse(listed).merchants).toEqual(expect.arrayContaining([expect.objectContaining({ merchantId: id })]));
      expect(listed).not.toContain(added.apiKey.key);
      expect(listed).not.toContain(added.webhookSecret);

      const rotated = JSON.parse((await cli('rotate-key', id, '--revoke-old')).stdout);
      expect(rotated.revoked).toEqual([added.apiKey.id]);
      // The CLI is another process: the running app stops taking the old key within http.apiKeyCacheMs.
      await waitFor('the old key to answer 401', async () => (await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), { authorization: `Bearer ${added.apiKey.key}` })).status === 401, config.http.apiKeyCacheMs + 5000, 100);
      expect((await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody(), { authorization: `Bearer ${rotated.apiKey.key}` })).status).toBe(201);
      expect(JSON.parse((await cli('rotate-webhook-secret', id)).stdout).webhookSecret).toMatch(/^whsec_/);
    });

    it('when the CLI is given a bad command or a taken id, then it exits non-zero with a clear message', async () => {
      await expect(cli('frobnicate')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
      await expect(cli('add', '--id', shopX.merchantId, '--name', 'x', '--notify-url', receiverUrl)).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('already exists') });
      await expect(cli('add', '--id', 'm_x', '--name', 'x', '--notify-url', 'nope')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('notifyUrl') });
    });
  });
});

describe('safe defaults: NODE_ENV unset means production', () => {
  it('when the process starts with NODE_ENV unset and no secrets, then it exits naming every missing variable', async () => {
    const result = await run(process.execPath, [path.join(ROOT, 'dist/main.js')], { env: { PATH: process.env.PATH ?? '' }, cwd: ROOT, timeout: 20000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(2);
    for (const variable of ['DATABASE_URL', 'AMQP_URL', 'ADMIN_TOKEN', 'MERCHANT_SECRETS_KEY', 'CHANNEL_SECRET_WECHAT', 'CHANNEL_SECRET_ALIPAY']) {
      expect(result.stderr).toContain(variable);
    }
    expect(result.stderr).toMatch(/NODE_ENV is unset, which means production/);
  });
});

describe('identifiers compare case-sensitively', () => {
  const config = testConfig();
  const suite = useTestApp(config);

  it('when two orders differ only in case, then they are two payments, and a payment id in another case is not found', async () => {
    const shop = await registerMerchant(suite.t.baseUrl);
    const upper = await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody({ orderId: 'Case-Order-1' }), shop.auth);
    const lower = await request(suite.t.baseUrl, 'POST', '/v1/payments', paymentBody({ orderId: 'case-order-1' }), shop.auth);
    expect([upper.status, lower.status]).toEqual([201, 201]);
    expect(upper.body.id).not.toBe(lower.body.id);
    const id = upper.body.id as string;
    const flipped = `pay_${[...id.slice(4)].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('')}`;
    expect(flipped).not.toBe(id);
    expect((await request(suite.t.baseUrl, 'GET', `/v1/payments/${flipped}`, undefined, shop.auth)).status).toBe(404);
    expect((await request(suite.t.baseUrl, 'GET', `/v1/payments/${id}`, undefined, shop.auth)).status).toBe(200);
  });
});
