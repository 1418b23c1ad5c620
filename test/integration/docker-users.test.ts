import amqp from 'amqplib';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { createPayment, getPayment, paymentBody, request, TEST_ADMIN_TOKEN } from '../helpers/api';
import { deleteTestTopology, startTestApp, testConfig, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/**
 * The deployment's least-privilege users, made by the very scripts compose runs
 * (docker/rabbitmq/provision-app-user.sh, docker/mysql/runtime-user.sh), here against the local
 * stack: the service works as those users, and they cannot do more than the service needs.
 */
const root = path.resolve(__dirname, '..', '..');
const stackSocket = path.join(root, '.stack', 'mariadb', 'mysqld.sock');
const base = testConfig();
const management = new URL(base.broker.managementUrl as string);
const adminAuth = `Basic ${Buffer.from(`${decodeURIComponent(management.username)}:${decodeURIComponent(management.password)}`).toString('base64')}`;
const apiOf = (url: URL) => `${url.protocol}//${url.host}`;

function runScript(file: string, env: Record<string, string>, shell: 'sh' | 'bash' = 'sh', prelude = '') {
  return spawnSync(shell, ['-c', `${prelude}. "$0"`, path.join(root, file)], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('the RabbitMQ user of compose (docker/rabbitmq/provision-app-user.sh)', () => {
  const user = `app_probe_${process.pid}`;
  const password = randomBytes(16).toString('hex');
  const amqpUrl = new URL(base.broker.urls[0] as string);
  amqpUrl.username = user;
  amqpUrl.password = password;
  const appManagement = new URL(management.toString());
  appManagement.username = user;
  appManagement.password = password;
  const config = testConfig({ broker: { urls: [amqpUrl.toString()], managementUrl: appManagement.toString() } });
  const provision = (env: Record<string, string> = {}) =>
    runScript('docker/rabbitmq/provision-app-user.sh', {
      RABBITMQ_API: apiOf(management),
      RABBITMQ_ADMIN_USER: decodeURIComponent(management.username),
      RABBITMQ_ADMIN_PASSWORD: decodeURIComponent(management.password),
      APP_USER: user,
      APP_PASSWORD: password,
      PREFIX: config.broker.prefix,
      ...env,
    });
  let t: TestApp | undefined;

  beforeAll(() => {
    const run = provision();
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  });
  afterAll(async () => {
    await t?.stop();
    await deleteTestTopology(testConfig({ broker: { prefix: config.broker.prefix } }));
    await fetch(`${apiOf(management)}/api/users/${user}`, { method: 'DELETE', headers: { authorization: adminAuth } });
  });

  it('the user has the management tag only and permissions on its own prefix (and write on the default exchange, for intent replies)', async () => {
    const res = await fetch(`${apiOf(management)}/api/users/${user}`, { headers: { authorization: adminAuth } });
    const body = (await res.json()) as { tags: string[] | string };
    expect([body.tags].flat().join(',')).toBe('management');
    const perms = (await (await fetch(`${apiOf(management)}/api/permissions/%2F/${user}`, { headers: { authorization: adminAuth } })).json()) as Record<string, string>;
    const names = `^${config.broker.prefix}[.:]`;
    expect({ configure: perms.configure, write: perms.write, read: perms.read }).toEqual({ configure: names, write: `${names}|^amq\\.default$`, read: names });
  });

  it('when the service runs as that user, then a payment\'s timer closes it and the admin backlog reads its queues', async () => {
    t = await startTestApp(config);
    const created = await createPayment(t.baseUrl, paymentBody({ timeoutSeconds: 1 }));
    expect(created.status).toBe(201);
    const closed = await waitFor('the payment to close by its timer', async () => {
      const res = await getPayment(t!.baseUrl, created.body.id);
      return res.body.status === 'CLOSED' ? res.body : undefined;
    }, 15000, 100);
    expect(closed.status).toBe('CLOSED');
    const backlog = await request(t.baseUrl, 'GET', '/v1/admin/backlog', undefined, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` });
    expect(backlog.status).toBe(200);
    expect(backlog.body.delayLevels.queues).toBe(22);
  });

  it('the user cannot touch names outside its prefix, nor administer the broker', async () => {
    const conn = await amqp.connect(amqpUrl.toString());
    try {
      const ch = await conn.createChannel();
      const closed = new Promise<Error>((resolve) => ch.on('error', resolve));
      await expect(ch.assertQueue('someone-else:queue', { durable: false })).rejects.toThrow(/ACCESS_REFUSED/);
      expect((await closed).message).toMatch(/403/);
    } finally {
      await conn.close();
    }
    const users = await fetch(`${apiOf(management)}/api/users`, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });
    expect([401, 403]).toContain(users.status);
  });

  it('when the management API does not answer (yet), then the script retries, then fails naming the call', () => {
    const run = provision({ RABBITMQ_API: 'http://127.0.0.1:9', RETRIES: '2' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/PUT \/api\/users\/app_probe_\d+ answered 000/);
  });

  it.each([
    ['a password with a quote', { APP_PASSWORD: 'pa"ss' }, /APP_PASSWORD must/],
    ['the administrator as the app user', { APP_USER: decodeURIComponent(management.username) }, /must not be the administrator/],
    ['no password', { APP_PASSWORD: '' }, /APP_PASSWORD/],
  ])('when given %s, then the script refuses before calling the broker', (_what, env, message) => {
    const run = provision(env);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(message);
  });
});

describe('the database user of compose (docker/mysql/runtime-user.sh)', () => {
  const user = `rt_probe_${process.pid}`;
  const password = randomBytes(16).toString('hex');
  const database = new URL(base.database.url).pathname.slice(1);
  // The mysql image's entrypoint sources the script with docker_process_sql, its root client.
  const asEntrypoint = `docker_process_sql() { mariadb --no-defaults --protocol=socket -S '${stackSocket}' -uroot "$@"; }; `;
  const runUserScript = (env: Record<string, string>) =>
    runScript('docker/mysql/runtime-user.sh', { MYSQL_DATABASE: database, MYSQL_USER: 'compensator_owner', DB_USER: user, DB_PASSWORD: password, ...env }, 'bash', asEntrypoint);
  let rootConn: mysql.Connection;

  beforeAll(async () => {
    rootConn = await mysql.createConnection({ socketPath: stackSocket, user: 'root' });
  });
  afterAll(async () => {
    await rootConn.query(`DROP USER IF EXISTS '${user}'@'%'`);
    await rootConn.end();
  });

  it('when the entrypoint sources it, then the user may only select, insert, update and delete rows of the database', async () => {
    const run = runUserScript({});
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const [grants] = (await rootConn.query(`SHOW GRANTS FOR '${user}'@'%'`)) as unknown as [Array<Record<string, string>>];
    const text = grants.map((g) => Object.values(g)[0]).join('\n');
    // The database name with its underscores escaped: in a grant, a bare _ is a wildcard.
    expect(text).toContain(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${database.replace(/_/g, '\\_')}\`.* TO \`${user}\`@\`%\``);
    expect(text).not.toMatch(/ALL PRIVILEGES|DROP|ALTER|CREATE|GRANT OPTION/);

    const conn = await mysql.createConnection({ host: '127.0.0.1', port: Number(new URL(base.database.url).port || 3306), user, password, database });
    try {
      const [rows] = (await conn.query('SELECT COUNT(*) AS n FROM payments')) as unknown as [Array<{ n: number }>];
      expect(Number(rows[0]?.n)).toBeGreaterThanOrEqual(0);
      await expect(conn.query('DROP TABLE payments')).rejects.toMatchObject({ code: 'ER_TABLEACCESS_DENIED_ERROR' });
    } finally {
      await conn.end();
    }
  });

  it.each([
    ['a password with a quote', { DB_PASSWORD: "x'; DROP USER root; --" }, /DB_PASSWORD must/],
    ['the schema owner as the user', { DB_USER: 'compensator_owner' }, /must not be MYSQL_USER/],
  ])('when given %s, then the script refuses before any SQL', (_what, env, message) => {
    const run = runUserScript(env);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
