import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapters } from '../../src/channels/create-adapters';
import { deepMerge, loadConfig } from '../../src/config/config-loader';
import type { PaymentResource } from '../../src/payments/payment-resource';
import { generatePublicId } from '../../src/payments/payments-service';
import { createOutboundHttp } from '../../src/shared/outbound-http';
import { CHANNEL_FAKE_IDS, channelFakeCredentials, generateChannelFakeKeys, readChannelFakeKeys, startChannelFakes } from '../../src/simulator/channel-fakes';

/**
 * The local stack's channel fakes (scripts/stack/apps.sh runs src/simulator/channel-fakes-main.ts
 * as `fakes`): the keys file they make once, and the CHANNEL_<NAME>_* credentials it gives the apps
 * for config/demo.json's real channels, which the service then loads and uses against the fakes.
 * test/e2e/scale-out.test.ts runs them in the stack itself, next to the apps.
 */
const root = path.resolve(__dirname, '..', '..');
const demoConfig = path.join(root, 'config', 'demo.json');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function fakesMain(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(tsx, [path.join(root, 'src', 'simulator', 'channel-fakes-main.ts'), ...args], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: `${r.stderr}${r.error ? String(r.error) : ''}` };
}

/** The `env` command's lines as variables (PEM newlines stay escaped, as the stack passes them). */
function parseEnv(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trim().split('\n').filter(Boolean).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pc-fakes-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the channel fakes of the local stack', () => {
  it('generate their keys once into a file of mode 600, print none of them, and keep them across restarts', () => {
    const file = path.join(dir, 'channel-fakes', 'keys.json');
    const first = fakesMain(['keys', file]);
    expect(first).toMatchObject({ status: 0, stdout: expect.stringContaining('generated new channel fake keys') });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const keys = readFileSync(file, 'utf8');
    const again = fakesMain(['keys', file]);
    expect(again).toMatchObject({ status: 0, stdout: '' });
    expect(readFileSync(file, 'utf8')).toBe(keys);
    expect(`${first.stdout}${first.stderr}`).not.toMatch(/PRIVATE KEY|sk_test_|whsec_/);
  });

  it("give config/demo.json's wechatpay, alipay_rsa2 and stripe channels their credentials, with which the service loads them and the fakes answer", async () => {
    const file = path.join(dir, 'pair', 'keys.json');
    expect(fakesMain(['keys', file]).status).toBe(0);
    // The fakes on free ports of this test's own, and the demo config pointed at them.
    const fakes = await startOnFreePorts(file);
    try {
      const demo = JSON.parse(readFileSync(demoConfig, 'utf8'));
      const config = path.join(dir, 'demo.json');
      writeFileSync(config, JSON.stringify(deepMerge(demo, { channels: { wechatpay: { adapter: { baseUrl: fakes.urls.wechatpay } }, alipay_rsa2: { adapter: { gateway: fakes.urls.alipay } }, stripe: { adapter: { baseUrl: fakes.urls.stripe } } } })));
      const printed = fakesMain(['env', file], { NODE_ENV: 'test', COMPENSATOR_CONFIG: config, CHANNEL_FAKES_BASE_PORT: String(fakes.basePort) });
      expect(printed).toMatchObject({ status: 0, stderr: '' });
      const env = parseEnv(printed.stdout);
      // Only the channels pointed at a fake: wechat and alipay are the generic simulator's.
      expect(Object.keys(env).sort()).toEqual([
        'CHANNEL_ALIPAY_RSA2_ALIPAY_PUBLIC_KEY',
        'CHANNEL_ALIPAY_RSA2_PRIVATE_KEY',
        'CHANNEL_STRIPE_SECRET_KEY',
        'CHANNEL_STRIPE_WEBHOOK_SECRET',
        'CHANNEL_WECHATPAY_API_V3_KEY',
        'CHANNEL_WECHATPAY_PLATFORM_PUBLIC_KEY',
        'CHANNEL_WECHATPAY_PRIVATE_KEY',
      ]);
      const { config: loaded } = loadConfig({ env: { NODE_ENV: 'test', COMPENSATOR_CONFIG: config, ...env } });
      const keys = readChannelFakeKeys(file);
      expect(loaded.channels.wechatpay?.credentials.PRIVATE_KEY).toBe(keys.wechatpay.merchantPrivateKey);
      expect(loaded.channels.alipay_rsa2?.credentials.ALIPAY_PUBLIC_KEY).toBe(keys.alipay.alipayPublicKey);
      expect(loaded.channels.stripe?.credentials.SECRET_KEY).toBe(keys.stripe.secretKey);

      // The adapters the workers build from that config: each request verifies at its fake, and
      // each answer verifies with the fake's key (a missing order is not paid).
      const adapters = createAdapters(loaded, createOutboundHttp({ policy: { allowLoopback: true, allowPrivateHosts: [] } }));
      const at = new Date().toISOString();
      const payment = (channel: string, orderId: string): PaymentResource => ({ id: generatePublicId(), merchantId: 'm_1', orderId, amount: 1999, currency: channel === 'stripe' ? 'USD' : 'CNY', channel, status: 'PENDING', createdAt: at, expiresAt: at, paidAt: null, closedAt: null, transactionId: null });
      for (const [channel, orderId] of [['wechatpay', 'o-1'], ['alipay_rsa2', 'o-2'], ['stripe', 'pi_3NotCreatedAtTheFake0001']] as const) {
        const answer = await adapters.get(channel)?.queryOrder(payment(channel, orderId), { attempt: 1 }).catch((err: unknown) => `${channel} at ${fakes.urls[channel === 'alipay_rsa2' ? 'alipay' : channel]}: ${String(err)}`);
        expect(answer).toMatchObject({ status: 'NOT_PAID' });
      }
    } finally {
      await fakes.close();
    }
  });

  it('refuse a channel pointed at a fake with ids the fake does not expect, and give nothing to a channel pointed elsewhere', () => {
    const keys = generateChannelFakeKeys();
    const wechat = { type: 'wechatpay', baseUrl: 'http://127.0.0.1:4101', ...CHANNEL_FAKE_IDS.wechatpay };
    expect(Object.keys(channelFakeCredentials({ pay: { adapter: wechat } }, keys, 4101))).toEqual(['CHANNEL_PAY_PRIVATE_KEY', 'CHANNEL_PAY_API_V3_KEY', 'CHANNEL_PAY_PLATFORM_PUBLIC_KEY']);
    expect(() => channelFakeCredentials({ pay: { adapter: { ...wechat, mchid: '1230000109' } } }, keys, 4101)).toThrow(/channels\.pay\.adapter\.mchid must be 1900000109/);
    expect(channelFakeCredentials({ pay: { adapter: { ...wechat, baseUrl: 'https://api.mch.weixin.qq.com' } }, card: { adapter: { type: 'stripe' } } }, keys, 4101)).toEqual({});
  });

  it('leave the development and test configs loadable without any channel credential: only demo.json has real channels', () => {
    for (const nodeEnv of ['development', 'test']) {
      const { config } = loadConfig({ env: { NODE_ENV: nodeEnv } });
      expect(Object.values(config.channels).map((c) => c.adapter.type).filter((t) => ['wechatpay', 'alipay', 'stripe'].includes(t))).toEqual([]);
    }
    expect(() => loadConfig({ env: { NODE_ENV: 'development', COMPENSATOR_CONFIG: demoConfig } })).toThrow(/CHANNEL_WECHATPAY_PRIVATE_KEY/);
  });
});

/**
 * The three fakes on three consecutive free ports (another process may take one first: try again),
 * below Linux's ephemeral range (32768 and up), which outgoing connections take ports from.
 */
async function startOnFreePorts(file: string) {
  for (let attempt = 1; ; attempt++) {
    const basePort = 20000 + Math.floor(Math.random() * 12000);
    try {
      return { basePort, ...(await startChannelFakes({ keys: readChannelFakeKeys(file), basePort })) };
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}
