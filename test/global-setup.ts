import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config/config-loader';
import { createMigrationDatabase, migrateLatest } from '../src/db/migration-source';
import { portAnswers } from './helpers/ports';

const root = path.resolve(__dirname, '..');

/**
 * Starts the local stack when it is not running (idempotent) and migrates the test database.
 * What this run started, test/global-teardown.ts stops; a stack that was already up stays up.
 */
export default async function globalSetup(): Promise<void> {
  if (!process.env.SKIP_STACK) {
    const wasRunning = (await portAnswers(5672)) && (await portAnswers(3306));
    execFileSync('bash', [path.join(root, 'scripts/stack.sh'), 'up'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60 * 1000 });
    (globalThis as { __startedStack?: boolean }).__startedStack = !wasRunning;
  }
  process.env.NODE_ENV = 'test';
  const { config } = loadConfig({ env: { ...process.env, NODE_ENV: 'test' } });
  const db = createMigrationDatabase(config);
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}
