import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGzip } from 'node:zlib';
import { addressAllowed, createOutboundHttp, OutboundError } from '../../src/shared/outbound-http';

/** Local servers on loopback only; the addresses refused below are refused before any packet. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const production = { allowLoopback: false, allowPrivateHosts: [] };
const development = { allowLoopback: true, allowPrivateHosts: [] };

async function failureOf(p: Promise<unknown>): Promise<{ kind: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OutboundError) return { kind: err.kind, message: err.message };
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('outbound HTTP (notifications and the http adapter)', () => {
  let ok: Awaited<ReturnType<typeof serve>>;
  let hits = 0;
  beforeAll(async () => {
    ok = await serve((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
  });
  afterAll(() => ok.close());

  it.each([
    ['127.0.0.1', 'http://127.0.0.1:PORT/notify'],
    ['the link-local metadata address', 'http://169.254.169.254/latest/meta-data/'],
    ['a private address', 'http://10.0.0.1/notify'],
    ['IPv6 loopback', 'http://[::1]:PORT/notify'],
    ['a decimal IPv4 (2130706433)', 'http://2130706433:PORT/notify'],
    ['a hostname that resolves to loopback', 'http://localhost:PORT/notify'],
    ['an IPv4-mapped IPv6 loopback', 'http://[::ffff:127.0.0.1]:PORT/notify'],
    ['a CGNAT address', 'http://100.64.0.1/notify'],
  ])('in production, %s is refused and nothing reaches it', async (_name, template) => {
    const port = new URL(ok.url).port;
    const http = createOutboundHttp({ policy: production });
    const before = hits;
    const failure = await failureOf(http.post(template.replace('PORT', port), '{}', {}, 2000));
    expect(failure.kind).toBe('refused');
    expect(hits).toBe(before);
    await http.close();
  });

  it('in development, loopback is allowed; in production, a host listed in allowPrivateHosts is too', async () => {
    const dev = createOutboundHttp({ policy: development });
    expect(await dev.post(`${ok.url}/notify`, '{}', {}, 2000)).toMatchObject({ status: 200, body: 'ok' });
    await dev.close();
    const listed = createOutboundHttp({ policy: { allowLoopback: false, allowPrivateHosts: ['localhost'] } });
    expect((await listed.post(ok.url.replace('127.0.0.1', 'localhost'), '{}', {}, 2000)).status).toBe(200);
    await listed.close();
    expect(addressAllowed('10.1.2.3', 'gw', { allowLoopback: false, allowPrivateHosts: ['10.1.0.0/16'] })).toBe(true);
    expect(addressAllowed('10.2.0.1', 'gw', { allowLoopback: false, allowPrivateHosts: ['10.1.0.0/16'] })).toBe(false);
    expect(addressAllowed('93.184.216.34', 'example', production)).toBe(true);
  });

  it('when the answer is a 50 MB gzip stream, then at most 4 KiB is read, nothing is decompressed, and the call returns at once', async () => {
    let sent = 0;
    const bomb = await serve((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/json' });
      const gzip = createGzip({ level: 1 });
      gzip.pipe(res);
      const chunk = Buffer.alloc(1 << 20, 'A');
      const pump = () => {
        while (sent < 50 * (1 << 20)) {
          sent += chunk.length;
          if (!gzip.write(chunk)) return void gzip.once('drain', pump);
        }
        gzip.end();
      };
      res.on('close', () => gzip.destroy());
      pump();
    });
    const http = createOutboundHttp({ policy: development });
    const rssBefore = process.memoryUsage().rss;
    const t0 = Date.now();
    const res = await http.post(`${bomb.url}/notify`, '{}', {}, 10000);
    expect(res.status).toBe(200);
    expect(Buffer.byteLength(res.body, 'latin1')).toBeLessThanOrEqual(4096);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * (1 << 20));
    await http.close();
    await bomb.close();
  });

  it('when a host redirects, then the redirect is not followed', async () => {
    const redirecting = await serve((req, res) => {
      req.resume();
      res.writeHead(302, { location: `${ok.url}/elsewhere` }).end();
    });
    const http = createOutboundHttp({ policy: development });
    const before = hits;
    expect((await http.post(`${redirecting.url}/notify`, '{}', {}, 2000)).status).toBe(302);
    expect(hits).toBe(before);
    await http.close();
    await redirecting.close();
  });

  it('when a host hangs, then its calls beyond the cap wait briefly and are refused as busy, and a failing host opens its breaker', async () => {
    const hanging = await serve((req) => req.resume()); // never answers
    const http = createOutboundHttp({ policy: development, perHostConcurrency: 2, slotWaitMs: 100, breakerFailures: 2, breakerOpenMs: 60_000 });
    const held = [http.post(`${hanging.url}/a`, '{}', {}, 1500), http.post(`${hanging.url}/b`, '{}', {}, 1500)];
    const t0 = Date.now();
    expect((await failureOf(http.post(`${hanging.url}/c`, '{}', {}, 1500))).kind).toBe('busy');
    // It waited for a slot only slotWaitMs (100 ms), not for the hung calls.
    expect(Date.now() - t0).toBeLessThan(1000);
    // Another host is not affected.
    expect((await http.post(`${ok.url}/notify`, '{}', {}, 1500)).status).toBe(200);
    expect((await Promise.all(held.map(failureOf))).map((f) => f.kind)).toEqual(['timeout', 'timeout']);
    // Two timeouts in a row opened the breaker: refused without a call.
    expect((await failureOf(http.post(`${hanging.url}/d`, '{}', {}, 1500))).kind).toBe('open');
    await http.close();
    await hanging.close();
  });

  it('when the URL is not http(s) or carries credentials, then it is refused', async () => {
    const http = createOutboundHttp({ policy: development });
    expect((await failureOf(http.post('file:///etc/passwd', '{}', {}, 1000))).kind).toBe('refused');
    expect((await failureOf(http.post(`${ok.url.replace('//', '//user:pw@')}/x`, '{}', {}, 1000))).kind).toBe('refused');
    await http.close();
  });
});
