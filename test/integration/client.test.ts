import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompensatorError, createCompensatorClient, signCallback, verifyNotification, WebhookVerificationError, type CompensatorClient, type FetchLike } from '../../clients/typescript/src';
import { buildOpenApiDocument, openApiPath } from '../../src/openapi/openapi-document';
import { API_OPERATIONS } from '../../src/openapi/openapi-operations';
import { errorSchema, notificationEventSchema } from '../../src/openapi/openapi-schemas';
import { paymentBody, registerMerchant, txId, type TestMerchant } from '../helpers/api';
import { startSimulator, type TestSimulator } from '../helpers/simulator';
import { deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

interface Answer {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/** The operation of the table (openapi-operations.ts) that serves this method and concrete path. */
function operationOf(method: string, path: string) {
  return API_OPERATIONS.find((op) => op.method === method.toLowerCase() && new RegExp(`^${op.path.replace(/:\w+/g, '[^/]+')}$`).test(path));
}

/**
 * The TypeScript client (clients/typescript) against a real app: every call it makes, and every
 * answer it gets is one the OpenAPI document lists for that operation, parsed by the same zod
 * schema the document was generated from.
 */
describe('the TypeScript client against the service', () => {
  let sim: TestSimulator;
  let config: ReturnType<typeof testConfig>;
  let t: TestApp;
  let endpoint: Server;
  let shop: TestMerchant;
  let client: CompensatorClient;
  const answers: Answer[] = [];
  const notifications: Array<{ raw: string; headers: IncomingHttpHeaders }> = [];

  /** fetch that keeps every answer, for the check against the document. */
  const recordingFetch: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    const text = await res.clone().text();
    answers.push({ method: init.method ?? 'GET', path: new URL(url).pathname, status: res.status, body: text ? JSON.parse(text) : undefined });
    return res;
  };

  beforeAll(async () => {
    endpoint = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      req.on('end', () => {
        notifications.push({ raw, headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    sim = await startSimulator();
    config = testConfig({ channels: { wechat: { timeoutSeconds: 900, adapter: { type: 'simulator', baseUrl: sim.url, timeoutMs: 1000 } } } });
    t = await startTestApp(config);
    shop = await registerMerchant(t.baseUrl, { notifyUrl: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/notify` });
    client = createCompensatorClient({ baseUrl: t.baseUrl, apiKey: shop.apiKey.key, fetch: recordingFetch });
  });
  afterAll(async () => {
    await t?.stop();
    await sim?.close();
    await new Promise((resolve) => endpoint?.close(resolve));
    await deleteTestTopology(config);
  });

  async function createScripted(kind: 'not_paid' | 'paid') {
    const body = paymentBody({ merchantId: shop.merchantId });
    await sim.script(body.orderId, [kind === 'paid' ? { kind: 'paid' } : { kind: 'not_paid' }]);
    const { payment, created } = await client.createPayment(body);
    expect(created).toBe(true);
    return payment;
  }

  it('when GET /openapi.json is asked, then it serves the document the routes are checked against', async () => {
    const res = await fetch(`${t.baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(buildOpenApiDocument());
  });

  it('creates, repeats, reads, finds by order and lists the timeline of a payment', async () => {
    const body = paymentBody({ merchantId: shop.merchantId, amount: 2500 });
    const first = await client.createPayment(body);
    expect(first).toEqual({ created: true, payment: expect.objectContaining({ orderId: body.orderId, amount: 2500, status: 'PENDING' }) });
    // A repeat of the same body is the same payment, not a new one.
    expect(await client.createPayment(body)).toEqual({ created: false, payment: first.payment });
    expect(await client.getPayment(first.payment.id)).toEqual(first.payment);
    expect(await client.findPaymentByOrder({ orderId: body.orderId })).toEqual(first.payment);
    expect(await client.findPaymentByOrder({ orderId: `${body.orderId}-none` })).toBeNull();
    const events = await client.listPaymentEvents(first.payment.id);
    expect(events.map((e) => [e.from, e.to, e.cause])).toEqual([[null, 'PENDING', 'created']]);
  });

  it('cancels a payment the channel says is not paid (CLOSED), and answers CONFLICT naming the status of one already PAID', async () => {
    const open = await createScripted('not_paid');
    expect((await client.cancelPayment(open.id)).status).toBe('CLOSED');

    // Paid first by the channel's callback, signed with the client's signCallback.
    const paid = await createScripted('not_paid');
    const raw = JSON.stringify({ result: 'SUCCESS', transactionId: txId(`client-${paid.id}`), paidAmount: paid.amount });
    const callback = await recordingFetch(`${t.baseUrl}/v1/payments/${paid.id}/callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature': await signCallback('dev-secret-wechat', paid.id, raw) },
      body: raw,
    });
    expect(callback.status).toBe(200);
    const conflict = await client.cancelPayment(paid.id).catch((err: unknown) => err);
    expect(conflict).toBeInstanceOf(CompensatorError);
    expect(conflict).toMatchObject({ httpStatus: 409, code: 'CONFLICT', details: [{ path: 'status', message: 'PAID' }] });

    // The merchant's notification of the payment verifies with its secret, and with no other.
    const notification = await waitFor('the payment.paid notification', () => notifications.find((n) => n.raw.includes(paid.id)), 15000, 50);
    const event = await verifyNotification(notification.raw, notification.headers, shop.webhookSecret);
    expect(notificationEventSchema.parse(event)).toMatchObject({ type: 'payment.paid', payment: { id: paid.id, status: 'PAID' } });
    const stranger = await registerMerchant(t.baseUrl);
    await expect(verifyNotification(notification.raw, notification.headers, stranger.webhookSecret)).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it('throws CompensatorError with the code of the answer', async () => {
    const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => err as CompensatorError);
    const stranger = createCompensatorClient({ baseUrl: t.baseUrl, apiKey: 'sk_unknown', fetch: recordingFetch });
    expect(await errorOf(stranger.getPayment('pay_x'))).toMatchObject({ httpStatus: 401, code: 'UNAUTHORIZED' });
    expect(await errorOf(client.getPayment('pay_0000000000000000000000'))).toMatchObject({ httpStatus: 404, code: 'NOT_FOUND', requestId: expect.any(String) });
    const invalid = await errorOf(client.createPayment({ ...paymentBody(), amount: -1 }));
    expect(invalid).toMatchObject({ httpStatus: 400, code: 'VALIDATION_FAILED', details: [expect.objectContaining({ path: 'amount' })] });
  });

  it('got only answers the document lists for their operation, each of the shape it describes', () => {
    expect(answers.length).toBeGreaterThan(10);
    const doc = buildOpenApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const answer of answers) {
      const op = operationOf(answer.method, answer.path);
      const at = `${answer.method} ${answer.path} ${answer.status}`;
      expect({ at, described: op !== undefined }).toEqual({ at, described: true });
      const statuses = Object.keys(doc.paths[openApiPath(op!.path)]?.[op!.method]?.responses ?? {}).map(Number);
      expect({ at, statuses }).toEqual({ at, statuses: expect.arrayContaining([answer.status]) });
      if (answer.status >= 400) errorSchema.parse(answer.body);
      else op!.responses[answer.status]?.schema?.parse(answer.body);
    }
  });
});
