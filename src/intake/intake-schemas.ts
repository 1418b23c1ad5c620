import { identifier } from '../shared/validation';
import { createPaymentSchema } from '../payments/payments-schemas';

/** A create intent: the body of `POST /v1/payments`, with the merchant always named. */
export const paymentIntentSchema = createPaymentSchema.extend({ merchantId: identifier });
