import { loadConfig } from '../config/config-loader';
import { createDelayScheduler } from '../delay/delay-scheduler';
import { declareTopology } from '../app';
import { createBroker } from '../infra/broker';
import { createTopologyNames } from '../messaging/topology';
import { createDatabase } from '../infra/database';
import { createLogger } from '../shared/logger';
import { auditOverdue } from './audit';

/**
 * `npm run audit -- [--grace 60] [--requeue] [--json] [--from-id N] [--to-id M]`
 * Lists PENDING payments past deadline + grace; exits 1 when any are found (so cron can alert).
 */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flag = (name: string) => argv.includes(`--${name}`);
  const value = (name: string, fallback: number) => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? Number(argv[i + 1]) : fallback;
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} takes a whole number`);
    return v;
  };
  const { config } = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const db = createDatabase({ config, poolMax: 2 });
  const requeue = flag('requeue');
  const broker = requeue ? createBroker({ urls: config.broker.urls, logger, publishTimeoutMs: config.outbox.publishTimeoutMs, connectionName: 'payment-compensator audit' }) : undefined;
  try {
    let scheduler;
    if (broker) {
      const names = createTopologyNames(config.broker.prefix);
      broker.addSetup((ch) => declareTopology(ch, names, config));
      if (!(await broker.start(15000))) throw new Error('broker not reachable: cannot --requeue');
      scheduler = createDelayScheduler({ broker, names });
    }
    const result = await auditOverdue({ db, scheduler, graceSeconds: value('grace', 60), fromId: value('from-id', 0), toId: argv.includes('--to-id') ? value('to-id', 0) : undefined });
    if (flag('json')) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      for (const p of result.overdue) process.stdout.write(`${p.publicId}  id=${p.id}  ${p.channel}  expired ${p.expiresAt}  overdue ${p.overdueSeconds}s\n`);
      process.stdout.write(`scanned ${result.scanned} payments; ${result.overdue.length} PENDING past deadline + grace${requeue ? `; ${result.requeued} timers re-published` : ''}\n`);
    }
    process.exitCode = result.overdue.length > 0 && !requeue ? 1 : 0;
  } finally {
    await broker?.close();
    await db.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`audit failed: ${(err as Error).message}\n`);
  process.exit(2);
});
