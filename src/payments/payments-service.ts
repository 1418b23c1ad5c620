import { createHash, randomBytes } from 'node:crypto';
import type { Config } from '../config/config-schema';
import { timerMessage } from '../messaging/timer-message';
import { insertIdOf, isDuplicateKey, isRetryableLockError, transactionInRounds, withLockRetry, type Database } from '../infra/database';
import type { Outbox, PendingOutboxMessage } from '../outbox/outbox';
import { ConflictError, NotFoundError, UnauthorizedError, UnavailableError, ValidationError } from '../shared/errors';
import { createBatcher } from '../shared/concurrency';
import { parseSignatureHeader, SIGNATURE_TOLERANCE_SECONDS, verifyGatewaySignature } from '../shared/gateway-signature';
import { currentCorrelationId } from '../shared/request-context';
import type { NewPayment, PaymentRow, PaymentsRepository } from './payments-repository';
import type { PaymentTransitions } from './payment-transitions';
import type { CallbackRequest, CreatePaymentRequest } from './payments-schemas';

export interface CreateResult {
  created: boolean;
  payment: PaymentRow;
}

export interface CreateBatchTiming {
  size: number;
  /** From the oldest create's request to the batch start: time spent waiting for a slot. */
  waitSec: number;
  transactionSec: number;
  publishSec: number;
}

/** A validated create waiting for its batch. */
interface NewCreate {
  row: NewPayment;
  correlationId: string | undefined;
}

/**
 * Group commit sizes for creates: a batch is one transaction of two round trips, so at most
 * 100 creates share one; up to 2 batches run at once per process. Fewer slots make larger
 * batches and less CPU per create: 2 beat 4 at every concurrency (`npm run bench -- --only
 * intake`, alternating), and 8 lost to 4. One slot measured better still, but a batch that
 * meets a duplicate goes one by one, and a second slot keeps the other creates moving.
 */
const CREATE_BATCH_MAX = 100;
const CREATE_BATCHES_IN_FLIGHT = 2;
/** Creates waiting beyond this get a 503 at once rather than piling up while the database is down. */
const CREATE_MAX_WAITING = 2000;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random bytes drawn 4 KiB at a time: one system call per 256 ids, not one per id. */
let randomPool = Buffer.alloc(0);
let randomOffset = 0;
function random128Hex(): string {
  if (randomOffset + 16 > randomPool.length) {
    randomPool = randomBytes(4096);
    randomOffset = 0;
  }
  randomOffset += 16;
  return randomPool.toString('hex', randomOffset - 16, randomOffset);
}

/** An opaque, non-sequential id: "pay_" and 22 base62 characters from 128 random bits. */
export function generatePublicId(): string {
  let n = BigInt(`0x${random128Hex()}`);
  let out = '';
  for (let i = 0; i < 22; i++) {
    out += BASE62[Number(n % 62n)];
    n /= 62n;
  }
  return `pay_${out}`;
}

