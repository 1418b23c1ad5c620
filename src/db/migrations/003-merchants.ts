import type { Knex } from 'knex';

/*
 * Merchants as tenants (README.md, "HTTP API"): each has its API keys (stored as SHA-256 only) and
 * its webhook secrets (sealed with AES-256-GCM; older ones stay until their rotation overlap
 * ends). Every write is by primary key.
 *
 * A channel's transaction id belongs to one payment: a unique index on (channel,
 * transaction_id). transaction_id changes once (NULL to a value) in a pay transition, but no
 * UPDATE filters on it, so it is never an access path of a by-id statement (docs/design.md, "Settling by primary key");
 * NULLs do not collide.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('merchants', (t) => {
    t.string('merchant_id', 64).primary();
    t.string('name', 200).notNullable();
    t.string('notify_url', 2048).notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable();
  });

  await knex.schema.createTable('merchant_api_keys', (t) => {
    t.string('id', 32).primary();
    // The key is never stored; a lookup is by its hash.
    t.specificType('key_hash', 'CHAR(64)').notNullable().unique('uq_merchant_api_keys_hash');
    // A merchant's own key names it; a platform key has none and lists what it may act for.
    t.string('merchant_id', 64).nullable().index('ix_merchant_api_keys_merchant');
    t.json('platform_merchants').nullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable();
    t.specificType('revoked_at', 'DATETIME(3)').nullable();
  });

  await knex.schema.createTable('merchant_webhook_secrets', (t) => {
    t.bigIncrements('id').primary();
    t.string('merchant_id', 64).notNullable().index('ix_merchant_webhook_secrets_merchant');
    t.string('sealed_secret', 255).notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable();
    // Set when a newer secret replaces it: it still signs until then (the rotation overlap).
    t.specificType('expires_at', 'DATETIME(3)').nullable();
  });

  const [dupes] = (await knex.raw(
    'SELECT COUNT(*) AS n FROM (SELECT 1 FROM payments WHERE transaction_id IS NOT NULL GROUP BY channel, BINARY transaction_id HAVING COUNT(*) > 1) d',
  )) as unknown as [Array<{ n: number }>];
  if (Number(dupes[0]?.n ?? 0) > 0) {
    throw new Error(`${dupes[0]?.n} transaction ids are shared by several payments of a channel; resolve them before this migration (SELECT channel, transaction_id, COUNT(*) FROM payments GROUP BY 1, 2 HAVING COUNT(*) > 1)`);
  }
  // Channels' ids are case-sensitive (Stripe's pi_... are mixed case): compare them as bytes,
  // so the index and the code agree on what "the same id" is.
  await knex.raw('ALTER TABLE payments MODIFY transaction_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL');
  await knex.schema.alterTable('payments', (t) => {
    t.unique(['channel', 'transaction_id'], { indexName: 'uq_payments_channel_transaction' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => t.dropUnique(['channel', 'transaction_id'], 'uq_payments_channel_transaction'));
  await knex.raw('ALTER TABLE payments MODIFY transaction_id VARCHAR(128) NULL');
  await knex.schema.dropTableIfExists('merchant_webhook_secrets');
  await knex.schema.dropTableIfExists('merchant_api_keys');
  await knex.schema.dropTableIfExists('merchants');
}
