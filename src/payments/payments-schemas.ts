import { z } from 'zod';
import { httpUrl, identifier } from '../shared/validation';

export const createPaymentSchema = z
  .object({
    /** Optional with a merchant's key (it must then be that merchant); required with a platform key. */
    merchantId: identifier.optional(),
    orderId: identifier,
    amount: z
      .number({ error: 'amount must be a positive integer' })
      .int('amount must be a positive integer')
      .positive('amount must be a positive integer')
      .max(1e12, 'amount must be at most 10^12'),
    currency: z.string().regex(/^[A-Z]{3}$/, 'currency must be an ISO 4217 code of three upper-case letters'),
    channel: identifier,
    timeoutSeconds: z
      .number({ error: 'timeoutSeconds must be an integer' })
      .int('timeoutSeconds must be an integer')
      .min(1, 'timeoutSeconds must be from 1 to 2592000')
      .max(2_592_000, 'timeoutSeconds must be from 1 to 2592000')
      .optional(),
    notifyUrl: httpUrl('notifyUrl must be an http(s) URL')
      .optional(),
  })
  .strict();
export type CreatePaymentRequest = z.infer<typeof createPaymentSchema>;

/** `POST /v1/payments/:id/cancel` takes no fields: an empty body, or `{}`. */
export const cancelPaymentSchema = z.object({}).strict();

/** `GET /v1/payments?orderId=` (a platform key adds `merchantId`). */
export const findByOrderSchema = z
  .object({
    orderId: identifier,
    merchantId: identifier.optional(),
  })
  .strict();
export type FindByOrderRequest = z.infer<typeof findByOrderSchema>;

export const callbackSchema = z
  .object({
    result: z.enum(['SUCCESS', 'FAILED'], { error: 'result must be SUCCESS or FAILED' }),
    transactionId: z.string().min(1).max(128).optional(),
    paidAmount: z.number().int('paidAmount must be an integer').min(0).max(1e12).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.result !== 'SUCCESS') return;
    if (body.transactionId === undefined) ctx.addIssue({ code: 'custom', path: ['transactionId'], message: 'transactionId is required for SUCCESS' });
    if (body.paidAmount === undefined) ctx.addIssue({ code: 'custom', path: ['paidAmount'], message: 'paidAmount is required for SUCCESS' });
  });
export type CallbackRequest = z.infer<typeof callbackSchema>;
