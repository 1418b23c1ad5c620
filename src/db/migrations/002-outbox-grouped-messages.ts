import type { Knex } from 'knex';

/*
 * An outbox row now holds every message one transaction wrote (a batch of timers, or the
 * notifications of a settled batch), so one INSERT and one DELETE serve the whole batch.
 * TEXT stops at 64 KiB; MEDIUMTEXT (16 MiB) holds the largest batch with room to spare.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE outbox MODIFY message MEDIUMTEXT NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE outbox MODIFY message TEXT NOT NULL');
}
