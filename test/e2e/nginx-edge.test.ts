import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CompensatorError, createCompensatorClient, type FetchLike } from '../../clients/typescript/src';
import { paymentBody, registerMerchant, request, sendCallback, TEST_ADMIN_TOKEN, type TestMerchant } from '../helpers/api';
import { startProcess, stopProcess, type ChildHandle } from '../helpers/processes';
import { testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

const root = path.resolve(__dirname, '..', '..');
const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => spawnSync(p, ['-v']).status === 0) ?? 'nginx';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * nginx as deployed (nginx/nginx.conf.template), in front of an app with ADMIN_PORT: the public
 * listener forwards only payments, callbacks and health, the admin listener (loopback) the rest,
 * and limit_req answers a burst with 429 and Retry-After. Low limits, so a burst is small.
 */
describe('nginx in front of the api: the public and the admin listener', () => {
  const config = testConfig({ http: { adminPort: 0 } });
  const suite = useTestApp(config);
  let nginx: ChildHandle | undefined;
  let dir = '';
  let publicUrl = '';
  let adminUrl = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pc-nginx-'));
    for (const sub of ['run', 'logs', 'tmp']) mkdirSync(path.join(dir, sub));
    const [pub, adm] = [await freePort(), await freePort()];
    publicUrl = `http://127.0.0.1:${pub}`;
    adminUrl = `http://127.0.0.1:${adm}`;
    const upstream = new URL(suite.t.baseUrl).host;
    const adminUpstream = new URL(suite.t.adminUrl as string).host;
    const conf = path.join(dir, 'nginx.conf');
    const rendered = spawnSync('bash', [path.join(root, 'nginx/render.sh'), '--prefix', dir, '--listen', `127.0.0.1:${pub}`, '--admin-listen', `127.0.0.1:${adm}`, '--upstream', upstream, '--admin-upstream', adminUpstream, '--worker-processes', '1', '--create-rate', '2', '--create-burst', '3', '--callback-rate', '2', '--callback-burst', '3', '-o', conf], { encoding: 'utf8' });
    expect(rendered.status).toBe(0);
    nginx = startProcess(nginxBin, ['-p', `${dir}/`, '-c', conf, '-g', 'daemon off;'], { output: 'ignore' });
    await waitFor('nginx to answer', async () => (await fetch(`${publicUrl}/nginx-healthz`).catch(() => undefined))?.status === 200, 10000, 50);
  });
  /** The typed client through nginx's public listener, keeping the headers of every answer. */
  function clientThroughNginx(shop: TestMerchant) {
    const headers: Headers[] = [];
    const recording: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      headers.push(res.headers);
      return res;
    };
    return { client: createCompensatorClient({ baseUrl: publicUrl, apiKey: shop.apiKey.key, fetch: recording }), headers };
  }
  afterAll(async () => {
    if (nginx) await stopProcess(nginx, 5000);
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['/v1/admin/parked', '/v1/admin/merchants/m_1', '/ops', '/metrics'])('when %s is asked on the public listener, then nginx answers 404 and the admin listener serves it', async (route) => {
    const pub = await request(publicUrl, 'GET', route, undefined, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
    expect(pub.status).toBe(404);
    expect(pub.body.error.code).toBe('NOT_FOUND');
    const adm = await request(adminUrl, 'GET', route, undefined, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
    expect([200, 404]).toContain(adm.status); // 404 only for the merchant that does not exist
    if (route !== '/v1/admin/merchants/m_1') expect(adm.status).toBe(200);
    expect(adm.headers.get('x-upstream-addr')).toBe(new URL(suite.t.adminUrl as string).host);
  });

  it('when payments and health go through the public listener, then they work and say nothing of the upstream', async () => {
    const { client, headers } = clientThroughNginx(await registerMerchant(adminUrl));
    const created = await client.createPayment(paymentBody());
    expect(created.created).toBe(true);
    expect((await client.getPayment(created.payment.id)).id).toBe(created.payment.id);
    expect(headers).toHaveLength(2);
    for (const answer of headers) {
      expect(answer.get('x-upstream-addr')).toBeNull();
      expect(answer.get('x-request-id')).toBeTruthy();
    }
    expect((await request(publicUrl, 'GET', '/readyz')).body).toEqual({ status: 'ready' });
    expect((await request(publicUrl, 'GET', '/openapi.json')).body.openapi).toBe('3.1.0');
    expect((await sendCallback(publicUrl, created.payment.id, { result: 'FAILED' })).status).toBe(200);
  });

  it('when one address sends a burst of creates above the limit, then the excess gets 429 RATE_LIMITED with Retry-After', async () => {
    const { client } = clientThroughNginx(await registerMerchant(adminUrl));
    const burst = await Promise.allSettled(Array.from({ length: 15 }, () => client.createPayment(paymentBody())));
    const limited = burst.flatMap((r) => (r.status === 'rejected' ? [r.reason as CompensatorError] : []));
    expect(limited.length).toBeGreaterThanOrEqual(5);
    for (const err of limited) {
      expect(err).toBeInstanceOf(CompensatorError);
      expect({ httpStatus: err.httpStatus, code: err.code, retryAfterSeconds: err.retryAfterSeconds }).toEqual({ httpStatus: 429, code: 'RATE_LIMITED', retryAfterSeconds: 1 });
    }
    // Reads are not counted against the create limit.
    const created = burst.find((r) => r.status === 'fulfilled');
    expect(created?.status === 'fulfilled' && (await client.getPayment(created.value.payment.id)).status).toBe('PENDING');
  });
});
