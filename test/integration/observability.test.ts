import amqp, { type ChannelModel, type ConsumeMessage } from 'amqplib';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createPayment, merchantFor, paymentBody, request, sendCallback, txId } from '../helpers/api';
import { TEST_ADMIN_TOKEN, deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { settledPayments } from '../helpers/logs';
import { waitFor } from '../helpers/wait';

describe('operability: correlation ids, metrics, secrets and backlog', () => {
  const config = testConfig();
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  let t: TestApp;
  let merchant: Server;
  let merchantUrl: string;
  const signatures: string[] = [];
  let tap: ChannelModel;
  const tapped: ConsumeMessage[] = [];

  beforeAll(async () => {
    merchant = createServer((req, res) => {
      signatures.push(String(req.headers['webhook-signature']));
      req.resume();
      req.on('end', () => res.end());
    });
    await new Promise<void>((r) => merchant.listen(0, '127.0.0.1', r));
    merchantUrl = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}/notify`;
    t = await startTestApp(config);
    // A tap on the due exchange sees a copy of every message that leaves the delay levels.
    tap = await amqp.connect(config.broker.urls[0] as string);
    const ch = await tap.createChannel();
    const q = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q.queue, t.app.names.dueExchange, '#');
    await ch.consume(q.queue, (m) => m && tapped.push(m), { noAck: true });
  });
  afterAll(async () => {
    await tap.close();
    await t.stop();
    merchant.closeAllConnections();
    await new Promise((r) => merchant.close(r));
    await deleteTestTopology(config);
  });

  const lines = (pred: (l: Record<string, unknown>) => boolean) => t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter(pred);

  it('when a request carries X-Request-Id, then that id is on the create log, the timer and notification messages, the settlement log and the notification log', async () => {
    const requestId = `req-${randomUUID()}`;
    const created = await createPayment(t.baseUrl, paymentBody({ timeoutSeconds: 1, notifyUrl: merchantUrl }), { 'x-request-id': requestId });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-request-id')).toBe(requestId);

    await waitFor('the notification log line', () => lines((l) => l.message === 'notification delivered' && l.correlationId === requestId).length > 0, 15000);
    expect(lines((l) => l.message === 'payment created' && l.paymentId === created.body.id).map((l) => l.correlationId)).toEqual([requestId]);
    expect(settledPayments(t.logs).filter((s) => s.paymentId === created.body.id).map((s) => s.correlationId)).toEqual([requestId]);

    const messages = tapped.filter((m) => m.content.toString().includes(`"paymentId":`) && m.properties.correlationId === requestId);
    const keys = messages.map((m) => m.fields.routingKey.split('.').slice(-3).join('.'));
    expect(keys).toEqual(expect.arrayContaining(['payment.timer.due', 'notification.delivery.due']));
  });

  it('when a payment times out, then the lateness histogram count rises and the transition is counted by cause', async () => {
    const count = async () => {
      const text = await (await fetch(`${t.baseUrl}/metrics`)).text();
      const lateness = Number(/^compensator_timer_lateness_seconds_count (\d+)/m.exec(text)?.[1] ?? 0);
      const timeouts = Number(/^compensator_transitions_total\{from="PENDING",to="CLOSED",cause="timeout"\} (\d+)/m.exec(text)?.[1] ?? 0);
      return { lateness, timeouts, text };
    };
    const before = await count();
    expect(before.text).toContain('# TYPE compensator_timer_lateness_seconds histogram');
    await createPayment(t.baseUrl, paymentBody({ timeoutSeconds: 1 }));
    const after = await waitFor('the histogram to count the timeout', async () => {
      const c = await count();
      return c.lateness > before.lateness ? c : undefined;
    }, 15000);
    expect(after.timeouts).toBeGreaterThan(before.timeouts);
    expect(after.text).toMatch(/compensator_http_request_duration_seconds_count\{method="POST",route="\/v1\/payments",status="201"\} \d+/);
    expect(after.text).toContain('process_resident_memory_bytes');
  });

  it('when payments are created together, then the create batch histograms count every create once and each batch in every phase', async () => {
    const read = async () => {
      const text = await (await fetch(`${t.baseUrl}/metrics`)).text();
      const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
      return {
        text,
        batches: value(/^compensator_create_batch_size_count (\d+)/m),
        creates: value(/^compensator_create_batch_size_sum (\d+)/m),
        phases: ['wait', 'transaction', 'publish'].map((phase) => value(new RegExp(`^compensator_create_batch_seconds_count\\{phase="${phase}"\\} (\\d+)`, 'm'))),
      };
    };
    const before = await read();
    const created = await Promise.all(Array.from({ length: 5 }, () => createPayment(t.baseUrl, paymentBody())));
    expect(created.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    // The batch reports after its timers are published, just after the answers went out.
    const after = await waitFor('the batches to report', async () => {
      const r = await read();
      return r.creates - before.creates === 5 ? r : undefined;
    }, 10000);
    const batches = after.batches - before.batches;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(5);
    expect(after.phases.map((n, i) => n - (before.phases[i] as number))).toEqual([batches, batches, batches]);
    expect(after.text).toContain('# TYPE compensator_create_batch_seconds histogram');
  });

  it('when the whole flow has run, then no log line contains a secret, the admin token or a signature', async () => {
    const created = await createPayment(t.baseUrl, paymentBody({ notifyUrl: merchantUrl }));
    await sendCallback(t.baseUrl, created.body.id, { result: 'SUCCESS', transactionId: txId('tx-secret-check'), paidAmount: 1999 });
    await sendCallback(t.baseUrl, created.body.id, { result: 'SUCCESS', transactionId: txId('tx-secret-check'), paidAmount: 1999 }, 'wrong-secret');
    await request(t.baseUrl, 'GET', '/v1/admin/parked', undefined, admin);
    await request(t.baseUrl, 'GET', '/v1/admin/parked', undefined, { authorization: 'Bearer not-the-token-but-long' });
    await waitFor('the notification', () => signatures.length >= 2, 15000);

    const { apiKey, webhookSecret } = await merchantFor(t.baseUrl, { notifyUrl: merchantUrl });
    const secrets = [...Object.values(config.channels).flatMap((c) => [c.secret ?? [], ...Object.values(c.credentials)].flat()), config.merchantSecretsKey, webhookSecret, webhookSecret.slice('whsec_'.length), apiKey.key, TEST_ADMIN_TOKEN, ...signatures.flatMap((s) => s.split(' '))];
    const leaks = t.logs.filter((l) => secrets.some((s) => l.includes(s)));
    expect(leaks).toEqual([]);
  });

  it('when a burst of payments is waiting, then the backlog lists our queues with numbers', async () => {
    for (let i = 0; i < 30; i++) await createPayment(t.baseUrl, paymentBody({ timeoutSeconds: 600 }));
    const backlog = await waitFor('the management API to see the burst', async () => {
      const res = await request(t.baseUrl, 'GET', '/v1/admin/backlog', undefined, admin);
      return res.status === 200 && res.body.delayLevels.messages >= 30 ? res.body : undefined;
    }, 20000, 500);
    expect(backlog.delayLevels.queues).toBe(22);
    const names = backlog.queues.map((q: { name: string }) => q.name);
    expect(names).toContain(t.app.names.compensationQueue);
    expect(names).toContain(t.app.names.notificationQueue);
    for (const q of backlog.queues) expect(typeof q.ready).toBe('number');
    expect((await request(t.baseUrl, 'GET', '/v1/admin/backlog')).status).toBe(401);
  });
});

describe('backlog when the management API is down', () => {
  const config = testConfig({ broker: { managementUrl: 'http://guest:guest@127.0.0.1:9' } });
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(config);
  });
  afterAll(async () => {
    await t.stop();
    await deleteTestTopology(config);
  });

  it('when the management API is unreachable, then backlog answers 503 with a clear message and the other admin endpoints keep working', async () => {
    const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
    const res = await request(t.baseUrl, 'GET', '/v1/admin/backlog', undefined, admin);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('UNAVAILABLE');
    expect(res.body.error.message).toMatch(/management API .* unreachable/);
    expect((await request(t.baseUrl, 'GET', '/v1/admin/parked', undefined, admin)).status).toBe(200);
    expect((await request(t.baseUrl, 'GET', '/v1/admin/stats', undefined, admin)).status).toBe(200);
  });
});
