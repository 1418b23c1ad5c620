import type { Knex } from 'knex';

/*
 * Index policy (docs/design.md, "Settling by primary key"): no secondary index on a column that a transition changes.
 * Every UPDATE is by primary key, so with no index on `status` the primary key is the only
 * access path MariaDB can take, and two statements can never lock in opposite orders.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('payments', (t) => {
    // Every transition updates by this key, in sorted batches.
    t.bigIncrements('id').primary();
    // Opaque id the API hands out; unique index for GET /v1/payments/:id. Immutable.
    t.string('public_id', 32).notNullable().unique('uq_payments_public_id');
    t.string('merchant_id', 64).notNullable();
    t.string('order_id', 64).notNullable();
    t.bigInteger('amount').notNullable();
    t.string('currency', 3).notNullable();
    t.string('channel', 64).notNullable();
    // Mutable: deliberately not indexed (see above).
    t.string('status', 20).notNullable();
    // sha256 of the normalised create request: a repeat with another body is a 409.
    t.string('request_hash', 64).notNullable();
    t.string('notify_url', 2048).nullable();
    t.string('transaction_id', 128).nullable();
    t.specificType('expires_at', 'DATETIME(3)').notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable();
    t.specificType('updated_at', 'DATETIME(3)').notNullable();
    t.specificType('paid_at', 'DATETIME(3)').nullable();
    t.specificType('closed_at', 'DATETIME(3)').nullable();
    // Idempotent create on (merchant, order). Both columns are immutable.
    t.unique(['merchant_id', 'order_id'], { indexName: 'uq_payments_merchant_order' });
  });

  await knex.schema.createTable('payment_events', (t) => {
    t.bigIncrements('id').primary();
    // A payment's history, in order. Append-only, so this index never sees an update.
    t.bigInteger('payment_id').unsigned().notNullable().index('ix_payment_events_payment');
    t.string('from_status', 20).nullable();
    t.string('to_status', 20).notNullable();
    t.string('cause', 32).notNullable();
    t.specificType('at', 'DATETIME(3)').notNullable();
    t.json('details').nullable();
  });

  // Messages written in the same transaction as the change that causes them; published right
  // after commit and deleted by id. The relay claims leftovers with FOR UPDATE SKIP LOCKED.
  await knex.schema.createTable('outbox', (t) => {
    t.bigIncrements('id').primary();
    t.string('kind', 32).notNullable();
    t.text('message').notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable();
  });

  // Items that ran out of retries or could not be read: kept for a person, replayable by id.
  await knex.schema.createTable('parked_items', (t) => {
    t.bigIncrements('id').primary();
    t.string('purpose', 32).notNullable();
    t.string('reason', 64).notNullable();
    // Which payment it concerns, when known (malformed messages have none).
    t.bigInteger('payment_id').unsigned().nullable().index('ix_parked_items_payment');
    t.integer('attempts').notNullable();
    t.text('last_error').nullable();
    t.text('message').notNullable();
    t.string('correlation_id', 64).nullable();
    t.specificType('parked_at', 'DATETIME(3)').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('parked_items');
  await knex.schema.dropTableIfExists('outbox');
  await knex.schema.dropTableIfExists('payment_events');
  await knex.schema.dropTableIfExists('payments');
}
