import amqp, { type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import type { Knex } from 'knex';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { LEVEL_COUNT } from '../../src/messaging/delay-levels';
import { createTopologyNames } from '../../src/messaging/topology';
import { paymentBody, registerMerchant, request, TEST_ADMIN_TOKEN, type TestMerchant } from '../helpers/api';
import { openTestDatabase } from '../helpers/fixtures';
import { deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/**
 * Payment intents over RabbitMQ (README.md, "Payment intents over RabbitMQ"), with the service
 * and the checkouts as the users docker/rabbitmq/provision-app-user.sh makes: the service's
 * least-privilege user, and checkout users that may only publish intents and read their replies.
 */
const root = path.resolve(__dirname, '..', '..');
const base = testConfig();
const management = new URL(base.broker.managementUrl as string);
const adminAuth = `Basic ${Buffer.from(`${decodeURIComponent(management.username)}:${decodeURIComponent(management.password)}`).toString('base64')}`;
const prefix = base.broker.prefix;
const names = createTopologyNames(prefix);

function urlAs(user: string, password: string): string {
  const url = new URL(base.broker.urls[0] as string);
  url.username = user;
  url.password = password;
  return url.toString();
}

function provision(user: string, password: string, role: 'service' | 'checkout'): void {
  const run = spawnSync('sh', [path.join(root, 'docker/rabbitmq/provision-app-user.sh')], {
    env: { PATH: process.env.PATH ?? '', RABBITMQ_API: `${management.protocol}//${management.host}`, RABBITMQ_ADMIN_USER: decodeURIComponent(management.username), RABBITMQ_ADMIN_PASSWORD: decodeURIComponent(management.password), APP_USER: user, APP_PASSWORD: password, PREFIX: prefix, ROLE: role },
    encoding: 'utf8',
    timeout: 30000,
  });
  if (run.status !== 0) throw new Error(`provisioning ${user} failed: ${run.stderr}`);
}

interface Reply {
  type: string;
  body: any;
  created?: boolean;
}

/** A checkout's connection: one confirm channel that publishes intents and reads direct replies. */
async function checkoutAs(url: string, user: string, topologyPrefix = prefix) {
  const intakeExchange = createTopologyNames(topologyPrefix).intakeExchange;
  const conn = await amqp.connect(url);
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  const replies = new Map<string, Reply[]>();
  await ch.consume(
    'amq.rabbitmq.reply-to',
    (msg: ConsumeMessage | null) => {
      if (!msg) return;
      const id = String(msg.properties.correlationId);
      replies.set(id, [...(replies.get(id) ?? []), { type: String(msg.properties.type), body: JSON.parse(msg.content.toString('utf8')), created: msg.properties.headers?.['x-compensator-created'] as boolean | undefined }]);
    },
    { noAck: true },
  );
  return {
    conn,
    ch,
    replies,
    /** Publishes with confirms; resolves with the message id once the broker has it. */
    async publish(body: unknown, props: Record<string, unknown> = {}): Promise<string> {
      const messageId = randomUUID();
      const content = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      await new Promise<void>((resolve, reject) =>
        ch.publish(intakeExchange, 'payment.intent.create', content, { contentType: 'application/json', messageId, correlationId: messageId, replyTo: 'amq.rabbitmq.reply-to', userId: user, persistent: true, ...props }, (err) => (err ? reject(err) : resolve())),
      );
      return messageId;
    },
    async reply(messageId: string): Promise<Reply> {
      return waitFor(`the reply to ${messageId}`, () => replies.get(messageId)?.[0], 20000, 20);
    },
  };
}
type Checkout = Awaited<ReturnType<typeof checkoutAs>>;

describe('payment intents over RabbitMQ', () => {
  const servicePassword = randomBytes(16).toString('hex');
  const serviceUser = `svc_${process.pid}`;
  const checkoutUser = `checkout_${process.pid}`;
  const outsiderUser = `outsider_${process.pid}`;
  const checkoutPassword = randomBytes(16).toString('hex');
  const config = testConfig({ broker: { urls: [urlAs(serviceUser, servicePassword)], prefix } });
  let t: TestApp;
  let db: Knex;
  let shop: TestMerchant;
  let other: TestMerchant;
  let checkout: Checkout;
  let outsider: Checkout;

  beforeAll(async () => {
    provision(serviceUser, servicePassword, 'service');
    provision(checkoutUser, checkoutPassword, 'checkout');
    provision(outsiderUser, checkoutPassword, 'checkout');
    t = await startTestApp(config);
    db = openTestDatabase(config);
    shop = await registerMerchant(t.baseUrl);
    other = await registerMerchant(t.baseUrl);
    const key = await request(t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: [shop.merchantId], amqpUser: checkoutUser }, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
    expect(key.status).toBe(201);
    checkout = await checkoutAs(urlAs(checkoutUser, checkoutPassword), checkoutUser);
    outsider = await checkoutAs(urlAs(outsiderUser, checkoutPassword), outsiderUser);
  });
  afterAll(async () => {
    await checkout?.conn.close().catch(() => undefined);
    await outsider?.conn.close().catch(() => undefined);
    await t?.stop();
    await db?.destroy();
    await deleteTestTopology(testConfig({ broker: { prefix } }));
    for (const user of [serviceUser, checkoutUser, outsiderUser]) await fetch(`${management.protocol}//${management.host}/api/users/${user}`, { method: 'DELETE', headers: { authorization: adminAuth } });
  });

  const intent = (extra: Record<string, unknown> = {}) => ({ ...paymentBody(), merchantId: shop.merchantId, ...extra });
  const paymentsOf = async (merchantId: string, orderIds: string[]) => Number((await db('payments').where({ merchant_id: merchantId }).whereIn('order_id', orderIds).count({ n: '*' }))[0]!.n);

  it('when a mapped checkout publishes an intent, then the payment is created as over HTTP and the reply carries it; a duplicate creates nothing and still answers', async () => {
    const body = intent();
    const first = await checkout.reply(await checkout.publish(body));
    expect(first).toMatchObject({ type: 'payment.created', created: true, body: { merchantId: shop.merchantId, orderId: body.orderId, status: 'PENDING', amount: body.amount } });
    const found = await request(t.baseUrl, 'GET', `/v1/payments?orderId=${body.orderId}`, undefined, shop.auth);
    expect(found.body.id).toBe(first.body.id);
    const repeat = await checkout.reply(await checkout.publish(body));
    expect(repeat).toMatchObject({ type: 'payment.created', created: false, body: { id: first.body.id } });
    expect(await paymentsOf(shop.merchantId, [body.orderId])).toBe(1);
  });

  const rejectedSoFar = async () => (await t.app.metrics.intents.get()).values.find((v) => v.labels.outcome === 'rejected')?.value ?? 0;

  it('when an intent is unauthenticated, for a merchant the key may not act for, or malformed, then it is rejected with its reason, nothing is created, and it is never redelivered', async () => {
    const before = await rejectedSoFar();
    const cases: Array<[code: string, from: Checkout, body: Record<string, unknown> | Buffer, props?: Record<string, unknown>]> = [
      ['UNAUTHORIZED', outsider, intent()], // a RabbitMQ user no key is mapped to
      ['UNAUTHORIZED', checkout, intent(), { userId: undefined }], // no user-id at all
      ['FORBIDDEN', checkout, intent({ merchantId: other.merchantId })],
      ['VALIDATION_FAILED', checkout, intent({ amount: -5 })],
      ['VALIDATION_FAILED', checkout, intent({ merchantId: undefined })],
      ['VALIDATION_FAILED', checkout, Buffer.from('{not json')],
      ['VALIDATION_FAILED', checkout, intent(), { messageId: undefined, correlationId: 'no-message-id' }],
      ['UNSUPPORTED_MEDIA_TYPE', checkout, intent(), { contentType: 'text/plain' }],
      ['PAYLOAD_TOO_LARGE', checkout, Buffer.from(JSON.stringify(intent({ pad: 'x'.repeat(20000) })))],
    ];
    const orderIds = cases.map(([, , body]) => (Buffer.isBuffer(body) ? '' : String(body.orderId))).filter(Boolean);
    for (const [code, from, body, props] of cases) {
      const id = await from.publish(body, props);
      const reply = await from.reply(props?.correlationId ? String(props.correlationId) : id);
      expect({ code, reply: reply.type, got: reply.body.error?.code }).toEqual({ code, reply: 'payment.rejected', got: code });
      expect(typeof reply.body.error.message).toBe('string');
    }
    expect(await paymentsOf(shop.merchantId, orderIds)).toBe(0);
    expect(await paymentsOf(other.merchantId, orderIds)).toBe(0);
    // Each was answered once and acked: the queue empties and no rejection repeats.
    const guest = await amqp.connect(base.broker.urls[0] as string);
    try {
      const ch = await guest.createChannel();
      await waitFor('the intake queue to be empty', async () => (await ch.checkQueue(names.intakeQueue)).messageCount === 0, 10000, 50);
    } finally {
      await guest.close();
    }
    expect((await rejectedSoFar()) - before).toBe(cases.length);
    expect(checkout.replies.size + outsider.replies.size).toBeGreaterThanOrEqual(cases.length);
  });

  it('when an intent carries a correlation id no header may carry, then the payment gets an id of its own while the reply still echoes the checkout\'s', async () => {
    const body = intent();
    const hostile = 'a\nb\u0000c';
    const id = await checkout.publish(body, { correlationId: hostile });
    const reply = await checkout.reply(hostile);
    expect(reply).toMatchObject({ type: 'payment.created', created: true });
    const line = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'payment created from an intent' && l.messageId === id);
    expect(line?.correlationId).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
  });

  it('when a user name differs from a mapped one only by trailing spaces, then it is not that user', async () => {
    await expect(t.app.merchants.authenticateAmqpUser(`${checkoutUser} `)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(t.app.merchants.authenticateAmqpUser(checkoutUser)).resolves.toMatchObject({ merchants: new Set([shop.merchantId]) });
  });

  it('when an operator maps a RabbitMQ user with the CLI, then that user\'s intents act with the new key, and revoking it rejects them', async () => {
    const cli = (...cliArgs: string[]) => JSON.parse(execFileSync(process.execPath, [path.join(root, 'dist/merchants/merchants-cli.js'), ...cliArgs], { env: { ...process.env, NODE_ENV: 'test' }, cwd: root, encoding: 'utf8' })) as Record<string, any>;
    const mapped = cli('add-platform-key', '--merchants', other.merchantId, '--amqp-user', outsiderUser);
    expect(mapped).toMatchObject({ id: expect.stringMatching(/^key_/), key: expect.stringMatching(/^sk_/), merchants: [other.merchantId], amqpUser: outsiderUser });
    const created = await outsider.reply(await outsider.publish(intent({ merchantId: other.merchantId })));
    expect(created).toMatchObject({ type: 'payment.created', body: { merchantId: other.merchantId } });
    // A new mapping takes the user over; revoking it leaves the user unmapped, never the old key.
    const remapped = cli('add-platform-key', '--merchants', shop.merchantId, '--amqp-user', outsiderUser);
    expect((await outsider.reply(await outsider.publish(intent({ merchantId: other.merchantId })))).body.error.code).toBe('FORBIDDEN');
    cli('revoke-platform-key', remapped.id);
    const refused = await outsider.reply(await outsider.publish(intent({ merchantId: other.merchantId })));
    expect(refused.body.error.code).toBe('UNAUTHORIZED');
    cli('revoke-platform-key', mapped.id);
  });

  it('when a publisher sets a user-id other than its own, then RabbitMQ refuses the intent', async () => {
    const liar = await checkoutAs(urlAs(outsiderUser, checkoutPassword), checkoutUser);
    try {
      const closed = new Promise<string>((resolve) => liar.ch.once('error', (err: Error) => resolve(err.message)));
      liar.ch.publish(names.intakeExchange, 'payment.intent.create', Buffer.from(JSON.stringify(intent())), { contentType: 'application/json', messageId: randomUUID(), userId: checkoutUser });
      expect(await closed).toMatch(/PRECONDITION_FAILED.*user_id/i);
    } finally {
      await liar.conn.close().catch(() => undefined);
    }
  });

  it('when a checkout names our own queue as reply-to, then nothing is published there; and a checkout can neither publish there itself nor read the events of every merchant', async () => {
    const body = intent();
    const id = await checkout.publish(body, { replyTo: names.compensationQueue });
    await waitFor('the intent to be processed', async () => (await paymentsOf(shop.merchantId, [body.orderId])) === 1, 10000, 50);
    await waitFor('the refused reply-to to be logged', () => t.logs.some((l) => l.includes('not a reply queue') && l.includes(id)), 10000, 50);
    expect(checkout.replies.get(id)).toBeUndefined();

    const probe = await amqp.connect(urlAs(checkoutUser, checkoutPassword));
    try {
      const ch = await probe.createConfirmChannel();
      const refused = new Promise<string>((resolve) => ch.once('error', (err: Error) => resolve(err.message)));
      ch.publish('', names.compensationQueue, Buffer.from('{}'));
      expect(await refused).toMatch(/ACCESS_REFUSED/);
      const ch2 = await probe.createChannel();
      const refusedBind = new Promise<string>((resolve) => ch2.once('error', (err: Error) => resolve(err.message)));
      const q = await ch2.assertQueue('', { exclusive: true });
      await ch2.bindQueue(q.queue, names.eventsExchange, '#').catch(() => undefined);
      expect(await refusedBind).toMatch(/ACCESS_REFUSED/);
    } finally {
      await probe.close().catch(() => undefined);
    }
  });

  it('when 1,000 intents are published while the api is stopped and restarted, then each becomes exactly one payment with one timer and every intent is answered', async () => {
    const bodies = Array.from({ length: 1000 }, () => intent({ timeoutSeconds: 900 }));
    await t.stop();
    const ids: string[] = [];
    // Half while no api runs: they wait in the quorum queue.
    for (const body of bodies.slice(0, 500)) ids.push(await checkout.publish(body));
    t = await startTestApp(config);
    for (const body of bodies.slice(500)) ids.push(await checkout.publish(body));
    // Stop it mid-stream (what is in flight finishes or is redelivered), then start another.
    await waitFor('some answers', () => ids.filter((id) => checkout.replies.has(id)).length >= 600, 30000, 20);
    await t.stop();
    t = await startTestApp(config);
    await waitFor('every intent to be answered', () => ids.every((id) => checkout.replies.has(id)), 60000, 50);
    for (const id of ids) expect(checkout.replies.get(id)!.every((r) => r.type === 'payment.created')).toBe(true);
    expect(await paymentsOf(shop.merchantId, bodies.map((b) => b.orderId))).toBe(1000);
    // One timer each: every PENDING payment of this app has exactly one message in the delay levels.
    const pending = Number((await db('payments').whereIn('merchant_id', [shop.merchantId, other.merchantId]).where('status', 'PENDING').count({ n: '*' }))[0]!.n);
    const guest = await amqp.connect(base.broker.urls[0] as string);
    try {
      const ch = await guest.createChannel();
      const waiting = async () => {
        let n = 0;
        for (let level = 0; level < LEVEL_COUNT; level++) n += (await ch.checkQueue(names.delayQueue(level))).messageCount;
        return n + (await ch.checkQueue(names.compensationQueue)).messageCount;
      };
      await waitFor(`${pending} timers in the delay levels`, async () => (await waiting()) === pending, 20000, 100);
      expect(Number((await db('outbox').where('topology', prefix).count({ n: '*' }))[0]!.n)).toBe(0);
    } finally {
      await guest.close();
    }
  });
});

describe('payment intents over RabbitMQ: the per-key rate limit', () => {
  // The stack's administrator publishes as itself here: user-id is still checked by RabbitMQ.
  const user = decodeURIComponent(new URL(base.broker.urls[0] as string).username);
  const config = testConfig({ intake: { prefetch: 50 }, http: { rateLimitPerKeyPerSecond: 5 } });
  let t: TestApp;
  let checkout: Checkout;
  let shop: TestMerchant;
  beforeAll(async () => {
    t = await startTestApp(config);
    shop = await registerMerchant(t.baseUrl);
    expect((await request(t.baseUrl, 'POST', '/v1/admin/api-keys', { merchants: [shop.merchantId], amqpUser: user }, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` })).status).toBe(201);
    checkout = await checkoutAs(base.broker.urls[0] as string, user, config.broker.prefix);
  });
  afterAll(async () => {
    await checkout?.conn.close().catch(() => undefined);
    await t?.stop();
    await deleteTestTopology(config);
  });

  it('when a key publishes faster than its limit, then the excess is answered RATE_LIMITED and creates nothing', async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, () => checkout.publish({ ...paymentBody(), merchantId: shop.merchantId })));
    const replies = await Promise.all(ids.map((id) => checkout.reply(id)));
    const limited = replies.filter((r) => r.body.error?.code === 'RATE_LIMITED');
    const created = replies.filter((r) => r.type === 'payment.created');
    expect(limited.length).toBeGreaterThan(0);
    expect(created.length).toBeGreaterThan(0);
    expect(limited.length + created.length).toBe(30);
  });
});
