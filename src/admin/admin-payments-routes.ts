import { Router } from 'express';
import { toResource } from '../payments/payment-resource';
import type { PaymentRow, PaymentsRepository } from '../payments/payments-repository';
import type { PaymentTimeline } from '../payments/payment-timeline';
import { NotFoundError } from '../shared/errors';
import { parseOrThrow } from '../shared/validation';
import { adminPaymentParams, adminPaymentQuery } from './admin-payments-schemas';

/**
 * "Where is payment X?" for ops: any merchant's payment, by its id or by merchant and order id,
 * with its timeline (payment-timeline.ts). Mounted behind the admin token (admin-routes.ts).
 */
export function createAdminPaymentsRoutes(deps: { payments: PaymentsRepository; timeline: PaymentTimeline }): Router {
  const router = Router();
  const answer = async (row: PaymentRow) => ({ payment: toResource(row), events: await deps.timeline.of(row) });

  router.get('/v1/admin/payments/:id', async (req, res) => {
    const { id } = parseOrThrow(adminPaymentParams, req.params);
    const row = await deps.payments.findByPublicId(id);
    if (!row) throw new NotFoundError(`payment ${id} not found`);
    res.json(await answer(row));
  });
  router.get('/v1/admin/payments', async (req, res) => {
    const { merchantId, orderId } = parseOrThrow(adminPaymentQuery, req.query);
    const row = await deps.payments.findByMerchantOrder(merchantId, orderId);
    if (!row) throw new NotFoundError(`no payment of merchant ${merchantId} for order ${orderId}`);
    res.json(await answer(row));
  });
  return router;
}
