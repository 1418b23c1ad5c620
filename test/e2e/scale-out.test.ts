import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { deepMerge } from '../../src/config/config-loader';
import { CompensatorError, createCompensatorClient, type FetchLike } from '../../clients/typescript/src';
import { paymentBody, registerMerchant, request, sendCallback, txId, useAdminUrl } from '../helpers/api';
import { openTestDatabase } from '../helpers/fixtures';
import { deleteTestTopology, TEST_ADMIN_TOKEN, testConfig } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';
import { createChannelCheckouts, REAL_CHANNELS, type RealPayment } from '../../scripts/demo-channels';

/**
 * Issue 5, end to end: the real deployment shape on this machine. scripts/stack.sh starts 3 api
 * processes and 2 workers (plus the channel simulator) behind the real nginx on :8080; the
 * test talks to nginx only, and reads the outcome from the database.
 *
 * The processes run with NODE_ENV=test (the test database), the demo's channel config (the
 * simulator answers "not paid" unless scripted) and a queue prefix of this run's own. They are
 * the stack's app processes: running this file replaces whatever `stack.sh up --api/--workers`
 * started before, and it ends with `stack.sh down --apps`.
 */
const root = path.resolve(__dirname, '..', '..');
const stackDir = process.env.STACK_DIR ? path.resolve(process.env.STACK_DIR) : path.join(root, '.stack');
const nginxUrl = `http://127.0.0.1:${process.env.NGINX_PORT ?? 8080}`;
const nginxAdminUrl = `http://127.0.0.1:${process.env.NGINX_ADMIN_PORT ?? Number(process.env.NGINX_PORT ?? 8080) + 1}`;
useAdminUrl(nginxUrl, nginxAdminUrl);

/** Which replica nginx sent each request to, from its JSON access log, by request id prefix. */
function upstreamsByRequest(prefix: string): Map<string, string> {
  const lines = readFileSync(path.join(stackDir, 'nginx', 'logs', 'access.log'), 'utf8').split('\n');
  const out = new Map<string, string>();
  for (const line of lines) {
    if (!line.includes(`"request_id":"${prefix}`)) continue;
    try {
      const entry = JSON.parse(line) as { request_id: string; upstream_addr: string };
      out.set(entry.request_id, entry.upstream_addr);
    } catch {
      // a line being written
    }
  }
  return out;
}
const simulatorUrl = `http://127.0.0.1:${process.env.SIMULATOR_PORT ?? 4000}`;
const FINAL = ['PAID', 'FAILED', 'CLOSED', 'PAID_AFTER_CLOSE'];

const config = testConfig();
const configFile = path.join(tmpdir(), `pc-e2e-${config.broker.prefix}.json`);
const stackEnv = { ...process.env, NODE_ENV: 'test', COMPENSATOR_CONFIG: configFile, ADMIN_TOKEN: TEST_ADMIN_TOKEN };

function stack(...args: string[]): string {
  return execFileSync('bash', [path.join(root, 'scripts', 'stack.sh'), ...args], {
    cwd: root,
    env: stackEnv,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 8 * 60 * 1000,
  });
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
async function pool<T, R>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i] as T, i);
      }
    }),
  );
  return results;
}

interface PaymentRow {
  id: number;
  order_id: string;
  status: string;
  expires_at: Date;
  paid_at: Date | null;
  closed_at: Date | null;
}

let db: Knex;

beforeAll(() => {
  const demo = JSON.parse(readFileSync(path.join(root, 'config', 'demo.json'), 'utf8'));
  writeFileSync(configFile, JSON.stringify(deepMerge(demo, { broker: { prefix: config.broker.prefix } })));
  stack('up', '--api', '3', '--workers', '2');
  db = openTestDatabase(config);
}, 9 * 60 * 1000);

afterAll(async () => {
  try {
    stack('down', '--apps');
  } finally {
    rmSync(configFile, { force: true });
    await db?.destroy();
    await deleteTestTopology(config).catch(() => undefined);
  }
}, 2 * 60 * 1000);

/** A merchant registered through nginx's admin listener, and the typed client with its key through the public one. */
async function merchantClient(merchantId: string) {
  const shop = await registerMerchant(nginxUrl, { merchantId });
  // Public answers do not say which replica served them (no X-Upstream-Addr): kept for the check.
  const upstreamHeaders: Array<string | null> = [];
  const recording: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    upstreamHeaders.push(res.headers.get('x-upstream-addr'));
    return res;
  };
  return { client: createCompensatorClient({ baseUrl: nginxUrl, apiKey: shop.apiKey.key, fetch: recording }), upstreamHeaders };
}

async function settledRows(merchantId: string, count: number, timeoutMs: number): Promise<PaymentRow[]> {
  return waitFor(`${count} payments of ${merchantId} to settle`, async () => {
    const rows: PaymentRow[] = await db('payments').where({ merchant_id: merchantId }).select('id', 'order_id', 'status', 'expires_at', 'paid_at', 'closed_at');
    return rows.length === count && rows.every((r) => r.status !== 'PENDING') ? rows : undefined;
  }, timeoutMs, 500);
}

