import type { Knex } from 'knex';
import type { Config } from '../config/config-schema';
import { createDatabase, type Database } from '../infra/database';
import * as createPayments from './migrations/001-create-payments';
import * as outboxGroupedMessages from './migrations/002-outbox-grouped-messages';
import * as merchants from './migrations/003-merchants';
import * as outboxTopology from './migrations/004-outbox-topology';
import * as binaryIdentifiers from './migrations/005-binary-identifiers';
import * as amqpUsers from './migrations/006-amqp-users';

/** Migrations are listed here rather than globbed, so they run the same from src/ (tests) and dist/. */
const migrations: Record<string, Knex.Migration> = {
  '001-create-payments': createPayments,
  '002-outbox-grouped-messages': outboxGroupedMessages,
  '003-merchants': merchants,
  '004-outbox-topology': outboxTopology,
  '005-binary-identifiers': binaryIdentifiers,
  '006-amqp-users': amqpUsers,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name] as Knex.Migration,
};

/**
 * A one-connection pool as the schema's owner (MIGRATION_DATABASE_URL): the service's own user
 * may only read and write rows, so it cannot migrate.
 */
export function createMigrationDatabase(config: Config): Database {
  return createDatabase({ config, poolMax: 1, url: config.database.migrationUrl ?? config.database.url });
}

/** Applies pending migrations; answers their names. */
export async function migrateLatest(db: Database): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
