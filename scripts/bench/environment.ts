import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
/**
 * What the benchmark runs against: the local stack's MariaDB (a dedicated database per run),
 * the stack's RabbitMQ (a unique prefix per run), and the app processes that
 * `scripts/stack.sh up --api N --workers M` starts.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { ROOT, STACK_DIR, cpuMsOf, httpText, log, readPid, run, sumIfAll } from './common';

/**
 * The service runs in production mode as deployed: as users of its own that may do only what it
 * needs, with passwords made for this stack (production refuses the stack's well-known ones).
 * The bench's own tools (tables for the batch job, raw ceilings) use the owner and guest.
 */
const RUN_PASSWORD = stackBenchPassword();

/**
 * One password per stack, made once in $STACK_DIR/bench/password (mode 600): every bench process
 * (npm run bench, bench:worker) provisions the same users, so one started while another runs no
 * longer changes the password under it (a password per process did: "Access denied").
 */
function stackBenchPassword(): string {
  const file = path.join(STACK_DIR, 'bench', 'password');
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) {
    // written aside and linked into place: link fails if another process got there first, and no reader sees a half-written file
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, randomBytes(12).toString('hex'), { mode: 0o600 });
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
  const password = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{24}$/.test(password)) throw new Error(`${file} does not hold a bench password (24 hex digits); delete it`);
  return password;
}
export const BENCH_APP_USER = 'bench_app';
export const BENCH_OWNER = 'bench_owner';
export const BENCH_OWNER_PASSWORD = `${RUN_PASSWORD}o`;
const BENCH_APP_PASSWORD = `${RUN_PASSWORD}a`;
export const MARIADB_PORT = Number(process.env.MARIADB_PORT ?? 3306);
export const AMQP_URL = process.env.AMQP_URL ?? `amqp://guest:guest@127.0.0.1:${process.env.RABBITMQ_PORT ?? 5672}`;
export const RABBITMQ_MGMT = `http://127.0.0.1:${process.env.RABBITMQ_MGMT_PORT ?? 15672}`;
/** The service's AMQP_URL: AMQP_URL's broker, as the bench's app user. */
const APP_AMQP_URL = (() => {
  const url = new URL(AMQP_URL);
  url.username = BENCH_APP_USER;
  url.password = BENCH_APP_PASSWORD;
  return url.toString();
})();
export const RABBITMQ_PROMETHEUS = `http://127.0.0.1:${process.env.RABBITMQ_PROMETHEUS_PORT ?? 15692}/metrics`;
export const NGINX_URL = `http://127.0.0.1:${process.env.NGINX_PORT ?? 8080}`;
export const WORKER_BASE_PORT = Number(process.env.WORKER_BASE_PORT ?? 3101);
export const API_BASE_PORT = Number(process.env.API_BASE_PORT ?? 3001);
/** The api replicas' ADMIN_PORT (scripts/stack.sh): their /metrics and admin API. */
export const API_ADMIN_BASE_PORT = Number(process.env.API_ADMIN_BASE_PORT ?? 3301);
/** nginx's admin listener (loopback). */
export const NGINX_ADMIN_URL = `http://127.0.0.1:${process.env.NGINX_ADMIN_PORT ?? Number(process.env.NGINX_PORT ?? 8080) + 1}`;

export function mariadbSocket(): string {
  return path.join(STACK_DIR, 'mariadb', 'mysqld.sock');
}

export function rabbitmqPid(): number | undefined {
  return readPid(path.join(STACK_DIR, 'rabbitmq', 'beam.pid'));
}

export function mariadbPid(): number | undefined {
  return readPid(path.join(STACK_DIR, 'mariadb', 'mariadbd.pid'));
}

/** The stack's redis-server (scripts/stack/redis.sh), for the BullMQ peer only. */
export function redisPid(): number | undefined {
  return readPid(path.join(STACK_DIR, 'redis', 'redis-server.pid'));
}

/** REDIS_PORT, else the port the stack's Redis took (it moves off a 6379 that another Redis holds). */
export function redisPort(): number {
  return Number(process.env.REDIS_PORT ?? readPid(path.join(STACK_DIR, 'redis', 'port')) ?? 6379);
}

/** The stack's Redis data directory: redis-server's working directory, which tells it is ours. */
export function redisDataDir(): string {
  return path.join(STACK_DIR, 'redis', 'data');
}

/** Root over the stack's socket (mariadb-install-db's default: no password). */
export async function rootConnection(): Promise<mysql.Connection> {
  return mysql.createConnection({ socketPath: mariadbSocket(), user: 'root', multipleStatements: true });
}

