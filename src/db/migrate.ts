import { loadConfig } from '../config/config-loader';
import { createDatabase, migrateLatest } from '../infra/database';

/** `npm run db:migrate`: applies pending migrations to DATABASE_URL. */
async function run(): Promise<void> {
  const { config } = loadConfig();
  const db = createDatabase({ config, poolMax: 1 });
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