async function finalTransitionsPerPayment(ids: number[]): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (let i = 0; i < ids.length; i += 1000) {
    const rows: Array<{ payment_id: number; n: number }> = await db('payment_events')
      .whereIn('payment_id', ids.slice(i, i + 1000))
      .whereIn('to_status', FINAL)
      // Transitions only: a delivered notification is recorded in the timeline as CLOSED -> CLOSED.
      .whereRaw('from_status <> to_status')
      .groupBy('payment_id')
      .select('payment_id')
      .count({ n: '*' });
    for (const r of rows) counts.set(Number(r.payment_id), Number(r.n));
  }
  return counts;
}

describe('scale-out through nginx: 3 api replicas and 2 workers as separate processes', () => {
  it('spreads 1,000 creates over all three replicas, and every payment settles exactly once, never early', async () => {
    const merchantId = `e2e_${randomUUID().slice(0, 8)}`;
    const run = randomUUID().slice(0, 8);
    const bodies = Array.from({ length: 1000 }, (_, i) =>
      paymentBody({ merchantId, orderId: `${run}-${i}`, amount: 100 + i, timeoutSeconds: 2 + (i % 5) }),
    );
    // Every 10th order the channel reports paid when asked (remedy); every 10th (offset 1) is
    // paid by a signed callback right away; the rest are closed at their deadline.
    for (let i = 0; i < bodies.length; i += 10) {
      const res = await request(simulatorUrl, 'PUT', `/script/${bodies[i]?.orderId}`, { answers: [{ kind: 'paid' }] });
      expect(res.status).toBe(204);
    }

    const { client, upstreamHeaders } = await merchantClient(merchantId);
    const created = await pool(bodies, 16, async (body, i) => {
      const { payment, created: isNew } = await client.createPayment(body, { headers: { 'x-request-id': `${run}-c-${i}` } });
      expect(isNew).toBe(true);
      if (i % 10 === 1) {
        const cb = await sendCallback(nginxUrl, payment.id, { result: 'SUCCESS', transactionId: txId(`tx-${i}`), paidAmount: body.amount });
        expect(cb.status).toBe(200);
      }
      return payment;
    });
    expect(new Set(created.map((p) => p.id)).size).toBe(1000);
    expect(upstreamHeaders.filter((h) => h !== null)).toEqual([]);

    // All three replicas served a fair share (round robin; no retries while all are healthy),
    // as nginx's access log tells.
    const replicas = new Map<string, number>();
    const upstreams = await waitFor('nginx to log the 1,000 creates', () => {
      const seen = upstreamsByRequest(`${run}-c-`);
      return seen.size === 1000 ? seen : undefined;
    }, 10000, 100);
    for (const upstream of upstreams.values()) replicas.set(upstream, (replicas.get(upstream) ?? 0) + 1);
    expect([...replicas.keys()].sort()).toEqual(['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003']);
    for (const n of replicas.values()) expect(n).toBeGreaterThan(200);

    const rows = await settledRows(merchantId, 1000, 120_000);
    const byOrder = new Map(rows.map((r) => [r.order_id, r]));
    for (let i = 0; i < bodies.length; i++) {
      const row = byOrder.get(bodies[i]?.orderId as string) as PaymentRow;
      const expected = i % 10 === 0 || i % 10 === 1 ? 'PAID' : 'CLOSED';
      expect({ order: row.order_id, status: row.status }).toEqual({ order: row.order_id, status: expected });
      // Settled by a timer: never before the deadline.
      if (row.status === 'CLOSED') expect(row.closed_at!.getTime()).toBeGreaterThanOrEqual(row.expires_at.getTime());
      if (i % 10 === 0) expect(row.paid_at!.getTime()).toBeGreaterThanOrEqual(row.expires_at.getTime());
    }
    const finals = await finalTransitionsPerPayment(rows.map((r) => Number(r.id)));
    const notOnce = rows.filter((r) => finals.get(Number(r.id)) !== 1).map((r) => r.order_id);
    expect(notOnce).toEqual([]);
  }, 5 * 60 * 1000);

  it('one replica killed with SIGKILL while clients create: every create succeeds exactly once', async () => {
    const merchantId = `e2e_kill_${randomUUID().slice(0, 8)}`;
    const bodies = Array.from({ length: 400 }, (_, i) => paymentBody({ merchantId, orderId: `k-${i}`, timeoutSeconds: 3 }));
    const victim = Number(readFileSync(path.join(stackDir, 'app', 'api-2.pid'), 'utf8').trim());
    expect(victim).toBeGreaterThan(1);

    const { client } = await merchantClient(merchantId);
    let clientErrors = 0;
    const results = await pool(bodies, 16, async (body, i) => {
      if (i === 100) process.kill(victim, 'SIGKILL');
      // A client that retries the same body on a network error or a 5xx, like a checkout would.
      for (let attempt = 1; ; attempt++) {
        try {
          const { payment, created } = await client.createPayment(body);
          return { status: created ? 201 : 200, id: payment.id, attempt };
        } catch (err) {
          const status = err instanceof CompensatorError ? err.httpStatus : undefined;
          if (status !== undefined && (status < 500 || attempt >= 5)) return { status, id: '', attempt };
          if (attempt >= 5) throw err;
        }
        clientErrors++;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    });

    // Every create succeeded: 201, or 200 when a retry (nginx's or the client's) found the
    // payment the first attempt had already committed.
    expect(results.filter((r) => r.status !== 201 && r.status !== 200)).toEqual([]);
    // nginx retried on the surviving replicas, so the clients rarely (if ever) saw an error.
    expect(clientErrors).toBeLessThan(10);

    const rows = await settledRows(merchantId, bodies.length, 90_000);
    expect(rows).toHaveLength(400); // one payment per order: nothing duplicated
    const idsByOrder = new Map(results.map((r, i) => [bodies[i]?.orderId, r.id]));
    const finals = await finalTransitionsPerPayment(rows.map((r) => Number(r.id)));
    for (const row of rows) {
      expect(finals.get(Number(row.id))).toBe(1);
      expect(row.status).toBe('CLOSED');
    }
    const publicIds: Array<{ order_id: string; public_id: string }> = await db('payments').where({ merchant_id: merchantId }).select('order_id', 'public_id');
    for (const p of publicIds) expect(idsByOrder.get(p.order_id)).toBe(p.public_id);

    // `up` with the same arguments brings the killed replica back. (The others are left alone
    // unless dist/ was rebuilt meanwhile, which restarts them one by one.)
    const out = stack('up', '--api', '3', '--workers', '2');
    expect(out).toMatch(/api-2: started/);
    const seen = new Set<string>();
    // nginx's admin listener names the replica (their ADMIN_PORTs, 3301..3303).
    await waitFor('all three replicas to answer through nginx', async () => {
      const res = await request(nginxAdminUrl, 'GET', '/readyz');
      seen.add(res.headers.get('x-upstream-addr') ?? '');
      return seen.has('127.0.0.1:3302') && seen.size >= 3;
    }, 30_000, 50);
  }, 5 * 60 * 1000);

  it("runs the channel fakes beside the apps, which use config/demo.json's real channels with the keys file's credentials", async () => {
    const keysFile = path.join(stackDir, 'channel-fakes', 'keys.json');
    expect(statSync(keysFile).mode & 0o777).toBe(0o600);
    // The credentials ride in the apps' environment only: no .spec file holds a key.
    const specs = readdirSync(path.join(stackDir, 'app')).filter((f) => f.endsWith('.spec'));
    expect(specs).toContain('fakes.spec');
    expect(specs.filter((f) => /PRIVATE KEY|sk_test_|whsec_/.test(readFileSync(path.join(stackDir, 'app', f), 'utf8')))).toEqual([]);
    // The demo's checkouts: one payment per real channel paid by the channel's native
    // notification through nginx, one nobody pays, which the workers' adapters close at the fake.
    const { client } = await merchantClient(`e2e_fakes_${randomUUID().slice(0, 8)}`);
    const checkouts = createChannelCheckouts({ baseUrl: nginxUrl, keysFile, fakesPort: Number(process.env.CHANNEL_FAKES_BASE_PORT ?? 4101) });
    const made: RealPayment[] = [];
    for (const { kind } of REAL_CHANNELS) {
      made.push(await checkouts.create(kind, 'notification', { client, orderId: `${kind}-paid-${randomUUID().slice(0, 8)}`, amount: 1999, timeoutSeconds: 30 }));
      made.push(await checkouts.create(kind, 'close', { client, orderId: `${kind}-unpaid-${randomUUID().slice(0, 8)}`, amount: 1999, timeoutSeconds: 2 }));
    }
    const settled = await waitFor('the real channels\' payments to settle', async () => {
      const now = await Promise.all(made.map((r) => client.getPayment(r.payment.id)));
      return now.every((p) => p.status !== 'PENDING') ? now : undefined;
    }, 30_000, 250);
    expect(settled.map((p, i) => `${made[i]?.kind} ${made[i]?.plan} ${p.status}`)).toEqual(REAL_CHANNELS.flatMap(({ kind }) => [`${kind} notification PAID`, `${kind} close CLOSED`]));
    for (const r of made.filter((m) => m.plan === 'close')) expect({ kind: r.kind, closedAtChannel: await checkouts.closedAtChannel(r) }).toEqual({ kind: r.kind, closedAtChannel: true });
  }, 2 * 60 * 1000);
});
