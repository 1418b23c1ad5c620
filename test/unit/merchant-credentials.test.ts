import { createSecretBox, digestsEqual, generateApiKey, generateWebhookSecret, hashApiKey, looksLikeApiKey, parseSecretsKey } from '../../src/merchants/merchant-credentials';
import { parseSignatureHeader, signGatewayRequest, verifyGatewaySignature } from '../../src/shared/gateway-signature';

describe('merchant credentials', () => {
  const box = createSecretBox(Buffer.alloc(32, 1));

  it('when a secret is sealed, then it opens for its merchant only, and not under another key or after tampering', () => {
    const secret = generateWebhookSecret();
    const sealed = box.seal(secret, 'm_1');
    expect(sealed).not.toContain(secret.slice(6));
    expect(box.open(sealed, 'm_1')).toBe(secret);
    expect(() => box.open(sealed, 'm_2')).toThrow();
    expect(() => createSecretBox(Buffer.alloc(32, 2)).open(sealed, 'm_1')).toThrow();
    const raw = Buffer.from(sealed.slice(3), 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
    expect(() => box.open(`v1:${raw.toString('base64')}`, 'm_1')).toThrow();
    // Two seals of one secret differ (a fresh nonce each time).
    expect(box.seal(secret, 'm_1')).not.toBe(sealed);
  });

  it('when keys are made, then they have their documented shapes and hash to 64 hex characters', () => {
    const key = generateApiKey();
    expect(looksLikeApiKey(key)).toBe(true);
    expect(looksLikeApiKey(`${key}x`)).toBe(false);
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(digestsEqual(hashApiKey(key), hashApiKey(key))).toBe(true);
    expect(digestsEqual(hashApiKey(key), hashApiKey(generateApiKey()))).toBe(false);
    expect(digestsEqual('', '')).toBe(false);
    expect(Buffer.from(generateWebhookSecret().slice(6), 'base64')).toHaveLength(32);
  });

  it('when MERCHANT_SECRETS_KEY is parsed, then only base64 of 32 bytes is a key', () => {
    expect(parseSecretsKey(Buffer.alloc(32, 3).toString('base64'))).toHaveLength(32);
    expect(parseSecretsKey(Buffer.alloc(31).toString('base64'))).toBeUndefined();
    expect(parseSecretsKey('not base64!')).toBeUndefined();
  });
});

describe('the gateway signature (t=..., v1=...)', () => {
  const now = Date.UTC(2026, 11, 1, 12, 0, 0);
  const body = '{"result":"SUCCESS"}';

  it('when a request is signed, then it verifies for that payment, body and time only', () => {
    const header = signGatewayRequest('s3cret', 'pay_A', body, now);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyGatewaySignature('s3cret', 'pay_A', body, header, now)).toEqual({ ok: true });
    expect(verifyGatewaySignature('s3cret', 'pay_B', body, header, now).ok).toBe(false);
    expect(verifyGatewaySignature('s3cret', 'pay_A', `${body} `, header, now).ok).toBe(false);
    expect(verifyGatewaySignature('other', 'pay_A', body, header, now).ok).toBe(false);
    expect(verifyGatewaySignature('s3cret', 'pay_A', body, header, now + 300_000).ok).toBe(true);
    expect(verifyGatewaySignature('s3cret', 'pay_A', body, header, now + 301_000)).toEqual({ ok: false, reason: expect.stringMatching(/300 s/) });
  });

  it('when a header lists a second v1 or an unknown scheme, then any matching v1 verifies', () => {
    const good = signGatewayRequest('s3cret', 'pay_A', body, now);
    const [t, v1] = good.split(',');
    expect(verifyGatewaySignature('s3cret', 'pay_A', body, `${t},v1=${'0'.repeat(64)},${v1},v9=zzz`, now).ok).toBe(true);
  });

  it.each(['', 't=1', 'v1=ab', 't=x,v1=' + 'a'.repeat(64), 't=1,t=2,v1=' + 'a'.repeat(64), 't=1,v1=' + 'A'.repeat(64), 't=1,v1', `t=1,v1=${'a'.repeat(2000)}`])('when the header is %j, then it is malformed', (header) => {
    expect(parseSignatureHeader(header)).toBeUndefined();
  });
});