export function databaseUrl(db: string, user = BENCH_APP_USER, password = BENCH_APP_PASSWORD): string {
  return `mysql://${user}:${password}@127.0.0.1:${MARIADB_PORT}/${db}`;
}

/**
 * Drops and creates the bench database, with this run's users: the app's may only read and
 * write rows, the owner's runs the migrations and the bench's own tables. The broker gets the
 * app's user too (tag management, permissions on its vhost), through the management API.
 */
export async function createBenchDatabase(db: string): Promise<void> {
  if (!/^[A-Za-z0-9_]+$/.test(db)) throw new Error(`bad database name ${db}`);
  const conn = await rootConnection();
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await conn.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    for (const host of ['127.0.0.1', 'localhost']) {
      for (const [user, password] of [[BENCH_APP_USER, BENCH_APP_PASSWORD], [BENCH_OWNER, BENCH_OWNER_PASSWORD]]) {
        await conn.query(`CREATE USER IF NOT EXISTS '${user}'@'${host}' IDENTIFIED BY '${password}'`);
        await conn.query(`ALTER USER '${user}'@'${host}' IDENTIFIED BY '${password}'`);
      }
      await conn.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${db}\`.* TO '${BENCH_APP_USER}'@'${host}'`);
      await conn.query(`GRANT ALL PRIVILEGES ON \`${db}\`.* TO '${BENCH_OWNER}'@'${host}'`);
    }
  } finally {
    await conn.end();
  }
  await provisionBrokerUser();
}

/** The app's RabbitMQ user, made by the deployment's own script (docker/rabbitmq/provision-app-user.sh). */
async function provisionBrokerUser(): Promise<void> {
  const admin = new URL(AMQP_URL);
  await run('sh', [path.join(ROOT, 'docker/rabbitmq/provision-app-user.sh')], {
    env: {
      ...process.env,
      RABBITMQ_API: RABBITMQ_MGMT,
      RABBITMQ_ADMIN_USER: decodeURIComponent(admin.username),
      RABBITMQ_ADMIN_PASSWORD: decodeURIComponent(admin.password),
      APP_USER: BENCH_APP_USER,
      APP_PASSWORD: BENCH_APP_PASSWORD,
      NAMES: '^bench-', // every run's prefixes (scripts/bench/run.ts)
      VHOST: decodeURIComponent(admin.pathname.slice(1)) || '/',
    },
    timeoutMs: 30000,
  });
}

export async function dropBenchDatabase(db: string): Promise<void> {
  const conn = await rootConnection();
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
  } finally {
    await conn.end();
  }
}

/** A pool on the bench database as its owner (the bench makes tables of its own), with UTC times like the service. */
export function benchPool(db: string, connectionLimit = 8): mysql.Pool {
  return mysql.createPool({
    host: '127.0.0.1',
    port: MARIADB_PORT,
    user: BENCH_OWNER,
    password: BENCH_OWNER_PASSWORD,
    database: db,
    connectionLimit,
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: false,
    dateStrings: false,
    multipleStatements: false,
  });
}

/** Server settings the report must state (every figure in docs/performance.md names its settings). */
export async function serverSettings(): Promise<Record<string, string>> {
  const conn = await rootConnection();
  try {
    const [rows] = await conn.query(
      "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version','innodb_buffer_pool_size','innodb_flush_log_at_trx_commit','log_bin','transaction_isolation','tx_isolation','innodb_lock_wait_timeout','innodb_deadlock_detect','max_connections')",
    );
    return Object.fromEntries((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, r.Value]));
  } finally {
    await conn.end();
  }
}

/** The service's migrations against the bench database (dist/db/migrate.js, like stack.sh). */
export async function migrate(db: string, configFile: string): Promise<void> {
  await run(process.execPath, ['dist/db/migrate.js'], { env: { ...appEnvironment(configFile, db), MIGRATION_DATABASE_URL: databaseUrl(db, BENCH_OWNER, BENCH_OWNER_PASSWORD) }, timeoutMs: 120000 });
}

// ---------------------------------------------------------------- config files and the stack

export interface BenchConfigOptions {
  prefix: string;
  queueType: 'quorum' | 'classic';
}

