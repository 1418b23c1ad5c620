/**
 * The visible demo, through nginx in front of the api replicas:
 *   - registers two merchants with the merchants CLI (npm run merchants -- add), each with its
 *     own API key and webhook secret, notified at a tiny merchant endpoint run by this script;
 *   - creates payments with timeouts of a few seconds, each with its merchant's key; a quarter
 *     of them the way a checkout that speaks AMQP would, as payment intents published to
 *     RabbitMQ as the stack's `checkout` user (scripts/demo-intents.ts), mapped to a platform
 *     key of the two merchants with the CLI (add-platform-key --amqp-user);
 *   - pays a third of them through channel callbacks that the simulator signs (t, payment id, body);
 *   - scripts the channel simulator to answer "paid" for another third (remedy) and "not paid"
 *     for the rest (closed), one of them after a channel error (retry);
 *   - verifies every notification with its merchant's secret (the client's verifyNotification,
 *     Standard Webhooks), prints a live summary as they settle, then what to look at in the
 *     management console;
 *   - sends a tenth of them to each real channel (WeChat Pay APIv3, Alipay RSA2, Stripe), answered
 *     by the stack's protocol-faithful fakes (scripts/demo-channels.ts): a third paid by the
 *     channel's native notification, a third paid when the remedy asks, a third closed at the channel;
 *   - cancels one payment, finds another by its order id and prints both timelines.
 * Payments are created and read with the typed client (clients/typescript), one per merchant key.
 *   tsx scripts/demo.ts [--url http://127.0.0.1:8080] [--count 300] [--simulator http://127.0.0.1:4000]
 *                       [--fakes-port 4101] [--channel-keys .stack/channel-fakes/keys.json]
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createChannelCheckouts, REAL_CHANNELS, type RealPayment, type RealPlan } from './demo-channels';
import { publishIntents } from './demo-intents';
import { CompensatorError, createCompensatorClient, verifyNotification, type CompensatorClient, type Payment } from '../clients/typescript/src';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const baseUrl = arg('url', 'http://127.0.0.1:8080');
const simulatorUrl = arg('simulator', 'http://127.0.0.1:4000');
const adminUrl = arg('admin', `http://127.0.0.1:${Number(new URL(baseUrl).port || 80) + 1}`);
const count = Number(arg('count', '300'));
const consoleUrl = arg('console', 'http://127.0.0.1:15672');
const prefix = arg('prefix', 'compensator');
const checkoutAmqpUrl = arg('amqp', 'amqp://checkout:checkout@127.0.0.1:5672');
const fakesPort = Number(arg('fakes-port', '4101'));
const channelKeys = path.resolve(arg('channel-keys', path.resolve(__dirname, '..', '.stack', 'channel-fakes', 'keys.json')));
if (!Number.isInteger(count) || count < 10) throw new Error('--count must be a whole number of at least 10');
/** Payments per real channel (a tenth each), and the rest for the generic simulator channels. */
const perRealChannel = Math.floor(count / 10);
const genericCount = count - REAL_CHANNELS.length * perRealChannel;

type Plan = 'callback' | 'remedy' | 'close' | 'retry-then-close';

async function call(method: string, url: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method, body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
}

function percentile(sorted: number[], p: number): number | undefined {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : undefined;
}

interface DemoMerchant {
  merchantId: string;
  apiKey: { id: string; key: string };
  webhookSecret: string;
}

/** The operators' CLI (the same as `npm run merchants -- ...`); it prints JSON. */
function merchantsCli(...cliArgs: string[]): any {
  const cli = path.resolve(__dirname, '..', 'dist', 'merchants', 'merchants-cli.js');
  return JSON.parse(execFileSync(process.execPath, [cli, ...cliArgs], { env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'development' }, encoding: 'utf8' }));
}

function addMerchant(merchantId: string, name: string, notifyUrl: string): DemoMerchant {
  return merchantsCli('add', '--id', merchantId, '--name', name, '--notify-url', notifyUrl) as DemoMerchant;
}

/** Payment i goes out as a RabbitMQ intent rather than an HTTP call. */
const viaIntent = (i: number) => i % 4 === 3;

