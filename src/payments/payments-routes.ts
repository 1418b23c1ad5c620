import { createHash } from 'node:crypto';
import { Router, type Request } from 'express';
import { rateLimit } from 'express-rate-limit';
import { AppError } from '../shared/errors';
import { mayActFor, type MerchantsService, type Principal } from '../merchants/merchants-service';
import type { RawBodyRequest } from '../shared/http';
import type { Logger } from '../shared/logger';
import type { Metrics } from '../shared/metrics';
import { parseOrThrow } from '../shared/validation';
import { toResource } from './payment-resource';
import type { PaymentRow } from './payments-repository';
import { callbackSchema, cancelPaymentSchema, createPaymentSchema, findByOrderSchema } from './payments-schemas';
import type { PaymentTimeline } from './payment-timeline';
import type { PaymentsService } from './payments-service';

/** The remedy of a due timer, run now for a merchant's cancel (compensation-service.ts). */
export type CancelPayment = (payment: PaymentRow) => Promise<PaymentRow>;

/**
 * Create, read, find by order, cancel and the timeline with a merchant's API key; POST
 * /v1/payments/:id/callback signed by the channel (README.md, "HTTP API").
 */
export function createPaymentsRoutes(deps: {
  service: PaymentsService;
  merchants: MerchantsService;
  timeline: PaymentTimeline;
  cancel: CancelPayment;
  logger: Logger;
  metrics: Metrics;
  perKeyPerSecond: number;
}): Router {
  const { service, merchants, logger, metrics } = deps;
  const router = Router();
  const principalOf = (req: Request): Promise<Principal> => merchants.authenticate(req.header('authorization'));
  // Per API key, per process (each api replica counts its own); nginx limits per client address.
  const perKey = rateLimit({
    windowMs: 1000,
    limit: deps.perKeyPerSecond,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skip: (req) => !req.header('authorization'),
    keyGenerator: (req) => createHash('sha256').update(req.header('authorization') ?? '').digest('base64url'),
    handler: (_req, res, next) => {
      res.setHeader('Retry-After', '1');
      next(new AppError('RATE_LIMITED', `more than ${deps.perKeyPerSecond} requests per second with this key; retry after 1 s`, 429));
    },
  });

  router.post('/v1/payments', perKey, async (req, res) => {
    const principal = await principalOf(req);
    const request = parseOrThrow(createPaymentSchema, req.body);
    const merchant = await merchants.merchantFor(principal, request.merchantId);
    const { created, payment } = await service.create(request, { merchantId: merchant.merchant_id, notifyUrl: merchant.notify_url });
    if (created) {
      metrics.paymentsCreated.inc({ channel: payment.channel });
      logger.info('payment created', { paymentId: payment.public_id, merchantId: payment.merchant_id, orderId: payment.order_id, expiresAt: payment.expires_at, keyId: principal.keyId });
    }
    res.status(created ? 201 : 200).json(toResource(payment));
  });

  /** The caller's payment by its id; another merchant's is a 404 like a missing one. */
  async function ownPayment(req: Request): Promise<PaymentRow> {
    const principal = await principalOf(req);
    return service.get(String(req.params.id), (merchantId) => mayActFor(principal, merchantId));
  }

  router.get('/v1/payments', perKey, async (req, res) => {
    const principal = await principalOf(req);
    const query = parseOrThrow(findByOrderSchema, req.query);
    const merchant = await merchants.merchantFor(principal, query.merchantId);
    res.json(toResource(await service.findByOrder(merchant.merchant_id, query.orderId)));
  });

  router.get('/v1/payments/:id', perKey, async (req, res) => {
    res.json(toResource(await ownPayment(req)));
  });

  router.get('/v1/payments/:id/events', perKey, async (req, res) => {
    res.json({ events: await deps.timeline.of(await ownPayment(req)) });
  });

  router.post('/v1/payments/:id/cancel', perKey, async (req, res) => {
    const payment = await ownPayment(req);
    if (req.body !== undefined) parseOrThrow(cancelPaymentSchema, req.body);
    const settled = await deps.cancel(payment);
    logger.info('cancel answered', { paymentId: payment.public_id, status: settled.status });
    res.json(toResource(settled));
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