/** A COMPENSATOR_CONFIG file: the run's prefix and queue type, channels with adapter none. */
export function writeConfig(dir: string, name: string, options: BenchConfigOptions): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const config = {
    broker: { prefix: options.prefix, queueType: options.queueType },
    // The intake scenario drives one merchant's key past 1,000 creates/s per api: it measures
    // what the service carries, not the per-key limit (a deployment sets that per tenant).
    http: { rateLimitPerKeyPerSecond: 1_000_000 },
    channels: {
      wechat: { timeoutSeconds: 900, adapter: { type: 'none' } },
      alipay: { timeoutSeconds: 900, adapter: { type: 'none' } },
    },
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** Secrets and settings every app process gets (production mode, as deployed). */
export function appEnvironment(configFile: string, db: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    COMPENSATOR_CONFIG: configFile,
    DATABASE_URL: databaseUrl(db),
    AMQP_URL: APP_AMQP_URL,
    RABBITMQ_MANAGEMENT_URL: `http://${BENCH_APP_USER}:${BENCH_APP_PASSWORD}@${new URL(RABBITMQ_MGMT).host}`,
    ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    CHANNEL_SECRET_WECHAT: 'bench-secret-wechat',
    CHANNEL_SECRET_ALIPAY: 'bench-secret-alipay',
    MERCHANT_SECRETS_KEY: Buffer.alloc(32, 'bench').toString('base64'),
  };
}

const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef01';

let sinkUrl: Promise<string> | undefined;
/** The bench merchants' notification endpoint: answers 204, in this process, on loopback. */
function notificationSink(): Promise<string> {
  sinkUrl ??= new Promise((resolve) => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    server.on('connection', (socket) => socket.unref());
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`));
    server.unref();
  });
  return sinkUrl;
}

/**
 * Registers a merchant through nginx's admin listener and answers the headers its creates carry
 * (the load acts as a checkout with that merchant's API key).
 */
export async function benchMerchant(merchantId: string): Promise<Record<string, string>> {
  const res = await fetch(`${NGINX_ADMIN_URL}/v1/admin/merchants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
    body: JSON.stringify({ merchantId, name: 'Bench shop', notifyUrl: await notificationSink() }),
  });
  const body = (await res.json()) as { apiKey?: { key: string } };
  if (res.status !== 201 || !body.apiKey) throw new Error(`registering bench merchant ${merchantId} answered ${res.status}: ${JSON.stringify(body)}`);
  return { authorization: `Bearer ${body.apiKey.key}` };
}

export async function stackUp(api: number, workers: number, env: NodeJS.ProcessEnv): Promise<void> {
  const t0 = Date.now();
  await run('bash', ['scripts/stack.sh', 'up', '--api', String(api), '--workers', String(workers)], { env, timeoutMs: 300000 });
  log(`stack up --api ${api} --workers ${workers} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

export async function stackDownApps(): Promise<void> {
  await run('bash', ['scripts/stack.sh', 'down', '--apps'], { timeoutMs: 180000, allowFail: true });
}

/** Running app processes from the stack's pid files: name (api-1, worker-2, ...) to pid. */
export function appPids(): Map<string, number> {
  const dir = path.join(STACK_DIR, 'app');
  const out = new Map<string, number>();
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return out;
  }
  for (const f of files) {
    const m = /^((?:api|worker)-\d+)\.pid$/.exec(f);
    if (!m) continue;
    const pid = readPid(path.join(dir, f));
    if (pid) out.set(m[1] as string, pid);
  }
  return out;
}

/** nginx's worker processes (they do the proxying; the master only supervises). */
function nginxWorkerPids(): number[] {
  const master = readPid(path.join(STACK_DIR, 'nginx', 'nginx.master.pid'));
  if (!master) return [];
  try {
    return readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export type StackCpu = Record<'apis' | 'workers' | 'rabbitmq' | 'mariadb' | 'nginx' | 'bench', number | undefined>;

/**
 * CPU ms so far of each group of the stack's processes, and of this process (which runs the
 * load generator). Undefined for a group with no process to read (one the stack did not start).
 */
export function stackCpuMs(): StackCpu {
  const sum = (pids: number[]) => sumIfAll(pids.map(cpuMsOf));
  const apps = [...appPids()];
  const of = (prefix: string) => apps.filter(([name]) => name.startsWith(prefix)).map(([, pid]) => pid);
  const one = (pid: number | undefined) => (pid ? cpuMsOf(pid) : undefined);
  return { apis: sum(of('api-')), workers: sum(of('worker-')), rabbitmq: one(rabbitmqPid()), mariadb: one(mariadbPid()), nginx: sum(nginxWorkerPids()), bench: cpuMsOf(process.pid) };
}

/**
 * The /metrics text of each running api or worker, read on its own port (not through nginx,
 * which would pick one replica); one that does not answer gives ''.
 */
export async function scrapeMetrics(kind: 'api' | 'worker', count: number): Promise<string[]> {
  const base = kind === 'api' ? API_ADMIN_BASE_PORT : WORKER_BASE_PORT;
  return Promise.all(Array.from({ length: count }, (_, i) => httpText(`http://127.0.0.1:${base + i}/metrics`).catch(() => '')));
}

export { ROOT };
