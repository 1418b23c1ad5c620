import type { Knex } from 'knex';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { registerMerchant } from '../helpers/api';
import { waitFor } from '../helpers/wait';
import { FAULT_ADMIN_TOKEN } from './fault-stack';
import { RECORDED_CAUSES } from '../../src/payments/payment-states';

export interface CreatedPayment {
  id: string;
  expiresAt: string;
  amount: number;
}

/** Creates `count` payments through the given base URLs with `concurrency` clients; records every status. */
export async function createPayments(options: {
  baseUrls: string[];
  count: number;
  minTimeout: number;
  maxTimeout: number;
  notifyUrl?: string;
  concurrency?: number;
  /** Spread the creates evenly at this rate, so they span a fault instead of finishing first. */
  ratePerSecond?: number;
  onResponse?: (status: number) => void;
}): Promise<{ created: CreatedPayment[]; statuses: number[] }> {
  // A merchant of its own, registered through the first api, whose key makes every create.
  const merchant = await registerMerchant(options.baseUrls[0] as string, { merchantId: `fault_${randomUUID().slice(0, 8)}`, notifyUrl: options.notifyUrl, adminToken: FAULT_ADMIN_TOKEN });
  const merchantId = merchant.merchantId;
  const started = Date.now();
  const created: CreatedPayment[] = [];
  const statuses: number[] = [];
  let next = 0;
  async function client(): Promise<void> {
    while (next < options.count) {
      const i = next++;
      if (options.ratePerSecond) {
        const slot = started + (i * 1000) / options.ratePerSecond;
        if (slot > Date.now()) await new Promise((r) => setTimeout(r, slot - Date.now()));
      }
      const base = options.baseUrls[i % options.baseUrls.length] as string;
      const timeoutSeconds = options.minTimeout + (i % (options.maxTimeout - options.minTimeout + 1));
      const res = await fetch(`${base}/v1/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...merchant.auth },
        body: JSON.stringify({ merchantId, orderId: `o-${i}`, amount: 1000 + i, currency: 'CNY', channel: 'wechat', timeoutSeconds, notifyUrl: options.notifyUrl }),
      }).catch(() => undefined);
      const status = res?.status ?? 0;
      statuses.push(status);
      options.onResponse?.(status);
      if (res && res.status === 201) created.push((await res.json()) as CreatedPayment);
      else await res?.arrayBuffer();
    }
  }
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, client));
  return { created, statuses };
}

/** A merchant that answers 200 to every notification and remembers them by payment id. */
export async function startMerchant(): Promise<{ url: string; byPayment: Map<string, Set<string>>; close(): Promise<void> }> {
  const byPayment = new Map<string, Set<string>>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try {
        const event = JSON.parse(body) as { type: string; payment: { id: string } };
        const types = byPayment.get(event.payment.id) ?? new Set<string>();
        types.add(event.type);
        byPayment.set(event.payment.id, types);
      } catch {
        /* ignore */
      }
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`,
    byPayment,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Row {
  id: number;
  public_id: string;
  status: string;
  expires_at: Date;
}

/**
 * The invariants every fault test ends with, read from payments and payment_events: every payment
 * reached a final state, none settled before its deadline, none has two transitions out of
 * PENDING, and (when a merchant is given) every final state was notified at least once.
 */
export async function assertAllSettledCorrectly(db: Knex, publicIds: string[], options: { timeoutMs: number; merchant?: { byPayment: Map<string, Set<string>> } }): Promise<void> {
  const rows: Row[] = [];
  for (let i = 0; i < publicIds.length; i += 1000) {
    rows.push(...(await db<Row>('payments').whereIn('public_id', publicIds.slice(i, i + 1000)).select('id', 'public_id', 'status', 'expires_at')));
  }
  expect(rows).toHaveLength(publicIds.length);
  const ids = rows.map((r) => Number(r.id));

  let stillPending: Array<{ public_id: string; expires_at: Date }> = [];
  await waitFor('every payment to reach a final state', async () => {
    stillPending = [];
    for (let i = 0; i < ids.length; i += 1000) {
      stillPending.push(...(await db('payments').whereIn('id', ids.slice(i, i + 1000)).andWhere('status', 'PENDING').select('public_id', 'expires_at')));
    }
    return stillPending.length === 0;
  }, options.timeoutMs, 500).catch((err: Error) => {
    throw new Error(`${err.message}; ${stillPending.length} still PENDING, e.g. ${JSON.stringify(stillPending.slice(0, 3))}`);
  });

  const events: Array<{ payment_id: number; from_status: string | null; to_status: string; at: Date }> = [];
  for (let i = 0; i < ids.length; i += 1000) {
    // Transitions only: the timeline's records (remedy retries, deliveries) change no state.
    events.push(...(await db('payment_events').whereIn('payment_id', ids.slice(i, i + 1000)).whereNotIn('cause', [...RECORDED_CAUSES]).select('payment_id', 'from_status', 'to_status', 'at')));
  }
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  const outOfPending = new Map<number, number>();
  const early: number[] = [];
  for (const e of events) {
    if (e.from_status !== 'PENDING') continue;
    outOfPending.set(Number(e.payment_id), (outOfPending.get(Number(e.payment_id)) ?? 0) + 1);
    const row = byId.get(Number(e.payment_id)) as Row;
    if (e.to_status === 'CLOSED' && new Date(e.at).getTime() < new Date(row.expires_at).getTime()) early.push(Number(e.payment_id));
  }
  expect(early).toEqual([]);
  const notExactlyOnce = ids.filter((id) => outOfPending.get(id) !== 1);
  expect(notExactlyOnce).toEqual([]);

  if (options.merchant) {
    const finals = await db('payments').whereIn('id', ids).select('public_id', 'status');
    await waitFor('every final state to be notified', () =>
      finals.every((p: { public_id: string; status: string }) => options.merchant?.byPayment.get(p.public_id)?.has(`payment.${p.status.toLowerCase()}`)),
    options.timeoutMs, 500);
  }
}
