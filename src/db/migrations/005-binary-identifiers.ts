import type { Knex } from 'knex';

/*
 * Identifiers compare as bytes: a public id, a merchant id and an order id are case-sensitive
 * ("A-1" and "a-1" are two orders; pay_Abc is not pay_aBC). Under the default case-insensitive
 * collation a lookup by a differently-cased id found a row its caller never named.
 */
const UP = [
  'ALTER TABLE payments MODIFY public_id VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, MODIFY merchant_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, MODIFY order_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL',
  'ALTER TABLE merchants MODIFY merchant_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL',
  'ALTER TABLE merchant_api_keys MODIFY merchant_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
  'ALTER TABLE merchant_webhook_secrets MODIFY merchant_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL',
];
const DOWN = [
  'ALTER TABLE payments MODIFY public_id VARCHAR(32) NOT NULL, MODIFY merchant_id VARCHAR(64) NOT NULL, MODIFY order_id VARCHAR(64) NOT NULL',
  'ALTER TABLE merchants MODIFY merchant_id VARCHAR(64) NOT NULL',
  'ALTER TABLE merchant_api_keys MODIFY merchant_id VARCHAR(64) NULL',
  'ALTER TABLE merchant_webhook_secrets MODIFY merchant_id VARCHAR(64) NOT NULL',
];

export async function up(knex: Knex): Promise<void> {
  for (const sql of UP) await knex.raw(sql);
}

export async function down(knex: Knex): Promise<void> {
  for (const sql of DOWN) await knex.raw(sql);
}
