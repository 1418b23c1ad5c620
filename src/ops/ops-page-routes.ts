import { createHash } from 'node:crypto';
import { Router } from 'express';
import { OPS_PAGE_HTML, OPS_PAGE_SCRIPT, OPS_PAGE_STYLE } from './ops-page';

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * The page itself is public: it holds no data, and every call it makes to /v1/admin/* carries the
 * token the operator types. The CSP allows only the page's own inline script and style (by hash)
 * and requests to this origin, and `form-action 'none'` keeps the token out of any URL.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(OPS_PAGE_SCRIPT)}`,
  `style-src ${sha256(OPS_PAGE_STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** GET /ops: the operator's dashboard, one self-contained HTML page over the admin API. */
export function createOpsPageRoutes(): Router {
  const router = Router();
  router.get('/ops', (_req, res) => {
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.type('html').send(OPS_PAGE_HTML);
  });
  return router;
}
