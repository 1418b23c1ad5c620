import { Webhook } from 'standardwebhooks';
import { signCallback, verifyNotification, WebhookVerificationError } from '../../clients/typescript/src';
import { generateWebhookSecret } from '../../src/merchants/merchant-credentials';
import { webhookHeaders } from '../../src/notifications/notification-signing';
import { verifyGatewaySignature } from '../../src/shared/gateway-signature';

/** The client's two signature helpers, against the service's own signer and verifier. */
describe('the TypeScript client: verifying a notification (Standard Webhooks)', () => {
  const secret = generateWebhookSecret();
  const other = generateWebhookSecret();
  const body = JSON.stringify({ eventId: 'evt_1', type: 'payment.paid', payment: { id: 'pay_1', status: 'PAID' } });
  const at = new Date('2026-12-01T12:00:00.000Z');
  const nowMs = at.getTime();

  it('when the service signed it with the merchant secret, then it verifies and answers the event', async () => {
    const headers = webhookHeaders([secret], 'evt_1', at, body);
    await expect(verifyNotification(body, headers, secret, { nowMs })).resolves.toEqual(JSON.parse(body));
    // As fetch's Headers and as raw bytes too.
    await expect(verifyNotification(new TextEncoder().encode(body), new Headers(headers), secret, { nowMs })).resolves.toMatchObject({ eventId: 'evt_1' });
  });

  it('when a rotation puts two signatures in the header, then either secret verifies it', async () => {
    const headers = webhookHeaders([other, secret], 'evt_1', at, body);
    expect(headers['webhook-signature']?.split(' ')).toHaveLength(2);
    await expect(verifyNotification(body, headers, secret, { nowMs })).resolves.toMatchObject({ type: 'payment.paid' });
    await expect(verifyNotification(body, headers, other, { nowMs })).resolves.toMatchObject({ type: 'payment.paid' });
  });

  it.each([
    ['another secret', () => webhookHeaders([other], 'evt_1', at, body), body, nowMs],
    ['another body', () => webhookHeaders([secret], 'evt_1', at, body), body.replace('PAID', 'FAILED'), nowMs],
    ['another id', () => ({ ...webhookHeaders([secret], 'evt_1', at, body), 'webhook-id': 'evt_2' }), body, nowMs],
    ['a timestamp 301 s old', () => webhookHeaders([secret], 'evt_1', at, body), body, nowMs + 301_000],
    ['a timestamp 301 s ahead', () => webhookHeaders([secret], 'evt_1', at, body), body, nowMs - 301_000],
    ['no signature header', () => ({ 'webhook-id': 'evt_1', 'webhook-timestamp': String(nowMs / 1000) }), body, nowMs],
    ['a v2 signature only', () => ({ ...webhookHeaders([secret], 'evt_1', at, body), 'webhook-signature': 'v2,AAAA' }), body, nowMs],
    ['a signature that is not base64', () => ({ ...webhookHeaders([secret], 'evt_1', at, body), 'webhook-signature': 'v1,%%%' }), body, nowMs],
  ])('when it carries %s, then it is rejected', async (_case, headersOf, received, now) => {
    await expect(verifyNotification(received, headersOf(), secret, { nowMs: now })).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it('when the timestamp is 300 s old, then it still verifies (the window is inclusive)', async () => {
    await expect(verifyNotification(body, webhookHeaders([secret], 'evt_1', at, body), secret, { nowMs: nowMs + 300_000 })).resolves.toBeDefined();
  });

  it('agrees with the standardwebhooks library on what verifies', async () => {
    const now = new Date();
    const headers = webhookHeaders([secret], 'evt_9', now, body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    await expect(verifyNotification(body, headers, secret)).resolves.toEqual(JSON.parse(body));
  });
});

describe('the TypeScript client: signing a callback for the generic gateway', () => {
  const channelSecret = 'dev-secret-wechat';
  const raw = JSON.stringify({ result: 'SUCCESS', transactionId: 'wx-42', paidAmount: 1999 });

  it("when it signs a payment's callback, then the service's verifier accepts it for that payment and body only", async () => {
    const nowMs = Date.parse('2026-12-01T12:00:00.000Z');
    const header = await signCallback(channelSecret, 'pay_1', raw, { nowMs });
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyGatewaySignature(channelSecret, 'pay_1', raw, header, nowMs)).toEqual({ ok: true });
    expect(verifyGatewaySignature(channelSecret, 'pay_2', raw, header, nowMs).ok).toBe(false);
    expect(verifyGatewaySignature(channelSecret, 'pay_1', raw.replace('1999', '1'), header, nowMs).ok).toBe(false);
    expect(verifyGatewaySignature('another-secret', 'pay_1', raw, header, nowMs).ok).toBe(false);
    expect(verifyGatewaySignature(channelSecret, 'pay_1', raw, header, nowMs + 301_000).ok).toBe(false);
  });

  it('signs bytes as it signs their text', async () => {
    const nowMs = Date.now();
    expect(await signCallback(channelSecret, 'pay_1', new TextEncoder().encode(raw), { nowMs })).toBe(await signCallback(channelSecret, 'pay_1', raw, { nowMs }));
  });
});
