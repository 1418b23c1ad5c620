import { z } from 'zod';
import { identifier } from '../shared/validation';

/** A payment's public id: "pay_" and 22 base62 characters (payments-service.ts, generatePublicId). */
export const paymentPublicId = z.string().regex(/^pay_[0-9A-Za-z]{22}$/, 'must be "pay_" and 22 base62 characters');

/** GET /v1/admin/payments/:id */
export const adminPaymentParams = z.object({ id: paymentPublicId });

/** GET /v1/admin/payments?merchantId=&orderId=: both required, nothing else. */
export const adminPaymentQuery = z.object({ merchantId: identifier, orderId: identifier }).strict();
