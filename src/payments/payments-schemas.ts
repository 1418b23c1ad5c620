import { z } from 'zod';
import { ValidationError } from '../shared/errors';

const identifier = z
  .string()
  .min(1, 'must be 1 to 64 characters')
  .max(64, 'must be 1 to 64 characters')
  .regex(/^[A-Za-z0-9_.:-]+$/, 'may only contain A-Z a-z 0-9 _ . : -');

export const createPaymentSchema = z
  .object({
    merchantId: identifier,
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
    notifyUrl: z
      .string()
      .max(2048)
      .refine((u) => {
        try {
          return ['http:', 'https:'].includes(new URL(u).protocol);
        } catch {
          return false;
        }
      }, 'notifyUrl must be an http(s) URL')
      .optional(),
  })
  .strict();
export type CreatePaymentRequest = z.infer<typeof createPaymentSchema>;

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

/** Parses input or throws a ValidationError whose message names the first problem. */
export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    path: issue.path.join('.') || (issue.code === 'unrecognized_keys' ? '' : '(body)'),
    message:
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`
        : issue.path.length > 0 && !issue.message.includes(String(issue.path[0]))
          ? `${issue.path.join('.')}: ${issue.message}`
          : issue.message,
  }));
  throw new ValidationError(details[0]?.message ?? 'invalid request', details);
}
