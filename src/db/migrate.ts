import { loadConfig } from '../config/config-loader';
import { createMigrationDatabase, migrateLatest } from './migration-source';

/** `npm run db:migrate`: applies pending migrations as MIGRATION_DATABASE_URL's user (unset: DATABASE_URL's). */
async function run(): Promise<void> {
  const { config } = loadConfig();
  const db = createMigrationDatabase(config);
  try {
    const applied = await migrateLatest(db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await db.destroy();
  }
}

run().catch((err) => {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exit(1);
});