async function main(): Promise<void> {
  // The merchants' endpoint: checks each notification's Standard Webhooks signature with its
  // merchant's own secret, and counts the verified ones by event type.
  const notified = new Map<string, string[]>();
  const secrets = new Map<string, string>();
  let unverified = 0;
  const endpoint = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', async () => {
      const claimed = JSON.parse(raw) as { payment: { merchantId: string } };
      try {
        const event = await verifyNotification(raw, req.headers, secrets.get(claimed.payment.merchantId) ?? 'whsec_AA==');
        notified.set(event.payment.id, [...(notified.get(event.payment.id) ?? []), event.type]);
        res.end();
      } catch {
        unverified++;
        res.statusCode = 400;
        res.end();
      }
    });
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  const notifyUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/notify`;

  const run = randomUUID().slice(0, 6);
  const shops = [addMerchant(`demo_a_${run}`, 'Demo shop A', notifyUrl), addMerchant(`demo_b_${run}`, 'Demo shop B', notifyUrl)];
  for (const shop of shops) secrets.set(shop.merchantId, shop.webhookSecret);
  console.log(`Registered merchants ${shops.map((m) => `${m.merchantId} (key ${m.apiKey.id})`).join(' and ')} with the merchants CLI.`);
  // One client per merchant key: payment i belongs to shop i % 2.
  const clients = shops.map((shop) => createCompensatorClient({ baseUrl, apiKey: shop.apiKey.key }));
  const clientOf = (i: number) => clients[i % 2] as CompensatorClient;

  const plans: Plan[] = Array.from({ length: genericCount }, (_, i) => (i === 0 ? 'retry-then-close' : (['callback', 'remedy', 'close'] as const)[i % 3] as Plan));
  const realPlans: RealPlan[] = Array.from({ length: perRealChannel }, (_, j) => (['notification', 'remedy', 'close'] as const)[j % 3] as RealPlan);
  const planned = (plan: RealPlan) => realPlans.filter((p) => p === plan).length;
  console.log(`Creating ${count} payments through nginx at ${baseUrl}, timeouts 5-15 s. ${genericCount} on the simulator's channels (wechat, alipay):`);
  console.log(`  ${plans.filter((p) => p === 'callback').length} will be paid by a channel callback the simulator signs,`);
  console.log(`  ${plans.filter((p) => p === 'remedy').length} the channel simulator will report paid when their timer fires (remedy),`);
  console.log(`  ${plans.filter((p) => p.endsWith('close')).length} it will report not paid (closed), one of them after a channel error (retry).`);
  console.log(`${perRealChannel} each on the real channels' adapters, against the stack's protocol-faithful fakes (${REAL_CHANNELS.map((c) => `${c.label} as ${c.channel}`).join(', ')}):`);
  console.log(`  ${planned('notification')} paid before the deadline: the channel sends its own signed notification through nginx to /v1/channels/<channel>/...,`);
  console.log(`  ${planned('remedy')} the channel answers paid when the timer's remedy asks it,`);
  console.log(`  ${planned('close')} nobody pays: the remedy finds them not paid and closes the order at the channel.`);

  const payByCallback = async (p: Payment) => {
    const body = { result: 'SUCCESS', transactionId: `cb-${p.id.slice(4)}`, paidAmount: p.amount };
    const res = await call('POST', `${simulatorUrl}/callbacks`, JSON.stringify({ target: baseUrl, paymentId: p.id, channel: p.channel, body }));
    if (res.status !== 200 || res.body?.status !== 200) throw new Error(`callback failed: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const checkoutUser = decodeURIComponent(new URL(checkoutAmqpUrl).username);
  const platformKey = merchantsCli('add-platform-key', '--merchants', shops.map((m) => m.merchantId).join(','), '--amqp-user', checkoutUser);
  console.log(`Mapped RabbitMQ user ${checkoutUser} to platform key ${platformKey.id} of both merchants (merchants CLI add-platform-key): its intents act with that key.`);

  const payments: Payment[] = [];
  const started = Date.now();
  const answersOf = (plan: Plan) => (plan === 'remedy' ? [{ kind: 'paid' }] : plan === 'retry-then-close' ? [{ kind: 'error' }, { kind: 'not_paid' }] : [{ kind: 'not_paid' }]);
  const createBody = (i: number) => ({ orderId: `order-${i}`, amount: 100 + i, currency: 'CNY', channel: i % 2 ? 'alipay' : 'wechat', timeoutSeconds: 5 + (i % 11) });

  // A quarter as intents over RabbitMQ: one confirmed publish each, the outcome on direct reply-to.
  const intentIndexes = plans.map((_, i) => i).filter(viaIntent);
  for (const i of intentIndexes) await call('PUT', `${simulatorUrl}/script/order-${i}`, JSON.stringify({ answers: answersOf(plans[i] as Plan) }));
  const replies = await publishIntents({ amqpUrl: checkoutAmqpUrl, prefix, intents: intentIndexes.map((i) => ({ ...createBody(i), merchantId: (shops[i % 2] as DemoMerchant).merchantId })) });
  for (const [k, i] of intentIndexes.entries()) {
    const reply = replies[k];
    if (reply?.type !== 'payment.created') throw new Error(`intent for order-${i} was not created: ${JSON.stringify(reply)}`);
    payments[i] = reply.body as Payment;
    if (plans[i] === 'callback') await payByCallback(payments[i] as Payment);
  }
  console.log(`Published ${intentIndexes.length} payment intents to ${prefix}.intake as ${checkoutUser}; every one answered payment.created on its reply queue.`);

  // The real channels' checkouts run beside the simulator's: our payment, then the order at the channel.
  const checkouts = createChannelCheckouts({ baseUrl, keysFile: channelKeys, fakesPort });
  const realJobs = REAL_CHANNELS.flatMap(({ kind }) => realPlans.map((plan, j) => ({ kind, plan, j })));
  const real: RealPayment[] = [];
  let nextReal = 0;
  const creatingReal = Promise.all(
    Array.from({ length: 3 }, async () => {
      while (nextReal < realJobs.length) {
        const { kind, plan, j } = realJobs[nextReal++] as (typeof realJobs)[number];
        // A notification comes before the deadline: those get the longer timeouts.
        const timeoutSeconds = plan === 'notification' ? 8 + (j % 8) : 5 + (j % 11);
        real.push(await checkouts.create(kind, plan, { client: clientOf(j), orderId: `${kind}-${j}`, amount: 100 + j, timeoutSeconds }));
      }
    }),
  );

  let next = 0;
  const progress = setInterval(() => console.log(`t+${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s  created ${payments.filter(Boolean).length + real.length}/${count}`), 1000);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < genericCount) {
        const i = next++;
        if (viaIntent(i)) continue;
        const plan = plans[i] as Plan;
        await call('PUT', `${simulatorUrl}/script/order-${i}`, JSON.stringify({ answers: answersOf(plan) }));
        const { payment } = await clientOf(i).createPayment(createBody(i));
        payments[i] = payment;
        if (plan === 'callback') await payByCallback(payment);
      }
    }),
  );
  await creatingReal;
  clearInterval(progress);
  console.log(`Created ${count} in ${((Date.now() - started) / 1000).toFixed(1)} s through nginx (which replica served each is in .stack/nginx/logs/access.log).`);

  console.log('Settling as the timers fire:\n');

  const deadline = Date.now() + 60000;
  let latest = payments;
  let latestReal = real.map((r) => r.payment);
  for (;;) {
    latest = await Promise.all(payments.map((p, i) => clientOf(i).getPayment(p.id)));
    latestReal = await Promise.all(real.map((r) => r.client.getPayment(r.payment.id)));
    const all = [...latest, ...latestReal];
    const counts: Record<string, number> = {};
    for (const p of all) counts[p.status] = (counts[p.status] ?? 0) + 1;
    const settledByTimer = [...latest.filter((_, i) => plans[i] !== 'callback'), ...latestReal.filter((_, k) => real[k]?.plan !== 'notification')].filter((p) => p.status !== 'PENDING');
    const lateness = settledByTimer.map((p) => Date.parse((p.closedAt ?? p.paidAt) as string) - Date.parse(p.expiresAt)).sort((a, b) => a - b);
    const line = ['PENDING', 'PAID', 'CLOSED', 'FAILED', 'PAID_AFTER_CLOSE'].filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join('  ');
    const late = lateness.length ? `   timer lateness p50 ${percentile(lateness, 50)} ms, p99 ${percentile(lateness, 99)} ms` : '';
    console.log(`t+${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s  ${line}${late}   notifications ${[...notified.values()].flat().length}`);
    const done = !counts.PENDING && all.every((p) => notified.get(p.id)?.includes(`payment.${p.status.toLowerCase()}`));
    if (done || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 1000));
  }

  const remedied = latest.find((p, i) => plans[i] === 'remedy' && p.status === 'PAID');
  const retried = latest[0];
  const early = [...latest, ...latestReal].filter((p) => p.closedAt && Date.parse(p.closedAt) < Date.parse(p.expiresAt));
  console.log('');
  console.log(`Settled ${[...latest, ...latestReal].filter((p) => p.status !== 'PENDING').length}/${latest.length + latestReal.length}; closed before their deadline: ${early.length}.`);
  if (remedied) console.log(`Remedy: ${remedied.id} had no callback; at its deadline the channel said PAID, transaction ${remedied.transactionId}.`);
  if (retried) console.log(`Retry: ${retried.id}: the channel errored once, the worker asked again 2 s later (config/demo.json), then closed it: ${retried.status}.`);
  const sample = latest.find((p) => notified.has(p.id));
  if (sample) console.log(`Notification: the merchant got ${notified.get(sample.id)?.join(', ')} for ${sample.id}; every one verified with its own merchant's secret (Standard Webhooks), ${unverified} did not.`);
  // Per real channel: how each payment settled, from its timeline (a native notification is a
  // callback, the timer's query a remedy) and, for a close, from the channel itself.
  let unexpected = 0;
  for (const { kind, channel, label } of REAL_CHANNELS) {
    const tally = { notification: 0, remedy: 0, close: 0 };
    for (const [k, r] of real.entries()) {
      if (r.kind !== kind) continue;
      const p = latestReal[k] as Payment;
      const causes = (await r.client.listPaymentEvents(p.id)).filter((e) => e.from !== e.to).map((e) => `${e.to} ${e.cause}`);
      const outcome: RealPlan | undefined =
        p.status === 'PAID' && causes.includes('PAID callback') ? 'notification' : p.status === 'PAID' && causes.includes('PAID remedy') ? 'remedy' : p.status === 'CLOSED' && (await checkouts.closedAtChannel(r)) ? 'close' : undefined;
      if (outcome) tally[outcome]++;
      if (outcome !== r.plan) {
        unexpected++;
        console.log(`  ${label}: ${p.id} (${r.plan}) ended ${p.status} after ${causes.join(', ')}: not what its channel was told`);
      }
    }
    const port = new URL(checkouts.urls[kind]).port;
    console.log(`${label} (channel ${channel}, its fake on :${port}): ${perRealChannel} payments, ${tally.notification} paid by native notification, ${tally.remedy} by remedy, ${tally.close} closed at the channel.`);
  }
  const foreign = await clientOf(1).getPayment(latest[0]?.id ?? '').then(
    () => 'its payment',
    (err: unknown) => (err instanceof CompensatorError ? `${err.httpStatus} ${err.code}` : String(err)),
  );
  console.log(`Tenancy: shop B reading shop A's payment ${latest[0]?.id} gets ${foreign}.`);

  // Checkout integration: cancel an abandoned order, find a payment by its order id, and where each is.
  const abandoned = (await clientOf(0).createPayment({ orderId: `abandoned-${run}`, amount: 4200, currency: 'CNY', channel: 'wechat', timeoutSeconds: 900 })).payment;
  const cancelled = await clientOf(0).cancelPayment(abandoned.id);
  console.log(`Cancel: ${abandoned.id} (order abandoned-${run}, 15 min timeout) cancelled at once: ${cancelled.status}; its timer will find it settled.`);
  const found = await clientOf(3).findPaymentByOrder({ orderId: 'order-3' });
  console.log(`Lookup: shop B's order-3 (published as an intent) is ${found?.id}, ${found?.status}.`);
  const timeline = async (client: CompensatorClient, id: string) => (await client.listPaymentEvents(id)).map((e) => `${e.from ?? '-'}→${e.to} ${e.cause}`).join(', ');
  console.log(`Timeline of ${cancelled.id}: ${await timeline(clientOf(0), cancelled.id)}`);
  if (retried) console.log(`Timeline of ${retried.id}: ${await timeline(clientOf(0), retried.id)}`);
  console.log(`\nLook at the topology in the management console (guest/guest): ${consoleUrl}/#/queues`);
  console.log(`  ${prefix}:delay:level-00-1s ... level-21-2097152s   one TTL queue per power of two seconds`);
  console.log(`  ${prefix}:payment:compensate                        due timers and remedy retries, consumed by the workers`);
  console.log(`  ${prefix}:notification:deliver                      merchant notifications`);
  console.log(`  ${prefix}:payment:intake                            payment intents checkouts publish to ${prefix}.intake`);
  console.log(`Ops page, on nginx's admin listener (loopback): ${adminUrl}/ops (token: $ADMIN_TOKEN, dev-admin-token-change-me-0123456789 by default)`);
  endpoint.closeAllConnections();
  endpoint.close();
  if ([...latest, ...latestReal].some((p) => p.status === 'PENDING') || unexpected > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
