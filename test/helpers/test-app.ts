import amqp from 'amqplib';
import type { Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { createApp, type App, type AppOverrides } from '../../src/app';
import { loadConfig, deepMerge } from '../../src/config/config-loader';
import type { Config } from '../../src/config/config-schema';
import { deleteTopology } from '../../src/delay/delay-topology';
import { createTopologyNames } from '../../src/messaging/topology';
import { createLogger } from '../../src/shared/logger';
import { openTestDatabase } from './fixtures';

import { TEST_ADMIN_TOKEN } from './api';

export { TEST_ADMIN_TOKEN };

/** A test config: NODE_ENV=test, port 0, and a queue prefix of its own (rascal's trick). */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  return loadConfig({
    env: { ...process.env, NODE_ENV: 'test', ADMIN_TOKEN: TEST_ADMIN_TOKEN },
    overrides: deepMerge({ http: { port: 0 }, broker: { prefix } }, overrides),
  }).config;
}

export interface TestApp {
  app: App;
  baseUrl: string;
  /** The admin listener's URL when the config sets http.adminPort. */
  adminUrl?: string;
  logs: string[];
  stop(): Promise<void>;
}

/** Starts the app in-process against the real stack; logs are captured as JSON lines. */
export async function startTestApp(config: Config, overrides: AppOverrides = {}): Promise<TestApp> {
  const logs: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const logger = overrides.logger ?? createLogger({ level: 'debug', stream });
  const app = createApp(config, { ...overrides, logger });
  const { port, adminPort } = await app.start();
  return {
    app,
    baseUrl: `http://127.0.0.1:${port ?? 0}`,
    adminUrl: adminPort === undefined ? undefined : `http://127.0.0.1:${adminPort}`,
    logs,
    stop: () => app.stop('test finished'),
  };
}

/** Deletes a prefix's exchanges and queues so test runs do not pile up in the broker. */
export async function deleteTestTopology(config: Config): Promise<void> {
  const conn = await amqp.connect(config.broker.urls[0] as string);
  try {
    const ch = await conn.createChannel();
    await deleteTopology(ch, createTopologyNames(config.broker.prefix));
  } finally {
    await conn.close();
  }
}

/**
 * A plain AMQP connection of the test's own, for what the service must not do itself (deleting
 * a queue under it, publishing poison, playing a crashing worker). Read `.conn` inside tests.
 */
export function useAmqpConnection(config: Config): { conn: amqp.ChannelModel } {
  const holder = {} as { conn: amqp.ChannelModel };
  beforeAll(async () => {
    holder.conn = await amqp.connect(config.broker.urls[0] as string);
  });
  afterAll(async () => {
    await holder.conn?.close();
  });
  return holder;
}

export interface TestSuite {
  /** The app, started before the suite's first test. */
  t: TestApp;
  /** A pool on the test database, for reading what the app wrote. */
  db: Knex;
}

/**
 * The usual suite setup: starts the app and opens the database before the first test; stops
 * both and deletes the prefix's topology after the last. Read `suite.t` and `suite.db` inside
 * tests (they are set by then).
 */
export function useTestApp(config: Config, overrides: AppOverrides = {}): TestSuite {
  const suite = {} as TestSuite;
  beforeAll(async () => {
    suite.t = await startTestApp(config, overrides);
    suite.db = openTestDatabase(config);
  });
  afterAll(async () => {
    await suite.t?.stop();
    await suite.db?.destroy();
    await deleteTestTopology(config);
  });
  return suite;
}
