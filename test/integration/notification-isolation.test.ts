import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPayment, getPayment, paymentBody } from '../helpers/api';
import { testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/** Merchant endpoints are isolated: one that hangs holds at most its own host's few slots. */
describe('a hanging merchant endpoint', () => {
  // A long notification timeout, so a hang really holds a slot; two calls at most per host.
  const config = testConfig({ notifications: { timeoutMs: 20000, perHostConcurrency: 2, prefetch: 16 } });
  const suite = useTestApp(config);
  const servers: Server[] = [];
  const arrivals = new Map<string, number>();
  let hangingUrl = '';
  let healthyUrl = '';

  async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
  }
  beforeAll(async () => {
    hangingUrl = await listen((req) => req.resume()); // never answers
    healthyUrl = await listen((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        arrivals.set((JSON.parse(raw) as { payment: { id: string } }).payment.id, Date.now());
        res.writeHead(204).end();
      });
    });
  });
  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('when one merchant\'s endpoint hangs on 30 notifications, then another merchant\'s are delivered within a second of their payment closing', async () => {
    // 30 payments of the hanging merchant, then 5 of the healthy one, all closed by 1 s timers.
    await Promise.all(Array.from({ length: 30 }, () => createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 1, notifyUrl: hangingUrl }))));
    const healthy = await Promise.all(Array.from({ length: 5 }, async () => (await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 1, notifyUrl: healthyUrl }))).body.id as string));
    const delays = await waitFor('the healthy merchant\'s five notifications', async () => {
      if (!healthy.every((id) => arrivals.has(id))) return undefined;
      return Promise.all(healthy.map(async (id) => (arrivals.get(id) as number) - Date.parse((await getPayment(suite.t.baseUrl, id)).body.closedAt)));
    }, 20000, 50);
    expect(Math.max(...delays)).toBeLessThan(1000);
  });
});
