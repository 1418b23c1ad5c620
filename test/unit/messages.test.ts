import type { ConsumeMessage } from 'amqplib';
import { notificationMessage, parseNotification, parseNotificationBody } from '../../src/messaging/notification-message';
import { parseTimer, parseTimerBody, timerMessage } from '../../src/messaging/timer-message';
import { DESTINATIONS, HEADERS } from '../../src/messaging/topology';

/** A delivery as the scheduler publishes it: the body plus deadline and attempt, and our headers. */
function delivered(body: Record<string, unknown>, deadline: number, attempt: number): ConsumeMessage {
  return {
    content: Buffer.from(JSON.stringify({ ...body, deadline, attempt })),
    fields: {} as ConsumeMessage['fields'],
    properties: { headers: { [HEADERS.deadline]: deadline, [HEADERS.attempt]: attempt } } as unknown as ConsumeMessage['properties'],
  };
}

describe('the message contract (src/messaging)', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  const notification = { eventId: 'e-1', type: 'payment.closed', paymentId: 7, notifyUrl: 'https://merchant.example/hook', payment: { id: 'pay_1' } };

  it('when a timer is built, then it goes to the payment timer destination with schema version 1, and its parser reads it back', () => {
    const m = timerMessage({ paymentId: 7, deadline: now + 5000, attempt: 2, correlationId: 'c-1' });
    expect(m).toEqual({ destination: DESTINATIONS.paymentTimer, deadline: now + 5000, attempt: 2, correlationId: 'c-1', body: { v: 1, paymentId: 7 } });
    expect(parseTimer(delivered(m.body, m.deadline, m.attempt), now)).toEqual({ ok: true, value: { v: 1, paymentId: 7, deadline: now + 5000, attempt: 2 } });
  });

  it('when a notification is built, then it goes to the notification destination with schema version 1, and its parser reads it back', () => {
    const m = notificationMessage({ ...notification, deadline: now, attempt: 1 });
    expect(m.destination).toBe(DESTINATIONS.notification);
    expect(m.body).toEqual({ v: 1, ...notification });
    expect(parseNotification(delivered(m.body, m.deadline, m.attempt), now)).toEqual({ ok: true, value: { v: 1, ...notification, deadline: now, attempt: 1 } });
  });

  it('when a message predates the schema version, then it still parses (messages in flight across an upgrade)', () => {
    expect(parseTimer(delivered({ paymentId: 7 }, now, 1), now).ok).toBe(true);
    expect(parseNotification(delivered(notification, now, 1), now).ok).toBe(true);
    expect(parseTimerBody({ paymentId: 7 }).ok).toBe(true);
    expect(parseNotificationBody(notification).ok).toBe(true);
  });

  it('when a message names a version this release does not know, then it is refused, naming the field', () => {
    const timer = parseTimer(delivered({ v: 2, paymentId: 7 }, now, 1), now);
    expect(timer).toEqual({ ok: false, error: expect.stringMatching(/^v: /) });
    const note = parseNotification(delivered({ ...notification, v: 2 }, now, 1), now);
    expect(note).toEqual({ ok: false, error: expect.stringMatching(/^v: /) });
  });
});
