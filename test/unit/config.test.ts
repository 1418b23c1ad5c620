import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config-loader';

const REPO_DEFAULTS = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'config', 'default.json'), 'utf8')) as Record<string, any>;
/** Every secret production asks for, so a test can leave out exactly one. */
const ALL_SECRETS = {
  CHANNEL_SECRET_WECHAT: 'wechat-secret-from-env',
  CHANNEL_SECRET_ALIPAY: 'alipay-secret-from-env',
  MERCHANT_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  ADMIN_TOKEN: 'admin-token-from-env-0123456789abcdef',
  DATABASE_URL: 'mysql://app:pw@db.internal:3306/compensator',
  AMQP_URL: 'amqp://app:pw@mq.internal:5672',
};
const channelWarnings = (warnings: string[]) => warnings.filter((w) => w.includes('CHANNEL_SECRET_'));

/** Loads with an explicit environment only, so the developer's shell cannot leak in. */
function load(env: Record<string, string | undefined> = {}, argv: string[] = []) {
  return loadConfig({ env: { NODE_ENV: 'development', ...env }, argv });
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('loadConfig', () => {
  const dirs: string[] = [];

  /** A config dir holding the repository's default.json changed by `edit`, plus extra files. */
  function configDirWith(edit: (defaults: Record<string, any>) => void, extraFiles: Record<string, unknown> = {}): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'config-test-'));
    dirs.push(dir);
    const defaults = structuredClone(REPO_DEFAULTS);
    edit(defaults);
    writeFileSync(path.join(dir, 'default.json'), JSON.stringify(defaults));
    writeFileSync(path.join(dir, 'development.json'), readFileSync(path.resolve(__dirname, '..', '..', 'config', 'development.json')));
    for (const [name, content] of Object.entries(extraFiles)) {
      writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
    }
    return dir;
  }

  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  describe('defaults', () => {
    it('when nothing is set, then the defaults of the configuration table in README.md apply', () => {
      const { config } = load();
      expect(config.env).toBe('development');
      expect(config.role).toBe('all');
      expect(config.http.port).toBe(3000);
      expect(config.http.bodyLimitBytes).toBe(16384);
      expect(config.broker.urls).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
      expect(config.database.url).toMatch(/^mysql:\/\//);
      expect(config.adminToken).toBeUndefined();
      expect(Object.keys(config.channels).sort()).toEqual(['alipay', 'wechat']);
      expect(config.channels.wechat?.timeoutSeconds).toBe(900);
      expect(config.channels.alipay?.timeoutSeconds).toBe(900);
    });

    it('when NODE_ENV is unset, then it is production: with every variable set it loads as production', () => {
      expect(loadConfig({ env: { ...ALL_SECRETS } }).config.env).toBe('production');
    });

    it('when NODE_ENV is unset and nothing is set, then loading fails naming every missing variable at once', () => {
      const err = errorOf(() => loadConfig({ env: {} }));
      expect(err).toBeInstanceOf(ConfigError);
      for (const variable of Object.keys(ALL_SECRETS)) expect(err.message).toContain(variable);
      expect(err.message).toMatch(/NODE_ENV is unset, which means production/);
    });

    it.each(['DATABASE_URL', 'AMQP_URL', 'ADMIN_TOKEN', 'MERCHANT_SECRETS_KEY'])('when NODE_ENV is production and %s is missing, then loading fails naming only it', (variable) => {
      const err = errorOf(() => load({ NODE_ENV: 'production', ...ALL_SECRETS, [variable]: undefined }));
      expect(err.message).toContain(variable);
      for (const other of Object.keys(ALL_SECRETS).filter((v) => v !== variable)) expect(err.message).not.toContain(other);
    });

    it('when MERCHANT_SECRETS_KEY is not base64 of 32 bytes, then loading fails naming it', () => {
      for (const key of ['short', Buffer.alloc(16).toString('base64'), `${Buffer.alloc(32).toString('base64')}!`]) {
        expect(errorOf(() => load({ MERCHANT_SECRETS_KEY: key })).message).toMatch(/MERCHANT_SECRETS_KEY must be base64 of 32 bytes/);
      }
    });

    it('when MERCHANT_SECRETS_KEY is unset in development, then a development key is used and a warning says so', () => {
      const { config, warnings } = load({});
      expect(Buffer.from(config.merchantSecretsKey, 'base64')).toHaveLength(32);
      expect(warnings).toEqual(expect.arrayContaining([expect.stringMatching(/MERCHANT_SECRETS_KEY is not set/)]));
    });

    it('when NODE_ENV is test, then config/test.json is merged over the defaults', () => {
      const { config } = load({ NODE_ENV: 'test' });
      expect(config.env).toBe('test');
      expect(config.database.url).toMatch(/\/compensator_test$/);
      // Keys test.json does not mention keep their defaults.
      expect(config.http.port).toBe(3000);
    });

    it('when NODE_ENV is something else, then loading fails naming NODE_ENV', () => {
      const err = errorOf(() => load({ NODE_ENV: 'staging' }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/NODE_ENV/);
      expect(err.message).toMatch(/staging/);
    });
  });

  describe('unknown keys', () => {
    it('when overrides add an unknown top-level key, then loading fails naming the key', () => {
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'development' }, overrides: { colour: 'blue' } }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/colour/);
    });

    it('when default.json has an unknown nested key, then loading fails naming the key and its section', () => {
      const configDir = configDirWith((d) => {
        d.http.keepAliveMs = 5000;
      });
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'development' }, configDir }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/http/);
      expect(err.message).toMatch(/keepAliveMs/);
    });

    it('when a channel has an unknown key, then loading fails naming the channel and the key', () => {
      const configDir = configDirWith((d) => {
        d.channels.wechat.retries = 3;
      });
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'development' }, configDir }));
      expect(err.message).toMatch(/channels\.wechat/);
      expect(err.message).toMatch(/retries/);
    });

    it('when a config file is not valid JSON, then loading fails naming the file', () => {
      const dir = configDirWith(() => {}, { 'development.json': '{ "http": ' });
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'development' }, configDir: dir }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain(path.join(dir, 'development.json'));
    });
  });

  describe('real channel credentials', () => {
    const wxpay = { timeoutSeconds: 900, adapter: { type: 'wechatpay', mchid: '1900000109', merchantSerialNo: '5157F09EFDC096DE15EBE81A47057A7232F1B8E1', platformSerial: 'PUB_KEY_ID_0114232134912410000000000' } };
    const withWxpay = () => configDirWith((d) => (d.channels.wxpay = wxpay));
    const pem = '-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----';

    it('when a wechatpay channel is configured without its credentials, then loading fails naming each variable, in development too', () => {
      const err = errorOf(() => loadConfig({ configDir: withWxpay(), env: { NODE_ENV: 'development' } }));
      for (const v of ['CHANNEL_WXPAY_PRIVATE_KEY', 'CHANNEL_WXPAY_API_V3_KEY', 'CHANNEL_WXPAY_PLATFORM_PUBLIC_KEY']) expect(err.message).toContain(v);
      expect(err.message).toMatch(/^NODE_ENV is development/);
    });

    it('when its credentials are in the environment, then they fill the channel, a PEM\'s escaped newlines become newlines, and no generic secret is asked for', () => {
      const { config, warnings } = loadConfig({ configDir: withWxpay(), env: { NODE_ENV: 'development', CHANNEL_WXPAY_PRIVATE_KEY: pem, CHANNEL_WXPAY_API_V3_KEY: 'k'.repeat(32), CHANNEL_WXPAY_PLATFORM_PUBLIC_KEY: pem } });
      expect(config.channels.wxpay?.credentials.PRIVATE_KEY).toBe('-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----');
      expect(config.channels.wxpay?.credentials.API_V3_KEY).toBe('k'.repeat(32));
      expect(config.channels.wxpay?.secret).toBeUndefined();
      expect(warnings.join(' ')).not.toContain('CHANNEL_SECRET_WXPAY');
    });

    it('when a real channel is configured to close without asking, or over plain http in production, then loading fails naming the field', () => {
      const creds = { CHANNEL_WXPAY_PRIVATE_KEY: pem, CHANNEL_WXPAY_API_V3_KEY: 'k'.repeat(32), CHANNEL_WXPAY_PLATFORM_PUBLIC_KEY: pem };
      const blind = configDirWith((d) => (d.channels.wxpay = { ...wxpay, queryBeforeClose: false }));
      expect(errorOf(() => loadConfig({ configDir: blind, env: { NODE_ENV: 'development', ...creds } })).message).toMatch(/channels\.wxpay\.queryBeforeClose: a real channel is always asked/);
      const plain = configDirWith((d) => (d.channels.wxpay = { ...wxpay, adapter: { ...wxpay.adapter, baseUrl: 'http://wechat.internal' } }));
      expect(errorOf(() => loadConfig({ configDir: plain, env: { ...ALL_SECRETS, NODE_ENV: 'production', ...creds } })).message).toMatch(/channels\.wxpay\.adapter\.baseUrl: must be https in production/);
      expect(loadConfig({ configDir: plain, env: { NODE_ENV: 'development', ...creds } }).config.channels.wxpay?.adapter).toMatchObject({ baseUrl: 'http://wechat.internal' });
    });

    it('when a file sets a channel\'s credentials, then loading fails: credentials come only from the environment', () => {
      const dir = configDirWith((d) => (d.channels.wxpay = { ...wxpay, credentials: { PRIVATE_KEY: 'x' } }));
      expect(errorOf(() => loadConfig({ configDir: dir, env: { NODE_ENV: 'development' } })).message).toMatch(/channels\.wxpay\.credentials must not be set in a file/);
    });
  });

  describe('channel secrets', () => {
    it('when NODE_ENV is production and a channel secret is missing, then loading fails naming the variable', () => {
      const err = errorOf(() => load({ NODE_ENV: 'production', ...ALL_SECRETS, CHANNEL_SECRET_ALIPAY: undefined }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/CHANNEL_SECRET_ALIPAY/);
      expect(err.message).not.toMatch(/CHANNEL_SECRET_WECHAT/);
    });

    it('when NODE_ENV is production and a channel secret is empty, then loading fails naming the variable', () => {
      const err = errorOf(() => load({ NODE_ENV: 'production', ...ALL_SECRETS, CHANNEL_SECRET_WECHAT: '' }));
      expect(err.message).toMatch(/CHANNEL_SECRET_WECHAT/);
    });

    it('when NODE_ENV is production and every secret is set, then the secrets come from the environment with no warnings', () => {
      const { config, warnings } = load({ NODE_ENV: 'production', ...ALL_SECRETS });
      expect(config.channels.wechat?.secret).toBe('wechat-secret-from-env');
      expect(config.channels.alipay?.secret).toBe('alipay-secret-from-env');
      expect(warnings).toEqual([]);
    });

    it('when a secret is missing in development, then a dev secret is filled and a warning names the variable', () => {
      const { config, warnings } = load({ CHANNEL_SECRET_ALIPAY: 'alipay-secret-from-env' });
      expect(config.channels.wechat?.secret).toBe('dev-secret-wechat');
      expect(config.channels.alipay?.secret).toBe('alipay-secret-from-env');
      expect(channelWarnings(warnings)).toHaveLength(1);
      expect(channelWarnings(warnings)[0]).toMatch(/CHANNEL_SECRET_WECHAT/);
    });

    it('when a secret is missing in test, then a dev secret is filled too', () => {
      const { config, warnings } = load({ NODE_ENV: 'test' });
      expect(config.channels.wechat?.secret).toBe('dev-secret-wechat');
      expect(config.channels.alipay?.secret).toBe('dev-secret-alipay');
      expect(channelWarnings(warnings)).toHaveLength(2);
    });

    it('when a channel secret is in default.json, then loading fails and points at the variable', () => {
      const configDir = configDirWith((d) => {
        d.channels.wechat.secret = 'do-not-commit-me';
      });
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'development', ...ALL_SECRETS }, configDir }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/channels\.wechat\.secret/);
      expect(err.message).toMatch(/CHANNEL_SECRET_WECHAT/);
      expect(err.message).not.toContain('do-not-commit-me');
    });

    it('when a channel secret is in the NODE_ENV file, then loading fails too', () => {
      const configDir = configDirWith(() => {}, { 'production.json': { channels: { alipay: { secret: 'x' } } } });
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'production', ...ALL_SECRETS }, configDir }));
      expect(err.message).toMatch(/channels\.alipay\.secret/);
    });

    it('when another channel is configured, then its secret comes from CHANNEL_SECRET_ and its name in upper case', () => {
      const configDir = configDirWith((d) => {
        d.channels.union_pay = { timeoutSeconds: 600 };
      });
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'production', ...ALL_SECRETS }, configDir }));
      expect(err.message).toMatch(/CHANNEL_SECRET_UNION_PAY/);
      const { config } = loadConfig({ env: { NODE_ENV: 'production', ...ALL_SECRETS, CHANNEL_SECRET_UNION_PAY: 'u' }, configDir });
      expect(config.channels.union_pay).toEqual(expect.objectContaining({ timeoutSeconds: 600, secret: 'u' }));
    });
  });

  describe('environment variables', () => {
    it('when PORT, ROLE, DATABASE_URL and ADMIN_TOKEN are set, then they override the files', () => {
      const { config } = load({
        PORT: '8080',
        ROLE: 'api',
        DATABASE_URL: 'mysql://u:p@db.internal:3307/payments',
        ADMIN_TOKEN: 'an-admin-token-of-32-characters!',
      });
      expect(config.http.port).toBe(8080);
      expect(config.role).toBe('api');
      expect(config.database.url).toBe('mysql://u:p@db.internal:3307/payments');
      expect(config.adminToken).toBe('an-admin-token-of-32-characters!');
    });

    it('when AMQP_URL is a comma-separated list, then every trimmed entry becomes a broker url', () => {
      const { config } = load({ AMQP_URL: 'amqp://u:p@rabbit-1:5672/v, amqp://u:p@rabbit-2:5672/v ,amqps://u:p@rabbit-3:5671/v' });
      expect(config.broker.urls).toEqual(['amqp://u:p@rabbit-1:5672/v', 'amqp://u:p@rabbit-2:5672/v', 'amqps://u:p@rabbit-3:5671/v']);
    });

    it('when AMQP_URL is a single url, then it is the only broker url', () => {
      expect(load({ AMQP_URL: 'amqp://u:p@rabbit:5672' }).config.broker.urls).toEqual(['amqp://u:p@rabbit:5672']);
    });

    it('when --role worker is passed, then it overrides ROLE', () => {
      expect(load({ ROLE: 'api' }, ['--role', 'worker']).config.role).toBe('worker');
      expect(load({ ROLE: 'api' }, ['--role=worker']).config.role).toBe('worker');
      expect(load({}, ['node', 'dist/main.js', '--role', 'worker']).config.role).toBe('worker');
    });

    it.each(['abc', '', '-1', '80.5', '3000x'])('when PORT is "%s", then loading fails with a message naming PORT and the value', (port) => {
      const err = errorOf(() => load({ PORT: port }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/PORT must be a whole number/);
      expect(err.message).toContain(`"${port}"`);
    });

    it('when PORT is above 65535, then loading fails naming the port key and the limit', () => {
      const err = errorOf(() => load({ PORT: '70000' }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/http\.port/);
      expect(err.message).toMatch(/65535/);
    });

    it('when ROLE is not a known role, then loading fails naming role', () => {
      const err = errorOf(() => load({ ROLE: 'scheduler' }));
      expect(err.message).toMatch(/role/);
    });

    it('when DATABASE_URL is not a mysql url, then loading fails saying so', () => {
      const err = errorOf(() => load({ DATABASE_URL: 'postgres://u:p@db/x' }));
      expect(err.message).toMatch(/DATABASE_URL must start with mysql:\/\//);
    });

    it('when an AMQP_URL entry is not an amqp url, then loading fails saying so', () => {
      const err = errorOf(() => load({ AMQP_URL: 'amqp://ok:5672,http://not-a-broker' }));
      expect(err.message).toMatch(/broker\.urls/);
      expect(err.message).toMatch(/AMQP_URL entries must start with amqp:\/\//);
    });

    it('when ADMIN_TOKEN is shorter than 32 characters, then loading fails naming ADMIN_TOKEN', () => {
      const err = errorOf(() => load({ ADMIN_TOKEN: 'a'.repeat(31) }));
      expect(err.message).toMatch(/ADMIN_TOKEN must be at least 32 characters/);
      expect(load({ ADMIN_TOKEN: 'a'.repeat(32) }).config.adminToken).toBe('a'.repeat(32));
    });

    it('when production is given a well-known default password, then loading fails naming each variable, and real ones load', () => {
      const weak = {
        ...ALL_SECRETS,
        DATABASE_URL: 'mysql://compensator:compensator@db.internal:3306/compensator',
        MIGRATION_DATABASE_URL: 'mysql://compensator_owner:compensator_owner@db.internal:3306/compensator',
        AMQP_URL: 'amqp://app:pw@mq-1:5672,amqp://guest:guest@mq-2:5672',
        RABBITMQ_MANAGEMENT_URL: 'http://guest:guest@mq-1:15672',
      };
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'production', ...weak } }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain('no password or a well-known default one: DATABASE_URL, MIGRATION_DATABASE_URL, AMQP_URL, RABBITMQ_MANAGEMENT_URL');
      const { config } = loadConfig({ env: { NODE_ENV: 'production', ...ALL_SECRETS, RABBITMQ_MANAGEMENT_URL: 'http://app:pw@mq-1:15672' } });
      expect(config.broker.managementUrl).toBe('http://app:pw@mq-1:15672');
    });

    it.each([
      ['an AMQP URL without a user (amqplib logs in as guest)', { AMQP_URL: 'amqp://mq.internal:5672' }, 'AMQP_URL'],
      ['an empty password', { DATABASE_URL: 'mysql://app:@db.internal:3306/compensator' }, 'DATABASE_URL'],
      ['a user without a password', { DATABASE_URL: 'mysql://root@db.internal:3306/compensator' }, 'DATABASE_URL'],
      ['an escaped default password', { AMQP_URL: 'amqp://guest:%67uest@mq.internal:5672' }, 'AMQP_URL'],
      ['an escape that does not decode', { AMQP_URL: 'amqp://app:%u0067uest@mq.internal:5672' }, 'AMQP_URL'],
    ])('when production is given %s, then loading fails naming the variable', (_what, env, variable) => {
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'production', ...ALL_SECRETS, ...env } }));
      expect(err.message).toMatch(new RegExp(`no password or a well-known default one: ${variable}`));
    });

    it('when production names no management URL, then none is assumed (the backlog answers 503)', () => {
      const { config } = loadConfig({ env: { NODE_ENV: 'production', ...ALL_SECRETS } });
      expect(config.broker.managementUrl).toBeUndefined();
      expect(config.database.url).toBe(ALL_SECRETS.DATABASE_URL);
    });

    it('when only DATABASE_URL is set, then it is also the migration URL; MIGRATION_DATABASE_URL overrides that', () => {
      expect(load({ DATABASE_URL: 'mysql://u:p@db:3306/other' }).config.database.migrationUrl).toBe('mysql://u:p@db:3306/other');
      const both = load({ DATABASE_URL: 'mysql://u:p@db:3306/x', MIGRATION_DATABASE_URL: 'mysql://owner:p@db:3306/x' }).config.database;
      expect([both.url, both.migrationUrl]).toEqual(['mysql://u:p@db:3306/x', 'mysql://owner:p@db:3306/x']);
      const local = load().config.database;
      expect(new URL(local.migrationUrl as string).username).toBe('compensator_owner');
      expect(new URL(local.url).username).toBe('compensator');
    });

    it('when outbox.relayMinAgeMs is below 1000, then loading fails naming the key, and 1000 loads', () => {
      const tooYoung = configDirWith((d) => (d.outbox.relayMinAgeMs = 200));
      const err = errorOf(() => loadConfig({ env: { NODE_ENV: 'development' }, configDir: tooYoung }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/outbox\.relayMinAgeMs must be at least 1000/);
      const enough = configDirWith((d) => (d.outbox.relayMinAgeMs = 1000));
      expect(loadConfig({ env: { NODE_ENV: 'development' }, configDir: enough }).config.outbox.relayMinAgeMs).toBe(1000);
    });
  });
});
