/**
 * The demo's checkouts for the real channels (README.md, "Channels"), against the stack's
 * protocol-faithful fakes (src/simulator/channel-fakes.ts, `fakes` in scripts/stack.sh): each
 * creates our payment with the typed client and its order at the channel the way that channel's
 * checkout does, then, by its plan:
 *   - notification: the customer pays before the deadline and the channel sends its native
 *     notification (signed its own way) through nginx to /v1/channels/<channel>/...: PAID;
 *   - remedy: the channel is scripted to answer paid when the timer's remedy asks: PAID;
 *   - close: nobody pays; the remedy finds it not paid and closes the order at the channel: CLOSED.
 * The keys are the stack's (its keys file, never printed): the checkout's side of each channel.
 */
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import Stripe from 'stripe';
import type { CompensatorClient, Payment } from '../clients/typescript/src';
import { CHANNEL_FAKE_IDS, channelFakePorts, readChannelFakeKeys } from '../src/simulator/channel-fakes';

export type RealPlan = 'notification' | 'remedy' | 'close';
export type RealKind = 'wechatpay' | 'alipay' | 'stripe';

/** The demo's three real channels, as config/demo.json names them. */
export const REAL_CHANNELS: ReadonlyArray<{ kind: RealKind; channel: string; label: string; currency: string }> = [
  { kind: 'wechatpay', channel: 'wechatpay', label: 'WeChat Pay', currency: 'CNY' },
  { kind: 'alipay', channel: 'alipay_rsa2', label: 'Alipay', currency: 'CNY' },
  { kind: 'stripe', channel: 'stripe', label: 'Stripe', currency: 'USD' },
];

export interface RealPayment {
  kind: RealKind;
  plan: RealPlan;
  payment: Payment;
  client: CompensatorClient;
  /** The order at the channel: out_trade_no (our payment id), or the PaymentIntent id. */
  channelOrder: string;
}

