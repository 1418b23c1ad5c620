import type { Knex } from 'knex';

/*
 * A platform key may be mapped to the RabbitMQ user a checkout publishes payment intents as
 * (README.md, "Payment intents over RabbitMQ"). RabbitMQ checks the message's user-id against
 * the connection's user, so the user name is what proves the intent; compared as bytes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE merchant_api_keys ADD COLUMN amqp_user VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, ADD INDEX ix_merchant_api_keys_amqp_user (amqp_user)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE merchant_api_keys DROP INDEX ix_merchant_api_keys_amqp_user, DROP COLUMN amqp_user');
}
