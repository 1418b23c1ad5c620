import { z } from 'zod';

/** GET /v1/admin/stats: over the newest `window` payments. */
export const statsQuery = z.object({ window: z.coerce.number().int().min(1).max(100000).default(10000) }).strict();
