import { Router } from 'express';
import { requireAdminToken } from '../admin/admin-auth';
import type { Logger } from '../shared/logger';
import { parseOrThrow } from '../shared/validation';
import { apiKeyParams, merchantParams, platformKeyParams, platformKeySchema, registerMerchantSchema } from './merchants-schemas';
import type { MerchantsService } from './merchants-service';

/** The merchant admin API of README.md, "HTTP API"; every route needs the admin token. */
export function createMerchantsRoutes(deps: { adminToken: string | undefined; merchants: MerchantsService; logger: Logger }): Router {
  const { merchants, logger } = deps;
  const router = Router();
  router.use(['/v1/admin/merchants', '/v1/admin/api-keys'], requireAdminToken(deps.adminToken));

  router.post('/v1/admin/merchants', async (req, res) => {
    const created = await merchants.register(parseOrThrow(registerMerchantSchema, req.body));
    logger.info('merchant registered', { merchantId: created.merchantId, keyId: created.apiKey.id });
    res.status(201).json(created);
  });
  router.get('/v1/admin/merchants', async (_req, res) => {
    res.json({ merchants: await merchants.list() });
  });
  router.get('/v1/admin/merchants/:merchantId', async (req, res) => {
    const { merchantId } = parseOrThrow(merchantParams, req.params);
    res.json(await merchants.get(merchantId));
  });
  router.post('/v1/admin/merchants/:merchantId/api-keys', async (req, res) => {
    const { merchantId } = parseOrThrow(merchantParams, req.params);
    const key = await merchants.addApiKey(merchantId);
    logger.info('api key added', { merchantId, keyId: key.id });
    res.status(201).json(key);
  });
  router.delete('/v1/admin/merchants/:merchantId/api-keys/:keyId', async (req, res) => {
    const { merchantId, keyId } = parseOrThrow(apiKeyParams, req.params);
    await merchants.revokeApiKey(merchantId, keyId);
    logger.info('api key revoked', { merchantId, keyId });
    res.status(204).end();
  });
  router.post('/v1/admin/merchants/:merchantId/webhook-secrets', async (req, res) => {
    const { merchantId } = parseOrThrow(merchantParams, req.params);
    const rotated = await merchants.rotateWebhookSecret(merchantId);
    logger.info('webhook secret rotated', { merchantId });
    res.status(201).json(rotated);
  });
  router.get('/v1/admin/api-keys', async (_req, res) => {
    res.json({ platformKeys: await merchants.listPlatformKeys() });
  });
  router.delete('/v1/admin/api-keys/:keyId', async (req, res) => {
    const { keyId } = parseOrThrow(platformKeyParams, req.params);
    await merchants.revokePlatformKey(keyId);
    logger.info('platform key revoked', { keyId });
    res.status(204).end();
  });
  router.post('/v1/admin/api-keys', async (req, res) => {
    const { merchants: list, amqpUser } = parseOrThrow(platformKeySchema, req.body ?? {});
    const key = await merchants.createPlatformKey(list, amqpUser);
    logger.info('platform key created', { keyId: key.id, merchants: list, amqpUser });
    res.status(201).json(key);
  });
  return router;
}
