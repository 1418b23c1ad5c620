import path from 'node:path';
import { CHANNEL_FAKES_DEFAULT_BASE_PORT, channelFakeCredentials, configuredChannels, ensureChannelFakeKeys, readChannelFakeKeys, startChannelFakes } from './channel-fakes';

/*
 * The local stack's channel fakes (scripts/stack/apps.sh starts it as `fakes`):
 *   node dist/simulator/channel-fakes-main.js keys FILE    creates the keys file (mode 600) unless it exists; prints no key
 *   node dist/simulator/channel-fakes-main.js env FILE     the apps' CHANNEL_<NAME>_<CREDENTIAL>=value lines (PEM newlines
 *                                                         as \n) for the channels their config (NODE_ENV, COMPENSATOR_CONFIG)
 *                                                         points at the fakes; secrets, so never to a terminal
 *   node dist/simulator/channel-fakes-main.js serve FILE   WeChat Pay on CHANNEL_FAKES_BASE_PORT (4101), Alipay on +1,
 *                                                         Stripe on +2, on CHANNEL_FAKES_HOST (127.0.0.1)
 */

const CONFIG_DIR = path.resolve(__dirname, '..', '..', 'config');

function basePort(): number {
  const value = process.env.CHANNEL_FAKES_BASE_PORT ?? String(CHANNEL_FAKES_DEFAULT_BASE_PORT);
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65533) throw new Error(`CHANNEL_FAKES_BASE_PORT must be a port number up to 65533, got "${value}"`);
  return Number(value);
}

async function serve(file: string): Promise<void> {
  const fakes = await startChannelFakes({ keys: readChannelFakeKeys(file), basePort: basePort(), host: process.env.CHANNEL_FAKES_HOST ?? '127.0.0.1' });
  process.stdout.write(`channel fakes listening: WeChat Pay ${fakes.urls.wechatpay}, Alipay ${fakes.urls.alipay}, Stripe ${fakes.urls.stripe}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 5000).unref();
    void fakes.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main(): Promise<void> {
  const [command, file] = process.argv.slice(2);
  if (!file || !['keys', 'env', 'serve'].includes(command ?? '')) {
    process.stderr.write('usage: channel-fakes-main.js keys|env|serve KEYS_FILE\n');
    process.exit(2);
  }
  if (command === 'keys') {
    const { created } = ensureChannelFakeKeys(file);
    if (created) process.stdout.write(`generated new channel fake keys in ${file} (mode 600)\n`);
  } else if (command === 'env') {
    if (process.stdout.isTTY) throw new Error('env prints private keys: it is for scripts/stack.sh, not a terminal');
    const credentials = channelFakeCredentials(configuredChannels(CONFIG_DIR, process.env), readChannelFakeKeys(file), basePort());
    // One line each: the service reads a PEM's \n as a newline (config-loader.ts).
    for (const [name, value] of Object.entries(credentials)) process.stdout.write(`${name}=${value.replace(/\r?\n/g, '\\n')}\n`);
  } else {
    await serve(file);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`channel fakes: ${(err as Error).message}\n`);
  process.exit(1);
});
