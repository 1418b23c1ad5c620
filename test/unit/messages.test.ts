import type { ConsumeMessage } from 'amqplib';
import { notificationMessage, parseNotification, parseNotificationBody } from '../../src/messaging/notification-message';
import { parseTimer, parseTimerBody, timerFastCheck, timerMessage, timerSchemaForTests } from '../../src/messaging/timer-message';
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
  describe("the timer's fast check (the worker's hot path)", () => {
    // Every value a field may take in the bodies below: valid ones, edge cases, and wrong types.
    const values: unknown[] = [undefined, 1, 2, 7, 0, -1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, '7', null, true, [], {}];
    const bodies: unknown[] = [null, 7, 'x', [], [1], {}, { paymentId: 7, deadline: now, attempt: 1, extra: 'x' }];
    // Forms only raw JSON has: an own "__proto__" key, duplicate keys, exponents and fractions that are whole.
    const raw = ['{"paymentId":7,"deadline":1,"attempt":1,"__proto__":{"v":2}}', '{"__proto__":null,"paymentId":7,"deadline":1,"attempt":1}', '{"paymentId":7,"paymentId":"7","deadline":1,"attempt":1}', '{"paymentId":1e21,"deadline":1,"attempt":1}', '{"paymentId":7.0,"deadline":1e3,"attempt":1}', '{"paymentId":-0,"deadline":1,"attempt":1}', '{"v":1.0,"paymentId":7,"deadline":1,"attempt":1}'];
    for (const v of values) for (const paymentId of values) for (const deadline of values) for (const attempt of [undefined, 1, 3, 0, 1.5, '1']) {
      const body: Record<string, unknown> = { paymentId, deadline, attempt };
      if (v !== undefined) body.v = v;
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      bodies.push(body);
    }

    it('when it accepts a body, then the schema accepts it with the same result; and it accepts the bodies the scheduler writes', () => {
      let accepted = 0;
      for (const text of [...bodies.map((b) => JSON.stringify(b) ?? 'null'), ...raw]) {
        const json: unknown = JSON.parse(text);
        const fast = timerFastCheck(json);
        const schema = timerSchemaForTests.safeParse(json);
        if (fast !== undefined) {
          accepted++;
          expect({ body: json, schema: schema.success ? schema.data : schema.error.message }).toEqual({ body: json, schema: fast });
        }
      }
      expect(accepted).toBeGreaterThan(20);
      expect(timerFastCheck({ v: 1, paymentId: 7, deadline: now, attempt: 2 })).toEqual({ v: 1, paymentId: 7, deadline: now, attempt: 2 });
      expect(timerFastCheck({ paymentId: 7, deadline: now, attempt: 1 })).toEqual({ paymentId: 7, deadline: now, attempt: 1 });
    });

    it('when it declines a body, then parseTimer answers as the schema does: the error names the field', () => {
      for (const [body, field] of [[{ v: 2, paymentId: 7 }, 'v'], [{ v: 1, paymentId: '7' }, 'paymentId'], [{ v: 1, paymentId: 0 }, 'paymentId']] as const) {
        const parsed = parseTimer(delivered(body, now, 1), now);
        expect(parsed.ok).toBe(false);
        expect(parsed.ok ? '' : parsed.error).toContain(field);
      }
      // Extra keys are not the fast path's, but the schema strips them, as before.
      expect(parseTimer(delivered({ v: 1, paymentId: 7, extra: 'x' }, now, 1), now)).toEqual({ ok: true, value: { v: 1, paymentId: 7, deadline: now, attempt: 1 } });
    });
  });
});
