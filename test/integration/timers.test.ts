import { createDelayScheduler } from '../../src/delay/delay-scheduler';
import { DESTINATIONS } from '../../src/messaging/topology';
import { createPayment, getPayment, paymentBody, sendCallback, txId } from '../helpers/api';
import { eventsOf, internalIdOf } from '../helpers/fixtures';
import { testConfig, useTestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait';

describe('payment timers through the delay levels', () => {
  const config = testConfig();
  const suite = useTestApp(config);

  async function pollStatus(id: string, status: string, timeoutMs: number) {
    return waitFor(`payment ${id} to become ${status}`, async () => {
      const res = await getPayment(suite.t.baseUrl, id);
      return res.body.status === status ? res.body : undefined;
    }, timeoutMs, 50);
  }

  it('when a 2 s timer is due, then the payment becomes CLOSED no earlier than expiresAt and within 2 s after, with one PENDING->CLOSED event', async () => {
    const created = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 2 }));
    expect(created.status).toBe(201);
    const closed = await pollStatus(created.body.id, 'CLOSED', 10000);
    const lateness = Date.parse(closed.closedAt) - Date.parse(closed.expiresAt);
    expect(lateness).toBeGreaterThanOrEqual(0);
    expect(lateness).toBeLessThanOrEqual(2000);

    const events = await eventsOf(suite.db, [await internalIdOf(suite.db, created.body.id)]);
    expect(events.filter((e) => e.to_status === 'CLOSED')).toEqual([expect.objectContaining({ from_status: 'PENDING', cause: 'timeout' })]);
  });

  it('when a payment is paid by callback before its deadline, then its timer is a no-op and it stays PAID', async () => {
    const created = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 1 }));
    const paid = await sendCallback(suite.t.baseUrl, created.body.id, { result: 'SUCCESS', transactionId: txId('tx-early'), paidAmount: 1999 });
    expect(paid.status).toBe(200);
    expect(paid.body.status).toBe('PAID');

    await waitFor('the timer to fire as a no-op', () => suite.t.logs.some((l) => l.includes('timer was a no-op') && l.includes(created.body.id)), 10000);
    const after = await getPayment(suite.t.baseUrl, created.body.id);
    expect(after.body.status).toBe('PAID');
    const events = await eventsOf(suite.db, [await internalIdOf(suite.db, created.body.id)]);
    expect(events.map((e) => `${e.from_status}->${e.to_status}`)).toEqual(['null->PENDING', 'PENDING->PAID']);
  });

  it('when a 120 s timer is created just before a 2 s one, then the 2 s one is not held behind it', async () => {
    const long = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 120 }));
    const short = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 2 }));
    const closed = await pollStatus(short.body.id, 'CLOSED', 10000);
    expect(Date.parse(closed.closedAt) - Date.parse(closed.expiresAt)).toBeLessThanOrEqual(2000);
    const stillPending = await getPayment(suite.t.baseUrl, long.body.id);
    expect(stillPending.body.status).toBe('PENDING');
  });

  it('when a timer arrives before its deadline, then the worker re-schedules the rest and never acts early', async () => {
    // Publish a timer that says "due in 3 s" but with no delay, as a misrouted or skewed message would arrive.
    const created = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 600 }));
    const id = await internalIdOf(suite.db, created.body.id);
    const deadline = Date.now() + 3000;
    const skewed = createDelayScheduler({ broker: suite.t.app.broker, names: suite.t.app.names, now: () => deadline });
    await skewed.schedule({ destination: DESTINATIONS.paymentTimer, deadline, attempt: 1, body: { paymentId: id } });

    await waitFor('the early timer to close the payment', async () => {
      const events = await eventsOf(suite.db, [id]);
      return events.find((e) => e.to_status === 'CLOSED');
    }, 10000, 50);
    const [closedEvent] = (await eventsOf(suite.db, [id])).filter((e) => e.to_status === 'CLOSED');
    expect(new Date(closedEvent!.at).getTime()).toBeGreaterThanOrEqual(deadline);
  });
});

describe('payment timers on classic queues (broker.queueType classic)', () => {
  const config = testConfig({ broker: { queueType: 'classic' } });
  const suite = useTestApp(config);

  it('when a 3 s timer is due, then it passes both its classic delay levels and closes the payment no earlier than expiresAt', async () => {
    const created = await createPayment(suite.t.baseUrl, paymentBody({ timeoutSeconds: 3 }));
    expect(created.status).toBe(201);
    const closed = await waitFor('the classic-queue timer to close the payment', async () => {
      const res = await getPayment(suite.t.baseUrl, created.body.id);
      return res.body.status === 'CLOSED' ? res.body : undefined;
    }, 15000, 50);
    expect(Date.parse(closed.closedAt)).toBeGreaterThanOrEqual(Date.parse(closed.expiresAt));
  });

  it('the delay queues are classic queues with storage version 2, the broker default the stack and the Docker image set', async () => {
    const url = new URL(config.broker.managementUrl as string);
    const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    const queue = suite.t.app.names.delayQueue(1);
    // The management API fills backing_queue_status on its next stats emission: poll for it.
    const info = await waitFor('the delay queue stats', async () => {
      const res = await fetch(`${url.origin}/api/queues/%2F/${encodeURIComponent(queue)}`, { headers: { authorization: auth } });
      const body = (await res.json()) as { type?: string; backing_queue_status?: { version?: number }; storage_version?: number };
      // 3.x reports the version in backing_queue_status; 4.x, which has only version 2, in storage_version.
      const version = body.backing_queue_status?.version ?? body.storage_version;
      return version !== undefined ? { type: body.type, version } : undefined;
    }, 15000, 200);
    expect(info).toEqual({ type: 'classic', version: 2 });
  });
});
