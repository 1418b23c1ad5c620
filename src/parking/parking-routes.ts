import { Router } from 'express';
import type { Logger } from '../shared/logger';
import { parseOrThrow } from '../shared/validation';
import { parkedItemParams, parkedListQuery } from './parking-schemas';
import type { ParkingService } from './parking-service';

/** /v1/admin/parked: parked items (paged), replay and delete. Mounted behind the admin token (admin/admin-routes.ts). */
export function createParkingRoutes(deps: { parking: ParkingService; logger: Logger }): Router {
  const router = Router();
  router.get('/v1/admin/parked', async (req, res) => {
    const q = parseOrThrow(parkedListQuery, req.query);
    res.json(await deps.parking.list({ limit: q.limit, beforeId: q.before, purpose: q.purpose }));
  });
  router.post('/v1/admin/parked/:id/replay', async (req, res) => {
    const { id } = parseOrThrow(parkedItemParams, req.params);
    await deps.parking.replay(id);
    deps.logger.info('parked item replayed', { parkedId: id });
    res.status(202).json({ replayed: id });
  });
  router.delete('/v1/admin/parked/:id', async (req, res) => {
    const { id } = parseOrThrow(parkedItemParams, req.params);
    await deps.parking.remove(id);
    deps.logger.info('parked item deleted', { parkedId: id });
    res.status(204).end();
  });
  return router;
}
