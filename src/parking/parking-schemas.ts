import { z } from 'zod';

/** GET /v1/admin/parked: keyset paging, newest first. */
export const parkedListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z.coerce.number().int().positive().optional(),
    purpose: z.enum(['compensation', 'notification', 'intake']).optional(),
  })
  .strict();

/** /v1/admin/parked/:id */
export const parkedItemParams = z.object({ id: z.coerce.number().int().positive() });
