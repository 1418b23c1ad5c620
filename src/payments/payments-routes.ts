import { Router } from 'express';
import type { RawBodyRequest } from '../shared/http';
import type { Logger } from '../shared/logger';
import type { Metrics } from '../ops/metrics';
import { toResource } from './payment-resource';
import { callbackSchema, createPaymentSchema, parseOrThrow } from './payments-schemas';
import type { PaymentsService } from './payments-service';

/** POST /v1/payments, GET /v1/payments/:id, POST /v1/payments/:id/callback (DESIGN section 4). */
export function createPaymentsRoutes(deps: { service: PaymentsService; logger: Logger; metrics: Metrics }): Router {
  const { service, logger, metrics } = deps;
  const router = Router();

  router.post('/v1/payments', async (req, res) => {
    const request = parseOrThrow(createPaymentSchema, req.body);
    const { created, payment } = await service.create(request);
    if (created) {
      metrics.paymentsCreated.inc({ channel: payment.channel });
      logger.info('payment created', { paymentId: payment.public_id, merchantId: payment.merchant_id, orderId: payment.order_id, expiresAt: payment.expires_at });
    }
    res.status(created ? 201 : 200).json(toResource(payment));
  });

  router.get('/v1/payments/:id', async (req, res) => {
    res.json(toResource(await service.get(req.params.id)));
  });

  router.post('/v1/payments/:id/callback', async (req, res) => {
    const rawBody = (req as RawBodyRequest).rawBody ?? Buffer.alloc(0);
    const payment = await service.findForCallback(req.params.id, rawBody, req.header('x-signature'));
    const callback = parseOrThrow(callbackSchema, req.body);
    const updated = await service.applyCallback(payment, callback);
    logger.info('callback applied', { paymentId: payment.public_id, result: callback.result, status: updated.status });
    res.json(toResource(updated));
  });

  return router;
}
