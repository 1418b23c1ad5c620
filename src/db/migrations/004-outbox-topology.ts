import type { Knex } from 'knex';

/*
 * An outbox row names the topology (the queue prefix) it was written for, and a relay claims
 * only its own: two deployments, or a blue and a green, sharing a schema never publish each
 * other's timers into the wrong queues. Rows written before this column have NULL, and any
 * relay may take those (one deployment per schema was the only setup before).
 * The index serves the relay's claim, (topology, id) in id order, so FOR UPDATE SKIP LOCKED
 * scans only its own rows.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox', (t) => {
    t.string('topology', 40).nullable();
    t.index(['topology', 'id'], 'ix_outbox_topology');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox', (t) => {
    t.dropIndex(['topology', 'id'], 'ix_outbox_topology');
    t.dropColumn('topology');
  });
}
