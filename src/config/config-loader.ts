import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { configSchema, REAL_CHANNEL_CREDENTIALS, type Config, type RealChannelType } from './config-schema';

type Json = Record<string, unknown>;

export class ConfigError extends Error {}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  argv?: string[];
  configDir?: string;
  /** Deep-merged last; tests use it to shorten schedules and pick a queue prefix. */
  overrides?: Json;
}

export interface LoadedConfig {
  config: Config;
  /** Things worth one log line at start, e.g. development secrets in use. */
  warnings: string[];
}

/** Development and test only: a fixed, public key, so the local stack's secrets survive restarts. */
const DEV_MERCHANT_SECRETS_KEY = Buffer.alloc(32, 'payment-compensator-development').toString('base64');

const DEFAULT_CONFIG_DIR = path.resolve(__dirname, '..', '..', 'config');

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: Json, extra: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function readJson(file: string): Json {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!isPlainObject(parsed)) throw new Error('top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
  }
}

function roleFromArgv(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--role' || a.startsWith('--role='));
  if (i < 0) return undefined;
  const arg = argv[i] as string;
  return arg.includes('=') ? arg.slice('--role='.length) : argv[i + 1];
}

function integerFromEnv(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number, got "${value}"`);
  return Number(value);
}

/** The local stack's and the images' defaults: never accepted in production. */
const DEFAULT_CREDENTIALS = new Set(['guest', 'compensator', 'compensator_owner', 'admin', 'root', 'password']);

/**
 * A password production must not run on: none at all (an AMQP URL without a user logs in as
 * guest/guest), a well-known one, or one whose escapes do not decode (a client may decode them
 * otherwise, as amqplib's unescape does).
 */
function hasDefaultCredentials(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return false; // the schema names a malformed URL
  }
  const { username, password } = parsed;
  if (username === '' || password === '') return true;
  try {
    const decoded = [decodeURIComponent(password), unescape(password)];
    return decoded.some((p) => DEFAULT_CREDENTIALS.has(p));
  } catch {
    return true;
  }
}

/**
 * Builds the typed Config: config/default.json, then config/<NODE_ENV>.json, then the
 * fixed environment variables (README.md, "Configuration"), then `overrides`. Fails naming the bad key.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const configDir = options.configDir ?? DEFAULT_CONFIG_DIR;
  // Unset means production: a plain `npm start` must never run on development secrets.
  const nodeEnv = env.NODE_ENV || 'production';
  if (!['production', 'development', 'test'].includes(nodeEnv)) {
    throw new ConfigError(`NODE_ENV must be production, development or test, got "${nodeEnv}"`);
  }

  let raw = readJson(path.join(configDir, 'default.json'));
  const envFile = path.join(configDir, `${nodeEnv}.json`);
  if (existsSync(envFile)) raw = deepMerge(raw, readJson(envFile));
  // One more non-secret file for a deployment (the demo's points channels at the simulator).
  if (env.COMPENSATOR_CONFIG) raw = deepMerge(raw, readJson(path.resolve(env.COMPENSATOR_CONFIG)));
  // Secrets come only from the environment: a secret in a file is an error.
  for (const key of ['merchantSecretsKey', 'adminToken']) {
    if (key in raw) throw new ConfigError(`${key} must not be set in a file; use ${key === 'adminToken' ? 'ADMIN_TOKEN' : 'MERCHANT_SECRETS_KEY'}`);
  }
  for (const [name, channel] of Object.entries(isPlainObject(raw.channels) ? raw.channels : {})) {
    if (isPlainObject(channel) && 'secret' in channel) {
      throw new ConfigError(`channels.${name}.secret must not be set in a file; use CHANNEL_SECRET_${name.toUpperCase()}`);
    }
    if (isPlainObject(channel) && 'credentials' in channel) {
      throw new ConfigError(`channels.${name}.credentials must not be set in a file; use CHANNEL_${name.toUpperCase()}_<CREDENTIAL> variables`);
    }
  }

  const fromEnv: Json = { env: nodeEnv };
  const http: Json = {};
  if (env.PORT !== undefined) http.port = integerFromEnv('PORT', env.PORT);
  if (env.ADMIN_PORT) http.adminPort = integerFromEnv('ADMIN_PORT', env.ADMIN_PORT);
  if (env.ADMIN_HOST) http.adminHost = env.ADMIN_HOST;
  if (Object.keys(http).length > 0) fromEnv.http = http;
  const role = roleFromArgv(options.argv ?? []) ?? env.ROLE;
  if (role !== undefined) fromEnv.role = role;
  if (env.DATABASE_URL || env.MIGRATION_DATABASE_URL) {
    // A DATABASE_URL without MIGRATION_DATABASE_URL migrates that database, never a file's other one.
    const database: Json = { migrationUrl: env.MIGRATION_DATABASE_URL || env.DATABASE_URL };
    if (env.DATABASE_URL) database.url = env.DATABASE_URL;
    fromEnv.database = database;
  }
  const broker: Json = {};
  if (env.AMQP_URL) broker.urls = env.AMQP_URL.split(',').map((u) => u.trim()).filter(Boolean);
  if (env.RABBITMQ_MANAGEMENT_URL) broker.managementUrl = env.RABBITMQ_MANAGEMENT_URL;
  if (Object.keys(broker).length > 0) fromEnv.broker = broker;
  if (env.ADMIN_TOKEN) fromEnv.adminToken = env.ADMIN_TOKEN;
  if (env.LOG_LEVEL) fromEnv.log = { level: env.LOG_LEVEL };
  raw = deepMerge(raw, fromEnv);
  if (options.overrides) raw = deepMerge(raw, options.overrides);
  raw = structuredClone(raw); // the secrets below are filled in place

  const warnings: string[] = [];
  // In production every secret and both URLs must come from the environment; all that are
  // missing are named at once.
  const missing: string[] = [];
  if (nodeEnv === 'production') {
    for (const variable of ['DATABASE_URL', 'AMQP_URL', 'ADMIN_TOKEN', 'MERCHANT_SECRETS_KEY']) {
      if (!env[variable]) missing.push(variable);
    }
  }
  if (env.MERCHANT_SECRETS_KEY) {
    raw.merchantSecretsKey = env.MERCHANT_SECRETS_KEY;
  } else if (nodeEnv !== 'production') {
    raw.merchantSecretsKey = DEV_MERCHANT_SECRETS_KEY;
    warnings.push('MERCHANT_SECRETS_KEY is not set: webhook secrets are sealed with the development key');
  }
  const channels = isPlainObject(raw.channels) ? raw.channels : {};
  for (const [name, channel] of Object.entries(channels)) {
    if (!isPlainObject(channel)) continue;
    const type = isPlainObject(channel.adapter) ? String(channel.adapter.type) : 'none';
    if (type in REAL_CHANNEL_CREDENTIALS) {
      // A real channel signs its own way: its credentials, every one required in every env.
      const credentials: Record<string, string> = isPlainObject(channel.credentials) ? (channel.credentials as Record<string, string>) : {};
      for (const credential of REAL_CHANNEL_CREDENTIALS[type as RealChannelType]) {
        const variable = `CHANNEL_${name.toUpperCase()}_${credential}`;
        const value = env[variable];
        if (value) credentials[credential] = value.includes('-----BEGIN') ? value.replace(/\\n/g, '\n') : value;
        else if (!credentials[credential]) missing.push(variable);
      }
      channel.credentials = credentials;
      continue;
    }
    const variable = `CHANNEL_SECRET_${name.toUpperCase()}`;
    const secret = env[variable];
    if (secret) {
      channel.secret = secret;
    } else if (nodeEnv === 'production') {
      missing.push(variable);
    } else {
      channel.secret = `dev-secret-${name}`;
      warnings.push(`${variable} is not set: channel "${name}" uses the development secret`);
    }
  }
  // Production never runs on the stack's or the images' well-known passwords, from a file or not.
  const weak: string[] = [];
  if (nodeEnv === 'production') {
    const database = isPlainObject(raw.database) ? raw.database : {};
    const brokerRaw = isPlainObject(raw.broker) ? raw.broker : {};
    const urls: Array<[string, unknown]> = [
      ['DATABASE_URL', database.url],
      ['MIGRATION_DATABASE_URL', database.migrationUrl],
      ...(Array.isArray(brokerRaw.urls) ? brokerRaw.urls : []).map((u): [string, unknown] => ['AMQP_URL', u]),
      ['RABBITMQ_MANAGEMENT_URL', brokerRaw.managementUrl],
    ];
    for (const [variable, url] of urls) {
      if (typeof url === 'string' && hasDefaultCredentials(url) && !weak.includes(variable)) weak.push(variable);
    }
  }
  if (missing.length > 0 || weak.length > 0) {
    const problems = [
      ...(missing.length > 0 ? [`these variables are required but not set: ${missing.join(', ')}`] : []),
      ...(weak.length > 0 ? [`these carry no password or a well-known default one: ${weak.join(', ')}`] : []),
    ];
    throw new ConfigError(
      `NODE_ENV is ${env.NODE_ENV ? nodeEnv : 'unset, which means production'}, and ${problems.join('; ')}` +
        (nodeEnv === 'production' ? ' (set NODE_ENV=development for local use)' : ''),
    );
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return { config: parsed.data, warnings };
}
