import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../shared/validation';
import type { Database } from '../infra/database';
import type { BacklogReader } from '../ops/backlog';
import { readPaymentStats } from '../ops/payment-stats';
import type { Logger } from '../shared/logger';
import { requireAdminToken } from './admin-auth';
import type { ParkingService } from './parking-service';

const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z.coerce.number().int().positive().optional(),
    purpose: z.enum(['compensation', 'notification']).optional(),
  })
  .strict();
const statsQuery = z.object({ window: z.coerce.number().int().min(1).max(100000).default(10000) }).strict();
const idParam = z.object({ id: z.coerce.number().int().positive() });

/** /v1/admin/*: backlog per queue, parked items (paged), replay and delete. Bearer token required. */
export function createAdminRoutes(deps: { adminToken: string | undefined; parking: ParkingService; backlog: BacklogReader; db: Database; logger: Logger }): Router {
  const router = Router();
  router.use('/v1/admin', requireAdminToken(deps.adminToken));

  router.get('/v1/admin/stats', async (req, res) => {
    const { window } = parseOrThrow(statsQuery, req.query);
    res.json(await readPaymentStats(deps.db, window));
  });
  router.get('/v1/admin/backlog', async (_req, res) => {
    res.json(await deps.backlog.read());
  });
  router.get('/v1/admin/parked', async (req, res) => {
    const q = parseOrThrow(listQuery, req.query);
    res.json(await deps.parking.list({ limit: q.limit, beforeId: q.before, purpose: q.purpose }));
  });
  router.post('/v1/admin/parked/:id/replay', async (req, res) => {
    const { id } = parseOrThrow(idParam, req.params);
    await deps.parking.replay(id);
    deps.logger.info('parked item replayed', { parkedId: id });
    res.status(202).json({ replayed: id });
  });
  router.delete('/v1/admin/parked/:id', async (req, res) => {
    const { id } = parseOrThrow(idParam, req.params);
    await deps.parking.remove(id);
    deps.logger.info('parked item deleted', { parkedId: id });
    res.status(204).end();
  });
  return router;
}
