/**
 * The visible demo: creates payments with short timeouts, pays some through signed callbacks,
 * and prints a live summary as the rest settle through their timers.
 *   tsx scripts/demo.ts [--url http://127.0.0.1:3000] [--count 40]
 */
import { createHmac, randomUUID } from 'node:crypto';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const baseUrl = arg('url', 'http://127.0.0.1:3000');
const count = Number(arg('count', '40'));
const consoleUrl = arg('console', 'http://127.0.0.1:15672');
const prefix = arg('prefix', 'compensator');
const secret = (channel: string) => process.env[`CHANNEL_SECRET_${channel.toUpperCase()}`] ?? `dev-secret-${channel}`;

interface Payment {
  id: string;
  status: string;
  expiresAt: string;
  closedAt: string | null;
  paidAt: string | null;
  channel: string;
  amount: number;
}

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl}${path}`, { method, body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, body: (await res.json()) as any, replica: res.headers.get('x-upstream-addr') ?? 'direct' };
}

async function main(): Promise<void> {
  const merchantId = `demo_${randomUUID().slice(0, 6)}`;
  console.log(`Creating ${count} payments at ${baseUrl} (merchant ${merchantId}), timeouts 2-8 s ...`);
  const payments: Payment[] = [];
  for (let i = 0; i < count; i++) {
    const channel = i % 2 ? 'alipay' : 'wechat';
    const res = await call('POST', '/v1/payments', JSON.stringify({ merchantId, orderId: `order-${i}`, amount: 100 + i, currency: 'CNY', channel, timeoutSeconds: 2 + (i % 7) }));
    if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
    payments.push(res.body);
  }
  const toPay = payments.filter((_, i) => i % 3 === 0);
  console.log(`Paying ${toPay.length} of them through signed channel callbacks; the rest wait for their timers.`);
  for (const p of toPay) {
    const raw = JSON.stringify({ result: 'SUCCESS', transactionId: `tx-${p.id.slice(4, 12)}`, paidAmount: p.amount });
    const sig = createHmac('sha256', secret(p.channel)).update(raw).digest('hex');
    const res = await call('POST', `/v1/payments/${p.id}/callback`, raw, { 'x-signature': sig });
    if (res.status !== 200) throw new Error(`callback failed: ${res.status} ${JSON.stringify(res.body)}`);
  }

  const started = Date.now();
  const deadline = started + 40000;
  let latest: Payment[] = payments;
  for (;;) {
    latest = await Promise.all(payments.map(async (p) => (await call('GET', `/v1/payments/${p.id}`)).body as Payment));
    const counts: Record<string, number> = {};
    for (const p of latest) counts[p.status] = (counts[p.status] ?? 0) + 1;
    const lateness = latest.filter((p) => p.status === 'CLOSED' && p.closedAt).map((p) => Date.parse(p.closedAt as string) - Date.parse(p.expiresAt)).sort((a, b) => a - b);
    const max = lateness.length ? lateness[lateness.length - 1] : undefined;
    const p50 = lateness.length ? lateness[Math.floor(lateness.length / 2)] : undefined;
    const line = Object.entries(counts).map(([s, n]) => `${s} ${n}`).join('  ');
    console.log(`t+${((Date.now() - started) / 1000).toFixed(1).padStart(4)} s  ${line}${lateness.length ? `   closed past deadline by p50 ${p50} ms, max ${max} ms` : ''}`);
    if (!counts.PENDING || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 1000));
  }

  const early = latest.filter((p) => p.closedAt && Date.parse(p.closedAt) < Date.parse(p.expiresAt));
  console.log('');
  console.log(`Settled: ${latest.filter((p) => p.status !== 'PENDING').length}/${latest.length}; closed before their deadline: ${early.length}.`);
  console.log(`Look at the topology in the management console (guest/guest): ${consoleUrl}/#/queues`);
  console.log(`  ${prefix}:delay:level-00-1s ... level-21-2097152s  one TTL queue per power of two seconds`);
  console.log(`  ${prefix}:payment:compensate                 due timers, consumed by the workers`);
  if (latest.some((p) => p.status === 'PENDING')) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