async function expectStatus(res: Response, status: number, what: string): Promise<any> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}
const json = (method: string, body?: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

/** expiresAt in WeChat Pay's format, Beijing time, seconds rounded down: 2026-01-01T20:00:00+08:00. */
const wechatTime = (iso: string) => `${new Date(Date.parse(iso) + 8 * 3600_000).toISOString().slice(0, 19)}+08:00`;
/** Minor units as yuan text ("1.05"), by string arithmetic. */
const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

export function createChannelCheckouts(options: { baseUrl: string; keysFile: string; fakesPort: number }) {
  const keys = readChannelFakeKeys(options.keysFile);
  const ports = channelFakePorts(options.fakesPort);
  const fake = { wechatpay: `http://127.0.0.1:${ports.wechatpay}`, alipay: `http://127.0.0.1:${ports.alipay}`, stripe: `http://127.0.0.1:${ports.stripe}` };
  const notifyUrl = (kind: RealKind) => {
    const { channel } = REAL_CHANNELS.find((c) => c.kind === kind) as (typeof REAL_CHANNELS)[number];
    return `${options.baseUrl}/v1/channels/${channel}/${kind === 'stripe' ? 'webhook' : 'notify'}`;
  };
  const merchantKey = createPrivateKey(keys.wechatpay.merchantPrivateKey);
  const stripe = new Stripe(keys.stripe.secretKey, { host: '127.0.0.1', port: String(ports.stripe), protocol: 'http', maxNetworkRetries: 1, telemetry: false });

  /** A WeChat Pay APIv3 request signed with the merchant's API key (WECHATPAY2-SHA256-RSA2048). */
  async function wechatPost(path: string, body: string): Promise<Response> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(16).toString('hex').toUpperCase();
    const signature = sign('sha256', Buffer.from(`POST\n${path}\n${timestamp}\n${nonce}\n${body}\n`, 'utf8'), merchantKey).toString('base64');
    const { mchid, merchantSerialNo } = CHANNEL_FAKE_IDS.wechatpay;
    return fetch(`${fake.wechatpay}${path}`, {
      method: 'POST',
      body,
      headers: {
        authorization: `WECHATPAY2-SHA256-RSA2048 mchid="${mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${merchantSerialNo}"`,
        accept: 'application/json',
        'content-type': 'application/json',
        'user-agent': 'payment-compensator demo checkout',
      },
    });
  }

  async function wechatpay(plan: RealPlan, payment: Payment): Promise<void> {
    // The native (QR code) order: out_trade_no is our payment id, time_expire our expiresAt, so
    // WeChat Pay itself refuses a payment after our close.
    const order = JSON.stringify({
      appid: 'wxd678efh567hg6787',
      mchid: CHANNEL_FAKE_IDS.wechatpay.mchid,
      description: `Demo order ${payment.orderId}`,
      out_trade_no: payment.id,
      time_expire: wechatTime(payment.expiresAt),
      notify_url: notifyUrl('wechatpay'),
      amount: { total: payment.amount, currency: payment.currency },
    });
    await expectStatus(await wechatPost('/v3/pay/transactions/native', order), 200, `WeChat Pay native order for ${payment.id}`);
    if (plan === 'notification') {
      // The customer pays; WeChat Pay notifies (TRANSACTION.SUCCESS, encrypted and signed), and we answer 204.
      const paid = await expectStatus(await fetch(`${fake.wechatpay}/pay/${payment.id}`, json('POST', {})), 200, `WeChat Pay payment of ${payment.id}`);
      if (paid.notification?.status !== 204) throw new Error(`WeChat Pay notification for ${payment.id} was answered ${JSON.stringify(paid.notification)}`);
    } else if (plan === 'remedy') {
      await expectStatus(await fetch(`${fake.wechatpay}/script/${payment.id}`, json('PUT', { answers: [{ kind: 'paid' }] })), 204, 'WeChat Pay script');
    }
  }

  async function alipay(plan: RealPlan, payment: Payment): Promise<void> {
    // The fake's way of "the checkout created the trade" (it serves only query and close).
    const trade = (status: string) => fetch(`${fake.alipay}/trades/${payment.id}`, json('PUT', { status, totalAmount: yuan(payment.amount) }));
    await expectStatus(await trade('WAIT_BUYER_PAY'), 204, `Alipay trade for ${payment.id}`);
    if (plan === 'notification') {
      await expectStatus(await trade('TRADE_SUCCESS'), 204, `Alipay payment of ${payment.id}`);
      const sent = await expectStatus(await fetch(`${fake.alipay}/notify/${payment.id}`, json('POST', { url: notifyUrl('alipay') })), 200, `Alipay notification for ${payment.id}`);
      if (sent.status !== 200 || sent.body !== 'success') throw new Error(`Alipay notification for ${payment.id} was answered ${JSON.stringify(sent)}`);
    } else if (plan === 'remedy') {
      await expectStatus(await fetch(`${fake.alipay}/script/${payment.id}`, json('PUT', { answers: [{ kind: 'paid' }] })), 204, 'Alipay script');
    }
  }

  async function stripeFollowUp(plan: RealPlan, intentId: string): Promise<void> {
    if (plan === 'notification') {
      // The customer pays; Stripe sends payment_intent.succeeded, signed with the endpoint secret.
      const sent = await expectStatus(await fetch(`${fake.stripe}/webhooks/send`, json('POST', { url: notifyUrl('stripe'), intentId })), 200, `Stripe webhook for ${intentId}`);
      if (sent.status !== 200) throw new Error(`Stripe webhook for ${intentId} was answered ${JSON.stringify({ status: sent.status, body: sent.body })}`);
    } else if (plan === 'remedy') {
      await expectStatus(await fetch(`${fake.stripe}/script/${intentId}`, json('PUT', { answers: [{ kind: 'intent', status: 'succeeded' }] })), 204, 'Stripe script');
    }
  }

  return {
    /** One payment of `kind` with its order at the channel, its plan set in motion. */
    async create(kind: RealKind, plan: RealPlan, request: { client: CompensatorClient; orderId: string; amount: number; timeoutSeconds: number }): Promise<RealPayment> {
      const { channel, currency } = REAL_CHANNELS.find((c) => c.kind === kind) as (typeof REAL_CHANNELS)[number];
      const body = { orderId: request.orderId, amount: request.amount, currency, channel, timeoutSeconds: request.timeoutSeconds };
      if (kind === 'stripe') {
        // Stripe: the PaymentIntent first, then our payment with orderId = its id, then its
        // metadata.payment_id = our id, before the customer can pay.
        const intent = await stripe.paymentIntents.create({ amount: request.amount, currency: currency.toLowerCase(), metadata: { order_id: request.orderId } });
        const { payment } = await request.client.createPayment({ ...body, orderId: intent.id });
        await stripe.paymentIntents.update(intent.id, { metadata: { payment_id: payment.id } });
        await stripeFollowUp(plan, intent.id);
        return { kind, plan, payment, client: request.client, channelOrder: intent.id };
      }
      const { payment } = await request.client.createPayment(body);
      await (kind === 'wechatpay' ? wechatpay(plan, payment) : alipay(plan, payment));
      return { kind, plan, payment, client: request.client, channelOrder: payment.id };
    },

    /** Whether the channel itself has the order closed (WeChat Pay: our signed close answered 204). */
    async closedAtChannel(real: RealPayment): Promise<boolean> {
      switch (real.kind) {
        case 'wechatpay': {
          const { calls } = (await (await fetch(`${fake.wechatpay}/calls?outTradeNo=${real.channelOrder}`)).json()) as { calls: Array<{ op: string; signed: boolean; answered: string }> };
          return calls.some((c) => c.op === 'close' && c.signed && c.answered === '204');
        }
        case 'alipay':
          return ((await (await fetch(`${fake.alipay}/trades/${real.channelOrder}`)).json()) as { status?: string }).status === 'TRADE_CLOSED';
        case 'stripe':
          return ((await (await fetch(`${fake.stripe}/intents/${real.channelOrder}`)).json()) as { status?: string }).status === 'canceled';
      }
    },

    urls: fake,
  };
}
