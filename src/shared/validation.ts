import { z } from 'zod';
import { ValidationError } from './errors';

/** Ids in the API (merchants, orders, channels): 1 to 64 characters from [A-Za-z0-9_.:-]. */
export const identifier = z
  .string()
  .min(1, 'must be 1 to 64 characters')
  .max(64, 'must be 1 to 64 characters')
  .regex(/^[A-Za-z0-9_.:-]+$/, 'may only contain A-Z a-z 0-9 _ . : -');

/** An absolute http(s) URL of at most 2,048 characters. */
export const httpUrl = (message: string) =>
  z
    .string()
    .max(2048)
    .refine((u) => {
      try {
        return ['http:', 'https:'].includes(new URL(u).protocol);
      } catch {
        return false;
      }
    }, message);

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
