import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/config-schema';
import { DESTINATIONS } from '../infra/broker-topology';
import { withLockRetry, type Database } from '../infra/database';
import type { Outbox, PendingOutboxMessage } from '../outbox/outbox';
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from '../shared/errors';
import { currentCorrelationId } from '../shared/request-context';
import type { PaymentRow, PaymentsRepository } from './payments-repository';
import type { PaymentTransitions } from './payment-transitions';
import type { CallbackRequest, CreatePaymentRequest } from './payments-schemas';

export interface CreateResult {
  created: boolean;
  payment: PaymentRow;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** An opaque, non-sequential id: "pay_" and 22 base62 characters from 128 random bits. */
export function generatePublicId(): string {
  let n = BigInt(`0x${randomBytes(16).toString('hex')}`);
  let out = '';
  for (let i = 0; i < 22; i++) {
    out += BASE62[Number(n % 62n)];
    n /= 62n;
  }
  return `pay_${out}`;
}

/** hex(HMAC-SHA256(secret, body)), the channel callback signature. */
export function signBody(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

function signatureMatches(secret: string, rawBody: Buffer, signature: string | undefined): boolean {
  if (!signature || !/^[0-9a-fA-F]{64}$/.test(signature)) return false;
  return timingSafeEqual(Buffer.from(signBody(secret, rawBody), 'hex'), Buffer.from(signature, 'hex'));
}

function isDuplicateKey(err: unknown): boolean {
  return (err as { errno?: number }).errno === 1062;
}

/** Intake and callbacks: the HTTP-facing use cases of DESIGN section 4. */
export function createPaymentsService(deps: {
  config: Config;
  db: Database;
  repository: PaymentsRepository;
  transitions: PaymentTransitions;
  outbox: Outbox;
  onLockRetry?: (err: unknown) => void;
}) {
  const { config, db, repository, transitions, outbox } = deps;

  function channelOf(name: string) {
    const channel = config.channels[name];
    if (!channel) {
      throw new ValidationError(`channel must be one of: ${Object.keys(config.channels).join(', ')}`, [
        { path: 'channel', message: `unknown channel "${name}"` },
      ]);
    }
    return channel;
  }

  async function afterCommit(pending: PendingOutboxMessage[]): Promise<void> {
    await outbox.flush(pending);
  }

  return {
    async create(request: CreatePaymentRequest): Promise<CreateResult> {
      const channel = channelOf(request.channel);
      // Defaults are filled before hashing, so an explicit default is the same request.
      const normalised = { ...request, timeoutSeconds: request.timeoutSeconds ?? channel.timeoutSeconds, notifyUrl: request.notifyUrl ?? null };
      const requestHash = createHash('sha256')
        .update(JSON.stringify([normalised.merchantId, normalised.orderId, normalised.amount, normalised.currency, normalised.channel, normalised.timeoutSeconds, normalised.notifyUrl]))
        .digest('hex');

      const existingOrConflict = (row: PaymentRow): CreateResult => {
        if (row.request_hash !== requestHash) {
          throw new ConflictError(`order ${request.orderId} of merchant ${request.merchantId} exists with a different body`, [
            { path: '', message: `existing payment ${row.public_id}` },
          ]);
        }
        return { created: false, payment: row };
      };

      // Insert first: a repeat is rare, so it pays the duplicate-key round trip, not every create.
      const now = new Date();
      const expiresAt = new Date(now.getTime() + normalised.timeoutSeconds * 1000);
      const row: Omit<PaymentRow, 'id'> = {
        public_id: generatePublicId(),
        merchant_id: request.merchantId,
        order_id: request.orderId,
        amount: request.amount,
        currency: request.currency,
        channel: request.channel,
        status: 'PENDING',
        request_hash: requestHash,
        notify_url: normalised.notifyUrl,
        transaction_id: null,
        expires_at: expiresAt,
        created_at: now,
        updated_at: now,
        paid_at: null,
        closed_at: null,
      };
      let timer: PendingOutboxMessage;
      let id: number;
      try {
        [id, timer] = await db.transaction(async (trx) => {
          const newId = await repository.insert(trx, row);
          await repository.appendEvents(trx, [{ paymentId: newId, from: null, to: 'PENDING', cause: 'created', at: now }]);
          const pending = await outbox.add(trx, {
            destination: DESTINATIONS.paymentTimer,
            deadline: expiresAt.getTime(),
            attempt: 1,
            correlationId: currentCorrelationId(),
            body: { paymentId: newId },
          });
          return [newId, pending] as const;
        });
      } catch (err) {
        // A repeat, or two identical creates racing: answer like a repeat (or 409 on another body).
        if (!isDuplicateKey(err)) throw err;
        const winner = await repository.findByMerchantOrder(request.merchantId, request.orderId);
        if (!winner) throw err;
        return existingOrConflict(winner);
      }
      await afterCommit([timer]);
      return { created: true, payment: { ...row, id } };
    },

    async get(publicId: string): Promise<PaymentRow> {
      const row = await repository.findByPublicId(publicId);
      if (!row) throw new NotFoundError(`payment ${publicId} not found`);
      return row;
    },

    /** Verifies the signature over the raw body before anything else is believed. */
    async findForCallback(publicId: string, rawBody: Buffer, signature: string | undefined): Promise<PaymentRow> {
      const row = await repository.findByPublicId(publicId);
      if (!row) throw new NotFoundError(`payment ${publicId} not found`);
      const secret = config.channels[row.channel]?.secret;
      if (!secret || !signatureMatches(secret, rawBody, signature)) {
        throw new UnauthorizedError('X-Signature does not match the body');
      }
      return row;
    },

    /**
     * Applies a verified callback. Repeats change nothing; an amount mismatch or a contradicting
     * result is recorded in payment_events and answered with 409.
     */
    async applyCallback(payment: PaymentRow, callback: CallbackRequest): Promise<PaymentRow> {
      let conflict: ConflictError | undefined;
      const { row, notifications } = await withLockRetry(
        db,
        config.database.deadlockRetries,
        async (trx) => {
          conflict = undefined;
          const [locked] = await repository.lockByIds(trx, [payment.id]);
          if (!locked) throw new NotFoundError(`payment ${payment.public_id} not found`);
          const at = new Date();
          const record = async (cause: 'amount_mismatch' | 'callback_conflict', message: string) => {
            await repository.appendEvents(trx, [
              { paymentId: locked.id, from: locked.status, to: locked.status, cause, at, details: { callback } },
            ]);
            conflict = new ConflictError(message);
            return { row: locked, notifications: [] as PendingOutboxMessage[] };
          };

          if (callback.result === 'SUCCESS') {
            if (callback.paidAmount !== Number(locked.amount)) {
              return record('amount_mismatch', `paidAmount ${callback.paidAmount} does not match amount ${locked.amount}`);
            }
            if (locked.status === 'PAID' || locked.status === 'PAID_AFTER_CLOSE') {
              if (locked.transaction_id !== callback.transactionId) {
                return record('callback_conflict', `payment is already paid with transaction ${locked.transaction_id}`);
              }
              return { row: locked, notifications: [] };
            }
            if (locked.status === 'FAILED') return record('callback_conflict', 'payment has already FAILED');
            const late = locked.status === 'CLOSED';
            const result = await transitions.apply(trx, {
              rows: [locked],
              transition: late ? 'payAfterClose' : 'pay',
              cause: late ? 'late_callback' : 'callback',
              at,
              transactionIds: new Map([[locked.id, callback.transactionId as string]]),
            });
            return { row: result.changed[0] ?? locked, notifications: result.notifications };
          }

          // FAILED: only a PENDING payment can fail; repeating it, or failing a closed one, is a no-op.
          if (locked.status === 'PENDING') {
            const result = await transitions.apply(trx, { rows: [locked], transition: 'fail', cause: 'callback', at });
            return { row: result.changed[0] ?? locked, notifications: result.notifications };
          }
          if (locked.status === 'FAILED' || locked.status === 'CLOSED') return { row: locked, notifications: [] };
          return record('callback_conflict', `a FAILED callback for a ${locked.status} payment`);
        },
        deps.onLockRetry,
      );
      await afterCommit(notifications);
      if (conflict) throw conflict;
      return row;
    },
  };
}
export type PaymentsService = ReturnType<typeof createPaymentsService>;
