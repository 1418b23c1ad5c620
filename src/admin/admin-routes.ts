import { Router } from 'express';
import { parseOrThrow } from '../shared/validation';
import type { BacklogReader } from '../ops/backlog';
import { readPaymentStats } from '../ops/payment-stats';
import type { PaymentsRepository } from '../payments/payments-repository';
import type { PaymentTimeline } from '../payments/payment-timeline';
import type { Logger } from '../shared/logger';
import { requireAdminToken } from './admin-auth';
import { createAdminPaymentsRoutes } from './admin-payments-routes';
import { statsQuery } from './admin-schemas';
import { createParkingRoutes } from '../parking/parking-routes';
import type { ParkingService } from '../parking/parking-service';

/** /v1/admin/*: payment stats, backlog per queue, a payment's timeline and the parking lot's routes. Bearer token required. */
export function createAdminRoutes(deps: { adminToken: string | undefined; parking: ParkingService; backlog: BacklogReader; payments: PaymentsRepository; timeline: PaymentTimeline; logger: Logger }): Router {
  const router = Router();
  router.use('/v1/admin', requireAdminToken(deps.adminToken));

  router.get('/v1/admin/stats', async (req, res) => {
    const { window } = parseOrThrow(statsQuery, req.query);
    res.json(await readPaymentStats(deps.payments, window));
  });
  router.get('/v1/admin/backlog', async (_req, res) => {
    res.json(await deps.backlog.read());
  });
  router.use(createAdminPaymentsRoutes({ payments: deps.payments, timeline: deps.timeline }));
  router.use(createParkingRoutes({ parking: deps.parking, logger: deps.logger }));
  return router;
}
