import type { Knex } from 'knex';
import * as createPayments from './migrations/001-create-payments';
import * as outboxGroupedMessages from './migrations/002-outbox-grouped-messages';
import * as merchants from './migrations/003-merchants';
import * as outboxTopology from './migrations/004-outbox-topology';
import * as binaryIdentifiers from './migrations/005-binary-identifiers';

/** Migrations are listed here rather than globbed, so they run the same from src/ (tests) and dist/. */
const migrations: Record<string, Knex.Migration> = {
  '001-create-payments': createPayments,
  '002-outbox-grouped-messages': outboxGroupedMessages,
  '003-merchants': merchants,
  '004-outbox-topology': outboxTopology,
  '005-binary-identifiers': binaryIdentifiers,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name] as Knex.Migration,
};
