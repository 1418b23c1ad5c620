import { execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/wait';
import { startProcess, stopProcess } from '../helpers/processes';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const STACK_DIR = path.join(ROOT, '.stack/fault');

/**
 * The fault suite breaks its own RabbitMQ node and MariaDB server, on ports of their own, so the
 * rest of the test suite (and the developer's stack) never sees the outage.
 */
export const faultStackEnv = {
  STACK_DIR,
  RABBITMQ_NODENAME: 'fault@localhost',
  RABBITMQ_PORT: '5674',
  RABBITMQ_MGMT_PORT: '15674',
  RABBITMQ_PROMETHEUS_PORT: '15694',
  RABBITMQ_DIST_PORT: '25674',
  MARIADB_PORT: '3308',
};
/**
 * FAULT_RABBITMQ=4 runs the suite's single-node tests against the RabbitMQ 4.0 node of
 * scripts/rabbitmq4.sh (npm test's compatibility pass) instead of the stack's own 3.10 node.
 */
const ON_RABBITMQ_4 = process.env.FAULT_RABBITMQ === '4';
export const FAULT_AMQP_URL = ON_RABBITMQ_4 ? 'amqp://guest:guest@127.0.0.1:5673' : 'amqp://guest:guest@127.0.0.1:5674';
export const FAULT_DATABASE_URL = 'mysql://compensator:compensator@127.0.0.1:3308/compensator_test';
/** The schema's owner on the fault stack's MariaDB (stack.sh gives the service's user rows only). */
export const FAULT_MIGRATION_URL = 'mysql://compensator_owner:compensator_owner@127.0.0.1:3308/compensator_test';

function stackEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...faultStackEnv };
}

export async function faultStackUp(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up'], { env: stackEnv(), timeout: 300000 });
}

export async function faultStackDown(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'down'], { env: stackEnv(), timeout: 120000 }).catch(() => undefined);
}

