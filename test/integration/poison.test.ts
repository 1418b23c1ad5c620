import type amqp from 'amqplib';
import { randomUUID } from 'node:crypto';
import { HEADERS } from '../../src/messaging/topology';
import { insertPendingPayments } from '../helpers/fixtures';
import { testConfig, useAmqpConnection, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

/**
 * Poison on the compensation queue: messages no re-schedule or park could take must be parked
 * one by one, while ordinary timers delivered in the same batch settle on time.
 */
describe('poison messages on the compensation queue', () => {
  const config = testConfig();
  const suite = useTestApp(config);
  const amqpTest = useAmqpConnection(config);

  it('when a 40-day deadline, a 100 KB body and an oversized correlation id arrive with an ordinary due timer, then the three are parked and the timer settles on time', async () => {
    const marker = randomUUID();
    const [ordinary] = await insertPendingPayments(suite.db, 1, new Date(Date.now() - 500));
    const [farOff] = await insertPendingPayments(suite.db, 1, new Date(Date.now() + 40 * 86_400_000));
    const ch = await amqpTest.conn.createConfirmChannel();
    const queue = suite.t.app.names.compensationQueue;
    const send = (body: unknown, options: amqp.Options.Publish = {}) => ch.sendToQueue(queue, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), { persistent: true, ...options });
    const now = Date.now();
    send({ paymentId: farOff, deadline: now + 40 * 86_400_000, attempt: 1, marker }, { headers: { [HEADERS.attempt]: 1 } });
    // 100 KB of a three-byte character: more than a TEXT column holds in bytes, not in characters.
    send(JSON.stringify({ marker, pad: '€'.repeat(34_000) }));
    send({ marker, paymentId: 'not-a-number' }, { correlationId: 'c'.repeat(100) });
    send({ paymentId: ordinary, deadline: now - 500, attempt: 1 }, { headers: { [HEADERS.attempt]: 1 } });
    await ch.waitForConfirms();
    await ch.close();

    const closed = await waitFor('the ordinary timer to close its payment', async () => {
      const row = await suite.db('payments').where({ id: ordinary }).first('status', 'closed_at', 'expires_at');
      return row.status === 'CLOSED' ? row : undefined;
    }, 10000, 50);
    expect(new Date(closed.closed_at).getTime()).toBeGreaterThanOrEqual(new Date(closed.expires_at).getTime());

    const parked = await waitFor('the three poison messages to be parked', async () => {
      const rows = await suite.db('parked_items').where('message', 'like', `%${marker}%`).select('reason', 'last_error', 'correlation_id', 'message');
      return rows.length === 3 ? rows : undefined;
    }, 10000, 100);
    const errors = parked.map((r: { last_error: string }) => r.last_error).sort();
    expect(parked.every((r: { reason: string }) => r.reason === 'malformed')).toBe(true);
    expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(/more than 2592000 s away/), expect.stringMatching(/bytes, more than 16384/), expect.stringMatching(/paymentId/)]));
    expect(parked.map((r: { correlation_id: string | null }) => r.correlation_id)).toEqual([null, null, null]);
    for (const r of parked) expect(Buffer.byteLength((r as { message: string }).message)).toBeLessThanOrEqual(60_000);
    expect((await suite.db('payments').where({ id: farOff }).first('status')).status).toBe('PENDING');
  });
});
