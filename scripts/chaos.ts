/**
 * `npm run chaos -- --minutes N --seed S`: a soak under random faults on the local stack.
 *
 * Payments are created at a steady rate through nginx (a tenth of them paid by signed channel
 * callbacks), while a schedule drawn from the seed kills (SIGKILL) and restarts workers, api
 * replicas, RabbitMQ and MariaDB. Then it waits for everything to settle and checks, from
 * `payments` and `payment_events`: none lost, none settled early, none settled twice, and every
 * final state notified. It prints the schedule it ran and a summary table, and exits 1 on any
 * violation. Everything runs on loopback, bounded by --minutes plus the settle deadline.
 *   --minutes 2   how long faults and load run       --seed 1     the schedule's seed
 *   --rate 20     creates per second                 --settle 240 seconds allowed to settle after
 * The stack's port variables (RABBITMQ_PORT, MARIADB_PORT, NGINX_PORT, ..., ERL_EPMD_PORT) and
 * DATABASE_URL move it off the default ports, e.g. to soak a second checkout beside the first.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/config-loader';
import { createDatabase } from '../src/infra/database';
import { signGatewayRequest } from '../src/shared/gateway-signature';
import { portAnswers } from '../test/helpers/ports';
import { RECORDED_CAUSES, type TransitionCause } from '../src/payments/payment-states';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const STACK = path.join(ROOT, '.stack');
const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
};
const MINUTES = arg('minutes', 2);
const SEED = arg('seed', 1);
const RATE = arg('rate', 20);
const SETTLE_SEC = arg('settle', 240);
const APIS = 2;
const WORKERS = 2;
const NGINX = `http://127.0.0.1:${process.env.NGINX_PORT ?? 8080}`;
const NGINX_ADMIN = `http://127.0.0.1:${process.env.NGINX_ADMIN_PORT ?? Number(process.env.NGINX_PORT ?? 8080) + 1}`;
const ADMIN_TOKEN = 'chaos-admin-token-0123456789abcdef0123';
/** The same environment on every `stack.sh up`, or it restarts the apps that still run. */
const STACK_ENV = { ...process.env, NODE_ENV: 'development', ADMIN_TOKEN, LOG_LEVEL: 'warn' };

const log = (line: string) => process.stdout.write(`[chaos +${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
/** The schedule's zero: set once the stack is up and the merchant registered. */
let started = Date.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded generator, so a seed names one schedule. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Target = 'worker' | 'api' | 'rabbitmq' | 'mariadb';
interface Fault {
  atSec: number;
  target: Target;
  /** Which replica, for workers and apis (1-based). */
  index: number;
  downSec: number;
}

function schedule(seed: number, durationSec: number): Fault[] {
  const random = prng(seed);
  const targets: Target[] = ['worker', 'api', 'rabbitmq', 'mariadb'];
  const faults: Fault[] = [];
  for (let at = 8 + random() * 6; at < durationSec - 10; at += 14 + random() * 12) {
    const target = targets[Math.floor(random() * targets.length)] as Target;
    faults.push({ atSec: Math.round(at), target, index: 1 + Math.floor(random() * (target === 'api' ? APIS : WORKERS)), downSec: Math.round(2 + random() * 6) });
  }
  return faults;
}

const stackUp = () => run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up', '--api', String(APIS), '--workers', String(WORKERS)], { env: STACK_ENV, timeout: 300_000, maxBuffer: 1 << 24 });
const pidOf = (file: string) => Number(readFileSync(file, 'utf8').trim());
function kill9(file: string): number {
  const pid = pidOf(file);
  process.kill(pid, 'SIGKILL');
  return pid;
}

async function inject(fault: Fault): Promise<void> {
  const file =
    fault.target === 'worker' ? path.join(STACK, 'app', `worker-${fault.index}.pid`)
    : fault.target === 'api' ? path.join(STACK, 'app', `api-${fault.index}.pid`)
    : fault.target === 'rabbitmq' ? path.join(STACK, 'rabbitmq', 'beam.pid')
    : path.join(STACK, 'mariadb', 'mariadbd.pid');
  const pid = kill9(file);
  log(`SIGKILL ${fault.target}${fault.target === 'worker' || fault.target === 'api' ? `-${fault.index}` : ''} (pid ${pid}); back in ${fault.downSec} s`);
  await sleep(fault.downSec * 1000);
  const t0 = Date.now();
  await stackUp();
  log(`${fault.target} restarted (stack.sh up took ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  try {
    const res = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  } catch {
    return { status: 0, body: undefined };
  }
}

/** Like a checkout: the same body again on a network error or a 5xx, with backoff, for up to 60 s. */
async function withRetries(send: () => Promise<{ status: number; body: any }>): Promise<{ status: number; body: any; attempts: number }> {
  const until = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    const res = await send();
    if ((res.status !== 0 && res.status < 500) || Date.now() > until) return { ...res, attempts: attempt };
    await sleep(Math.min(2000, 100 * 2 ** attempt));
  }
}