async function rabbitmqctl(...args: string[]): Promise<void> {
  if (ON_RABBITMQ_4) {
    const root = path.join(ROOT, '.stack/rabbitmq4/root');
    await run('chroot', [root, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/var/lib/rabbitmq', 'rabbitmqctl', '-n', 'rmq4@localhost', ...args], { timeout: 60000 });
    return;
  }
  await run('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-n', faultStackEnv.RABBITMQ_NODENAME, ...args], {
    env: { ...stackEnv(), HOME: path.join(STACK_DIR, 'rabbitmq/home') },
    timeout: 60000,
  });
}

/** Stops the RabbitMQ application (every connection drops, the node stays), then starts it again. */
export const stopBroker = () => rabbitmqctl('stop_app');
export const startBroker = () => rabbitmqctl('start_app');

/** Stops MariaDB like a crash-free restart would (SIGTERM), then brings it back with the stack script. */
export async function stopDatabase(): Promise<void> {
  const pid = Number(readFileSync(path.join(STACK_DIR, 'mariadb/mariadbd.server.pid'), 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  await waitFor('mariadb to stop', () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 60000, 100);
}
export const startDatabase = faultStackUp;

export interface ServiceProcess {
  name: string;
  port?: number;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  logs(): string[];
}

let nextPort = 3700;

/** The admin token of the fault suite's api processes (32+ characters). */
export const FAULT_ADMIN_TOKEN = 'fault-admin-token-0123456789abcdef01';

/** Starts `node dist/main.js --role <role>` against the fault stack, its log in .stack/fault/app. */
export function startService(role: 'api' | 'worker', configFile: string, name: string, env: NodeJS.ProcessEnv = {}): ServiceProcess {
  const port = role === 'api' ? nextPort++ : undefined;
  const dir = path.join(STACK_DIR, 'app');
  mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, `${name}.log`);
  const out = createWriteStream(logFile);
  const { child, exited } = startProcess(process.execPath, [path.join(ROOT, 'dist/main.js'), '--role', role], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      PORT: String(port ?? 0),
      DATABASE_URL: FAULT_DATABASE_URL,
      AMQP_URL: FAULT_AMQP_URL,
      COMPENSATOR_CONFIG: configFile,
      ADMIN_TOKEN: FAULT_ADMIN_TOKEN,
      ...env,
    },
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return {
    name,
    port,
    child,
    logFile,
    exited,
    logs: () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean),
  };
}

export async function waitReady(service: ServiceProcess): Promise<void> {
  if (service.port === undefined) {
    await waitFor(`${service.name} to connect`, () => service.logs().some((l) => l.includes('"started"') || l.includes('broker connected')), 30000, 100);
    return;
  }
  await waitFor(`${service.name} to be ready`, async () => (await fetch(`http://127.0.0.1:${service.port}/readyz`)).status === 200, 30000, 100);
}

/** Stops a service: SIGTERM, then SIGKILL if it is still there after `ms`. */
export function stopService(service: ServiceProcess, ms = 15000): Promise<number | null> {
  return stopProcess(service, ms);
}

/** A config file of its own per test: a unique broker prefix, plus whatever the test needs. */
export function writeServiceConfig(name: string, config: Record<string, unknown>): string {
  const file = path.join(STACK_DIR, `${name}.json`);
  mkdirSync(STACK_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** The three-node cluster of `scripts/stack.sh up --cluster 3`: its own names, ports and data. */
export const CLUSTER_AMQP_URL = [5681, 5682, 5683].map((p) => `amqp://guest:guest@127.0.0.1:${p}`).join(',');

export async function clusterUp(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up', '--cluster', '3'], { timeout: 300000 });
}

export async function clusterDown(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'down', '--cluster'], { timeout: 120000 }).catch(() => undefined);
}

/** SIGKILL of a cluster node's Erlang VM: the crash a leader election has to survive. */
export function killClusterNode(node: number): void {
  const pid = Number(readFileSync(path.join(ROOT, `.stack/cluster/rabbit-${node}/beam.pid`), 'utf8').trim());
  process.kill(pid, 'SIGKILL');
}

const CLUSTER_DIST_PORTS = [25681, 25682, 25683];
const PARTITION_CHAIN = 'COMPENSATOR-PARTITION';
const iptables = (...rule: string[]) => run('iptables', rule, { timeout: 10000 });

/**
 * Cuts cluster node `node` off from the other two, inside this machine: its Erlang VM goes into
 * a cgroup of its own, and iptables (a chain of ours on loopback output) drops every packet of
 * the distribution links between it and them, in both directions, established or new. AMQP and
 * the management API stay reachable, as in a real partition between brokers. Returns the heal,
 * which removes every rule, the chain and the cgroup.
 */
export async function partitionClusterNode(node: number): Promise<() => Promise<void>> {
  const pid = Number(readFileSync(path.join(ROOT, `.stack/cluster/rabbit-${node}/beam.pid`), 'utf8').trim());
  const own = CLUSTER_DIST_PORTS[node - 1] as number;
  const others = CLUSTER_DIST_PORTS.filter((p) => p !== own);
  const cgroup = `/sys/fs/cgroup/unified/compensator-partition-${node}`;
  mkdirSync(cgroup, { recursive: true });
  writeFileSync(path.join(cgroup, 'cgroup.procs'), String(pid));
  await iptables('-N', PARTITION_CHAIN).catch(() => undefined);
  await iptables('-F', PARTITION_CHAIN);
  await iptables('-I', 'OUTPUT', '-o', 'lo', '-j', PARTITION_CHAIN);
  // Links the others opened to this node's listener: both directions.
  await iptables('-A', PARTITION_CHAIN, '-p', 'tcp', '--dport', String(own), '-j', 'DROP');
  await iptables('-A', PARTITION_CHAIN, '-p', 'tcp', '--sport', String(own), '-j', 'DROP');
  // Links this node opens to theirs: its packets by cgroup, new or established...
  await iptables('-A', PARTITION_CHAIN, '-p', 'tcp', '-m', 'cgroup', '--path', `compensator-partition-${node}`, '-m', 'multiport', '--dports', others.join(','), '-j', 'DROP');
  // ...and their answers on the links that exist now, by this node's local ports.
  const { stdout } = await run('ss', ['-Htnp', 'state', 'established'], { timeout: 10000 });
  for (const line of stdout.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const [local, peer] = line.trim().split(/\s+/).slice(2, 4);
    const peerPort = Number(peer?.split(':').pop());
    if (others.includes(peerPort)) await iptables('-A', PARTITION_CHAIN, '-p', 'tcp', '--sport', String(peerPort), '--dport', String(local?.split(':').pop()), '-j', 'DROP');
  }
  return async () => {
    await iptables('-D', 'OUTPUT', '-o', 'lo', '-j', PARTITION_CHAIN).catch(() => undefined);
    await iptables('-F', PARTITION_CHAIN).catch(() => undefined);
    await iptables('-X', PARTITION_CHAIN).catch(() => undefined);
    try {
      writeFileSync('/sys/fs/cgroup/unified/cgroup.procs', String(pid));
    } catch {
      // the node has exited
    }
    await run('rmdir', [cgroup]).catch(() => undefined);
  };
}

/** Which nodes a cluster node's management API reports running. */
export async function runningNodesSeenBy(node: number): Promise<string[]> {
  try {
    const res = await fetch(`http://127.0.0.1:${15680 + node}/api/nodes?columns=name,running`, { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` }, signal: AbortSignal.timeout(2000) });
    const nodes = (await res.json()) as Array<{ name: string; running: boolean }>;
    return nodes.filter((n) => n.running).map((n) => n.name);
  } catch {
    return [];
  }
}

/** The node that leads a quorum queue, asked of any node that answers. */
export async function queueLeader(queue: string): Promise<string> {
  return waitFor(`the leader of ${queue}`, async () => {
    for (const port of [15681, 15682, 15683]) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/queues/%2F/${encodeURIComponent(queue)}`, {
          headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
          signal: AbortSignal.timeout(2000),
        });
        if (res.ok) {
          const body = (await res.json()) as { leader?: string };
          if (body.leader) return body.leader;
        }
      } catch {
        // that node is down; ask the next
      }
    }
    return undefined;
  }, 30000, 500);
}
