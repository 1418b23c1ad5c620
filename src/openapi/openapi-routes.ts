import { Router } from 'express';
import { buildOpenApiDocument } from './openapi-document';

/** GET /openapi.json: the OpenAPI 3.1 document of the API, built once per app. */
export function createOpenApiRoutes(): Router {
  const body = JSON.stringify(buildOpenApiDocument());
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(body);
  });
  return router;
}