async function main(): Promise<void> {
  const durationSec = Math.round(MINUTES * 60);
  const faults = schedule(SEED, durationSec);
  log(`seed ${SEED}, ${MINUTES} min at ${RATE} creates/s through ${NGINX}; ${faults.length} faults:`);
  for (const f of faults) log(`  t=${String(f.atSec).padStart(4)} s  ${f.target}${f.target === 'worker' || f.target === 'api' ? `-${f.index}` : ''} down ${f.downSec} s`);

  const serversWereUp = (await portAnswers(Number(process.env.RABBITMQ_PORT ?? 5672))) && (await portAnswers(Number(process.env.MARIADB_PORT ?? 3306)));
  await stackUp();
  const { config } = loadConfig({ env: { ...process.env, NODE_ENV: 'development' } });
  const db = createDatabase({ config, poolMax: 4 });

  // The merchant: remembers every notification type by payment id.
  const notified = new Map<string, Set<string>>();
  const merchant: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      try {
        const event = JSON.parse(raw) as { type: string; payment: { id: string } };
        notified.set(event.payment.id, (notified.get(event.payment.id) ?? new Set()).add(event.type));
      } catch {
        /* not ours */
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => merchant.listen(0, '127.0.0.1', r));
  const merchantId = `chaos_${SEED}_${randomUUID().slice(0, 6)}`;
  const registered = await withRetries(() =>
    call('POST', `${NGINX_ADMIN}/v1/admin/merchants`, { merchantId, name: 'Chaos shop', notifyUrl: `http://127.0.0.1:${(merchant.address() as AddressInfo).port}/notify` }, { authorization: `Bearer ${ADMIN_TOKEN}` }),
  );
  if (registered.status !== 201) throw new Error(`registering the merchant answered ${registered.status}`);
  const auth = { authorization: `Bearer ${registered.body.apiKey.key as string}` };
  started = Date.now();
  log('stack up and merchant registered: load and faults start now');

  // Load and faults side by side, both bounded by the duration.
  const created = new Map<string, { paidByCallback: boolean }>();
  const outcomes = { created: 0, gaveUp: 0, retried: 0, callbacks: 0, callbackFailures: 0 };
  const loadEnds = started + durationSec * 1000;
  let n = 0;
  const client = async () => {
    for (;;) {
      const i = n++;
      const slot = started + (i * 1000) / RATE;
      if (slot >= loadEnds) return;
      if (slot > Date.now()) await sleep(slot - Date.now());
      const body = { orderId: `o-${i}`, amount: 1000 + i, currency: 'CNY', channel: i % 2 ? 'alipay' : 'wechat', timeoutSeconds: 3 + (i % 18) };
      const res = await withRetries(() => call('POST', `${NGINX}/v1/payments`, body, auth));
      if (res.attempts > 1) outcomes.retried++;
      if (res.status !== 201 && res.status !== 200) {
        outcomes.gaveUp++;
        continue;
      }
      outcomes.created++;
      const paidByCallback = i % 10 === 0;
      created.set(res.body.id as string, { paidByCallback });
      if (paidByCallback) {
        const raw = { result: 'SUCCESS', transactionId: `chaos-${res.body.id as string}`, paidAmount: body.amount };
        const cb = await withRetries(() => call('POST', `${NGINX}/v1/payments/${res.body.id as string}/callback`, raw, { 'x-signature': signGatewayRequest(process.env[`CHANNEL_SECRET_${body.channel.toUpperCase()}`] ?? `dev-secret-${body.channel}`, res.body.id as string, JSON.stringify(raw)) }));
        outcomes.callbacks++;
        if (cb.status !== 200) outcomes.callbackFailures++;
      }
    }
  };
  const faultRun = (async () => {
    for (const f of faults) {
      const at = started + f.atSec * 1000;
      if (at > Date.now()) await sleep(at - Date.now());
      await inject(f);
    }
  })();
  await Promise.all([...Array.from({ length: 8 }, client), faultRun]);
  log(`load done: ${outcomes.created} created (${outcomes.retried} after a retry, ${outcomes.gaveUp} gave up), ${outcomes.callbacks} callbacks`);
  await stackUp(); // everything up for the settle

  // Settle, then check the invariants from the database.
  const ids = [...created.keys()];
  const rowsOf = async () => {
    const rows: Array<{ id: number; public_id: string; status: string; expires_at: Date }> = [];
    for (let i = 0; i < ids.length; i += 1000) rows.push(...(await db('payments').whereIn('public_id', ids.slice(i, i + 1000)).select('id', 'public_id', 'status', 'expires_at')));
    return rows;
  };
  const settleBy = Date.now() + SETTLE_SEC * 1000;
  let rows = await rowsOf();
  while (Date.now() < settleBy) {
    const pending = rows.filter((r) => r.status === 'PENDING').length;
    const unnotified = rows.filter((r) => r.status !== 'PENDING' && !notified.get(r.public_id)?.has(`payment.${r.status.toLowerCase()}`)).length;
    if (pending === 0 && unnotified === 0) break;
    log(`settling: ${pending} pending, ${unnotified} not yet notified`);
    await sleep(5000);
    rows = await rowsOf();
  }
  const events: Array<{ payment_id: number; from_status: string | null; to_status: string; cause: string; at: Date }> = [];
  const internal = rows.map((r) => Number(r.id));
  for (let i = 0; i < internal.length; i += 1000) events.push(...(await db('payment_events').whereIn('payment_id', internal.slice(i, i + 1000)).select('payment_id', 'from_status', 'to_status', 'cause', 'at')));
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  const outOfPending = new Map<number, number>();
  let early = 0;
  for (const e of events) {
    // Transitions out of PENDING only: the timeline's records (a remedy retry is PENDING -> PENDING) change no state.
    if (e.from_status !== 'PENDING' || e.to_status === 'PENDING' || RECORDED_CAUSES.includes(e.cause as TransitionCause)) continue;
    outOfPending.set(Number(e.payment_id), (outOfPending.get(Number(e.payment_id)) ?? 0) + 1);
    const row = byId.get(Number(e.payment_id));
    if (row && e.to_status === 'CLOSED' && new Date(e.at).getTime() < new Date(row.expires_at).getTime()) early++;
  }
  const byStatus = new Map<string, number>();
  for (const r of rows) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
  const result = {
    created: ids.length,
    missing: ids.length - rows.length,
    stillPending: rows.filter((r) => r.status === 'PENDING').length,
    early,
    settledTwice: [...outOfPending.values()].filter((c) => c > 1).length,
    finalWithoutNotification: rows.filter((r) => r.status !== 'PENDING' && !notified.get(r.public_id)?.has(`payment.${r.status.toLowerCase()}`)).length,
  };
  merchant.closeAllConnections();
  merchant.close();
  await db.destroy();
  // Stop what this run started: the apps always, the servers when they were not up before.
  await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'down', ...(serversWereUp ? ['--apps'] : [])], { env: STACK_ENV, timeout: 180_000 }).catch(() => undefined);

  const table = [
    ['seed', String(SEED)],
    ['minutes', String(MINUTES)],
    ['faults injected', `${faults.length} (${(['worker', 'api', 'rabbitmq', 'mariadb'] as const).map((t) => `${t} ${faults.filter((f) => f.target === t).length}`).join(', ')})`],
    ['payments created', String(result.created)],
    ['creates that needed a retry', String(outcomes.retried)],
    ['creates given up after 60 s', String(outcomes.gaveUp)],
    ['final states', [...byStatus].map(([s, c]) => `${s} ${c}`).join(', ')],
    ['lost (missing or still PENDING)', String(result.missing + result.stillPending)],
    ['settled before the deadline', String(result.early)],
    ['settled twice', String(result.settledTwice)],
    ['final state not notified', String(result.finalWithoutNotification)],
  ];
  process.stdout.write(`\n| chaos soak | |\n|---|---|\n${table.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
  const violations = result.missing + result.stillPending + result.early + result.settledTwice + result.finalWithoutNotification;
  process.stdout.write(violations === 0 ? '\nchaos: every invariant held\n' : `\nchaos: ${violations} violations\n`);
  process.exitCode = violations === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`chaos failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
