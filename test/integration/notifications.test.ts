import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { createPayment, merchantFor, paymentBody, request, sendCallback, txId } from '../helpers/api';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

interface Received {
  path: string;
  body: string;
  headers: IncomingMessage['headers'];
  at: number;
}

describe('merchant notifications', () => {
  const config = testConfig();
  let t: TestApp;
  let merchant: Server;
  let merchantUrl: string;
  const received: Received[] = [];
  const failuresLeft = new Map<string, number>();

  beforeAll(async () => {
    // A merchant endpoint: /flaky/<key> fails three times then answers 200; /silent never answers.
    merchant = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body, headers: req.headers, at: Date.now() });
        if (req.url?.startsWith('/silent')) return; // hang: the notifier times out
        const left = failuresLeft.get(req.url ?? '') ?? 0;
        failuresLeft.set(req.url ?? '', left - 1);
        res.statusCode = left > 0 ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => merchant.listen(0, '127.0.0.1', r));
    merchantUrl = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}`;
    t = await startTestApp(config);
  });
  afterAll(async () => {
    await t.stop();
    merchant.closeAllConnections();
    await new Promise((r) => merchant.close(r));
    await deleteTestTopology(config);
  });

  it('when the merchant fails three times and then answers 200, then it gets the same signed event until it acknowledges, and no more', async () => {
    const path = `/flaky/${Date.now()}`;
    failuresLeft.set(path, 3);
    const created = await createPayment(t.baseUrl, paymentBody({ notifyUrl: `${merchantUrl}${path}` }));
    await sendCallback(t.baseUrl, created.body.id, { result: 'SUCCESS', transactionId: txId('tx-n1'), paidAmount: 1999 });

    await waitFor('four deliveries', () => received.filter((r) => r.path === path).length >= 4, 20000);
    const deliveries = received.filter((r) => r.path === path);
    const eventIds = new Set(deliveries.map((d) => d.headers['webhook-id']));
    const { webhookSecret } = await merchantFor(t.baseUrl, { notifyUrl: merchantUrl });
    expect(eventIds.size).toBe(1);
    for (const d of deliveries) {
      const body = JSON.parse(d.body);
      expect(body.eventId).toBe([...eventIds][0]);
      expect(body.type).toBe('payment.paid');
      expect(body.payment).toMatchObject({ id: created.body.id, status: 'PAID', transactionId: txId('tx-n1') });
      // Standard Webhooks: the merchant's own secret verifies it with the library.
      expect(new Webhook(webhookSecret).verify(d.body, d.headers as Record<string, string>)).toEqual(body);
    }
    // Retries follow the schedule ([1, 1, 2] s in tests): never sooner.
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(900);
    // Delivered means done: wait for the delivered log, then make sure no fifth call comes.
    await waitFor('the delivered log line', () => t.logs.some((l) => l.includes('notification delivered') && l.includes(created.body.id)), 5000);
    expect(received.filter((r) => r.path === path)).toHaveLength(4);
  });

  it('when the merchant never answers, then the notification is parked after the last attempt', async () => {
    const path = `/silent/${Date.now()}`;
    const created = await createPayment(t.baseUrl, paymentBody({ timeoutSeconds: 1, notifyUrl: `${merchantUrl}${path}` }));
    const item = await waitFor('the notification to be parked', async () => {
      const res = await request(t.baseUrl, 'GET', '/v1/admin/parked?purpose=notification&limit=100', undefined, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
      return (res.body.items as Array<{ paymentId: string; reason: string; attempts: number; lastError: string }>).find((i) => i.paymentId === created.body.id);
    }, 30000, 250);
    expect(item.reason).toBe('retries_exhausted');
    expect(item.attempts).toBe(config.retry.notification.length + 1);
    expect(item.lastError).toMatch(/no answer/);
    expect(received.filter((r) => r.path === path)).toHaveLength(config.retry.notification.length + 1);
  });
});
