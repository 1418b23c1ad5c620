import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config/config-loader';
import { createDatabase, migrateLatest } from '../src/infra/database';

/** Starts the local stack when it is not running (idempotent) and migrates the test database. */
export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  if (!process.env.SKIP_STACK) {
    execFileSync('bash', [path.join(root, 'scripts/stack.sh'), 'up'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60 * 1000 });
  }
  process.env.NODE_ENV = 'test';
  const { config } = loadConfig({ env: { ...process.env, NODE_ENV: 'test' } });
  const db = createDatabase({ config, poolMax: 1 });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}
