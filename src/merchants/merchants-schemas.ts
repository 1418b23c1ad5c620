import { z } from 'zod';
import { httpUrl, identifier } from '../shared/validation';

export const registerMerchantSchema = z
  .object({
    merchantId: identifier,
    name: z.string().trim().min(1, 'name must be 1 to 200 characters').max(200, 'name must be 1 to 200 characters'),
    notifyUrl: httpUrl('notifyUrl must be an http(s) URL'),
  })
  .strict();

/** A RabbitMQ user name as the stack and provision-app-user.sh make them. */
export const amqpUserName = z.string().regex(/^[A-Za-z0-9_.:@-]{1,64}$/, 'amqpUser must be 1 to 64 characters from [A-Za-z0-9_.:@-]');

export const platformKeySchema = z
  .object({
    merchants: z.array(z.union([z.literal('*'), identifier])).min(1, 'merchants must list at least one merchant, or "*"').max(1000),
    /** The RabbitMQ user whose payment intents act with this key. */
    amqpUser: amqpUserName.optional(),
  })
  .strict();

export const merchantParams = z.object({ merchantId: identifier }).strict();
const keyId = z.string().regex(/^key_[A-Za-z0-9]{16}$/, 'not a key id');
export const apiKeyParams = z.object({ merchantId: identifier, keyId }).strict();
export const platformKeyParams = z.object({ keyId }).strict();