/** Intake and callbacks: the HTTP-facing use cases of README.md, "HTTP API". */
export function createPaymentsService(deps: {
  config: Config;
  db: Database;
  /** The pool that allows multi-statement queries, for the create transaction's rounds. */
  roundsDb: Database;
  repository: PaymentsRepository;
  transitions: PaymentTransitions;
  outbox: Outbox;
  onLockRetry?: (err: unknown) => void;
  /** Each group-commit batch that committed: its size and the time of each phase (seconds). */
  onCreateBatch?: (batch: CreateBatchTiming) => void;
}) {
  const { config, db, repository, transitions, outbox } = deps;

  function channelOf(name: string) {
    const channel = config.channels[name];
    if (!channel) {
      throw new ValidationError(`channel must be one of: ${Object.keys(config.channels).join(', ')}`, [{ path: 'channel', message: `unknown channel "${name}"` }]);
    }
    return channel;
  }

  /**
   * Inserts the payments, their 'created' events and one outbox row with their timers in one
   * transaction of two round trips. Throws on a duplicate (merchant, order). Publish the timers
   * after commit.
   */
  async function insertAll(items: NewCreate[]): Promise<{ payments: PaymentRow[]; timers: PendingOutboxMessage }> {
    const { ids, timers } = await transactionInRounds(deps.roundsDb, async (send) => {
      const newIds = await repository.insertMany(
        send,
        items.map((i) => i.row),
      );
      const messages = items.map((i, k) => timerMessage({ paymentId: newIds[k] as number, deadline: i.row.expires_at.getTime(), attempt: 1, correlationId: i.correlationId }));
      const events = items.map((i, k) => ({
        paymentId: newIds[k] as number,
        from: null,
        to: 'PENDING' as const,
        cause: 'created' as const,
        at: i.row.created_at,
      }));
      const [, outboxRow] = await send([repository.eventsInsert(events), outbox.addInsert(messages)], { commit: true });
      return { ids: newIds, timers: { id: insertIdOf(outboxRow), messages } };
    });
    const payments = items.map((i, k) => ({
      ...i.row,
      id: ids[k] as number,
      updated_at: i.row.created_at,
      transaction_id: null,
      paid_at: null,
      closed_at: null,
    }));
    return { payments, timers };
  }

  /**
   * A deadlock or a lock-wait timeout is a normal outcome (docs/design.md, "Settling by primary key"): the transaction
   * rolled back whole, so it is retried a bounded number of times with jitter.
   */
  async function insertWithLockRetry(item: NewCreate): ReturnType<typeof insertAll> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await insertAll([item]);
      } catch (err) {
        if (!isRetryableLockError(err) || attempt >= config.database.deadlockRetries) throw err;
        deps.onLockRetry?.(err);
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * 2 ** attempt));
      }
    }
  }

  /** Insert first: a repeat is rare, so it pays the duplicate-key round trip, not every create. */
  async function createOne(item: NewCreate): Promise<CreateResult & { timers?: PendingOutboxMessage }> {
    try {
      const {
        payments: [payment],
        timers,
      } = await insertWithLockRetry(item);
      return { created: true, payment: payment as PaymentRow, timers };
    } catch (err) {
      // A repeat, or two identical creates racing: answer like a repeat (or 409 on another body).
      if (!isDuplicateKey(err)) throw err;
      const winner = await repository.findByMerchantOrder(item.row.merchant_id, item.row.order_id);
      if (!winner) throw err;
      if (winner.request_hash !== item.row.request_hash) {
        // Names no payment id: a caller that guesses order ids learns nothing it could read.
        throw new ConflictError(`order ${item.row.order_id} of merchant ${item.row.merchant_id} exists with a different body`);
      }
      return { created: false, payment: winner };
    }
  }

  /**
   * Creates that arrive together share one transaction and one outbox row (group commit): the
   * round trips per create fall as load rises. The answer goes out at commit, when the timers
   * are durable in the outbox; publishing them follows and holds the batch's slot until the
   * broker confirms, so a slow broker slows intake instead of piling up work (and, measured,
   * fewer and larger batches beat freeing the slot at once). A duplicate anywhere in a batch
   * rolls it back, and its creates go one by one, so each gets its own answer. Each batch reports
   * its size and the time of each phase (`compensator_create_batch_seconds`).
   */
  const createInBatch = createBatcher<NewCreate, CreateResult>({
    maxSize: CREATE_BATCH_MAX,
    maxInFlight: CREATE_BATCHES_IN_FLIGHT,
    maxWaiting: CREATE_MAX_WAITING,
    whenFull: () => new UnavailableError('too many creates are waiting for the database; retry shortly'),
    async run(items, answer) {
      const started = Date.now();
      const oldest = Math.min(...items.map((i) => i.row.created_at.getTime()));
      const afterCommit = async (timers: Array<PendingOutboxMessage | undefined>) => {
        const at = Date.now();
        await outbox.flush(timers);
        deps.onCreateBatch?.({
          size: items.length,
          waitSec: (started - oldest) / 1000,
          transactionSec: (at - started) / 1000,
          publishSec: (Date.now() - at) / 1000,
        });
      };
      if (items.length > 1) {
        try {
          const { payments, timers } = await insertAll(items);
          answer(
            payments.map((payment) => ({
              status: 'fulfilled',
              value: { created: true, payment },
            })),
          );
          await afterCommit([timers]);
          return;
        } catch (err) {
          // A lock conflict (a concurrent batch holding the same order) must not fail the
          // unrelated creates of the batch either: one by one, each meets only its own fate.
          if (!isDuplicateKey(err) && !isRetryableLockError(err)) throw err;
        }
      }
      const results: Array<PromiseSettledResult<CreateResult>> = [];
      const timers: Array<PendingOutboxMessage | undefined> = [];
      for (const item of items) {
        try {
          const { created, payment, timers: written } = await createOne(item);
          results.push({ status: 'fulfilled', value: { created, payment } });
          timers.push(written);
        } catch (reason) {
          results.push({ status: 'rejected', reason });
        }
      }
      answer(results);
      await afterCommit(timers);
    },
  });

  return {
    /**
     * Creates a payment for `merchant` (resolved from the caller's key). A notifyUrl in the body
     * must share the origin of the merchant's registered one; without one, the registered one is
     * used.
     */
    async create(request: CreatePaymentRequest, merchant: { merchantId: string; notifyUrl: string }): Promise<CreateResult> {
      const channel = channelOf(request.channel);
      if (request.notifyUrl !== undefined && new URL(request.notifyUrl).origin !== new URL(merchant.notifyUrl).origin) {
        throw new ValidationError(`notifyUrl must have the origin of the merchant's registered notifyUrl (${new URL(merchant.notifyUrl).origin})`, [
          {
            path: 'notifyUrl',
            message: 'origin differs from the registered notifyUrl',
          },
        ]);
      }
      // Defaults are filled before hashing, so an explicit default is the same request. The hash
      // takes the body's notifyUrl, so a repeat stays a repeat if the registered one changes.
      const timeoutSeconds = request.timeoutSeconds ?? channel.timeoutSeconds;
      const requestHash = createHash('sha256')
        .update(JSON.stringify([merchant.merchantId, request.orderId, request.amount, request.currency, request.channel, timeoutSeconds, request.notifyUrl ?? null]))
        .digest('hex');

      const now = new Date();
      const row: NewPayment = {
        public_id: generatePublicId(),
        merchant_id: merchant.merchantId,
        order_id: request.orderId,
        amount: request.amount,
        currency: request.currency,
        channel: request.channel,
        status: 'PENDING',
        request_hash: requestHash,
        notify_url: request.notifyUrl ?? merchant.notifyUrl,
        expires_at: new Date(now.getTime() + timeoutSeconds * 1000),
        created_at: now,
      };
      return createInBatch({ row, correlationId: currentCorrelationId() });
    },

    /** The payment, if `mayRead` allows its merchant; another merchant's payment is a 404 too. */
    async get(publicId: string, mayRead: (merchantId: string) => boolean): Promise<PaymentRow> {
      const row = await repository.findByPublicId(publicId);
      if (!row || !mayRead(row.merchant_id)) throw new NotFoundError(`payment ${publicId} not found`);
      return row;
    },

    /** The merchant's payment for its order id (the merchant is already the caller's). */
    async findByOrder(merchantId: string, orderId: string): Promise<PaymentRow> {
      const row = await repository.findByMerchantOrder(merchantId, orderId);
      if (!row) throw new NotFoundError(`no payment for order ${orderId}`);
      return row;
    },

    /**
     * The payment a channel's own notification names (its out_trade_no, metadata), if it belongs
     * to that channel: a notification verified by one channel never settles another's payment.
     */
    async findForChannel(publicId: string, channel: string): Promise<PaymentRow | undefined> {
      const row = await repository.findByPublicId(publicId);
      return row && row.channel === channel ? row : undefined;
    },

    /**
     * Verifies X-Signature (bound to this payment id, the raw body and a time) before anything
     * else is believed. The header's shape and time are checked before the database is asked.
     */
    async findForCallback(publicId: string, rawBody: Buffer, signature: string | undefined): Promise<PaymentRow> {
      const parsed = parseSignatureHeader(signature);
      if (!parsed) throw new UnauthorizedError('X-Signature is missing or not of the form t=<unix seconds>,v1=<hex>');
      if (Math.abs(Math.floor(Date.now() / 1000) - parsed.t) > SIGNATURE_TOLERANCE_SECONDS) {
        throw new UnauthorizedError(`X-Signature timestamp is more than ${SIGNATURE_TOLERANCE_SECONDS} s from the server's clock`);
      }
      const row = await repository.findByPublicId(publicId);
      if (!row) throw new NotFoundError(`payment ${publicId} not found`);
      const secret = config.channels[row.channel]?.secret;
      const check = secret ? verifyGatewaySignature(secret, publicId, rawBody, signature) : { ok: false as const, reason: 'the channel has no secret' };
      if (!check.ok) throw new UnauthorizedError(check.reason);
      return row;
    },

    /**
     * Applies a verified callback. Repeats change nothing; an amount mismatch or a contradicting
     * result is recorded in payment_events and answered with 409.
     */
    async applyCallback(payment: PaymentRow, callback: CallbackRequest): Promise<PaymentRow> {
      try {
        return await applyCallbackOnce(payment, callback);
      } catch (err) {
        // Two payments racing for one transaction id: the loser's UPDATE meets the unique index.
        // Once more, its check below sees the winner and records the conflict.
        if (!isDuplicateKey(err)) throw err;
        return applyCallbackOnce(payment, callback);
      }
    },
  };

  async function applyCallbackOnce(payment: PaymentRow, callback: CallbackRequest): Promise<PaymentRow> {
    let conflict: ConflictError | undefined;
    const { row, notifications } = await withLockRetry(
      db,
      config.database.deadlockRetries,
      async (trx) => {
        conflict = undefined;
        const [locked] = await repository.lockByIds(trx, [payment.id]);
        if (!locked) throw new NotFoundError(`payment ${payment.public_id} not found`);
        const at = new Date();
        const record = async (cause: 'amount_mismatch' | 'callback_conflict', message: string, extra: Record<string, unknown> = {}) => {
          await repository.appendEvents(trx, [
            {
              paymentId: locked.id,
              from: locked.status,
              to: locked.status,
              cause,
              at,
              details: { callback, ...extra },
            },
          ]);
          conflict = new ConflictError(message);
          return {
            row: locked,
            notifications: undefined as PendingOutboxMessage | undefined,
          };
        };

        if (callback.result === 'SUCCESS') {
          if (callback.paidAmount !== Number(locked.amount)) {
            return record('amount_mismatch', `paidAmount ${callback.paidAmount} does not match amount ${locked.amount}`);
          }
          if (locked.status === 'PAID' || locked.status === 'PAID_AFTER_CLOSE') {
            if (locked.transaction_id !== callback.transactionId) {
              return record('callback_conflict', `payment is already paid with transaction ${locked.transaction_id}`);
            }
            return { row: locked, notifications: undefined };
          }
          if (locked.status === 'FAILED') return record('callback_conflict', 'payment has already FAILED');
          const owner = await repository.findByTransactionId(trx, locked.channel, callback.transactionId as string);
          if (owner !== undefined && owner !== locked.id) {
            return record('callback_conflict', `transaction ${callback.transactionId} of channel ${locked.channel} already settled another payment`, { otherPaymentId: owner });
          }
          const late = locked.status === 'CLOSED';
          const result = await transitions.apply(trx, {
            rows: [locked],
            transition: late ? 'payAfterClose' : 'pay',
            cause: late ? 'late_callback' : 'callback',
            at,
            transactionIds: new Map([[locked.id, callback.transactionId as string]]),
          });
          return {
            row: result.changed[0] ?? locked,
            notifications: result.notifications,
          };
        }

        // FAILED: only a PENDING payment can fail; repeating it, or failing a closed one, is a no-op.
        if (locked.status === 'PENDING') {
          const result = await transitions.apply(trx, {
            rows: [locked],
            transition: 'fail',
            cause: 'callback',
            at,
          });
          return {
            row: result.changed[0] ?? locked,
            notifications: result.notifications,
          };
        }
        if (locked.status === 'FAILED' || locked.status === 'CLOSED') return { row: locked, notifications: undefined };
        return record('callback_conflict', `a FAILED callback for a ${locked.status} payment`);
      },
      deps.onLockRetry,
    );
    await outbox.flush([notifications]);
    if (conflict) throw conflict;
    return row;
  }
}
export type PaymentsService = ReturnType<typeof createPaymentsService>;
