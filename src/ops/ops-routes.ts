import { Router } from 'express';
import type { Broker } from '../infra/broker';
import type { Database } from '../infra/database';
import type { Metrics } from '../shared/metrics';

/**
 * /healthz (alive) and /readyz (database and broker answer). With `details` false (the public
 * listener when the admin side has its own), /readyz says only ready or not.
 */
export function createHealthRoutes(deps: { db: Database; broker: Broker; details: boolean }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    try {
      await Promise.race([
        deps.db.raw('SELECT 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 2 s')), 2000).unref()),
      ]);
      checks.database = 'ok';
    } catch (err) {
      checks.database = `failed: ${(err as Error).message.split('\n')[0]}`;
    }
    checks.broker = deps.broker.connected ? 'ok' : 'failed: not connected';
    const ready = Object.values(checks).every((c) => c === 'ok');
    if (!deps.details) {
      if (ready) res.json({ status: 'ready' });
      else res.status(503).json({ error: { code: 'UNAVAILABLE', message: 'not ready' } });
      return;
    }
    if (ready) {
      res.json({ status: 'ready', checks });
    } else {
      res.status(503).json({ error: { code: 'UNAVAILABLE', message: 'not ready', details: Object.entries(checks).filter(([, v]) => v !== 'ok').map(([path, message]) => ({ path, message })) } });
    }
  });
  return router;
}

/** /metrics: Prometheus text, on the admin side. */
export function createMetricsRoutes(deps: { db: Database; broker: Broker; metrics: Metrics }): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    deps.metrics.brokerConnected.set(deps.broker.connected ? 1 : 0);
    try {
      // The outbox is small (rows leave within seconds), so this stays cheap at every scrape.
      const row = await deps.db('outbox').count({ n: '*' }).min({ oldest: 'created_at' }).first().timeout(1000);
      deps.metrics.outboxPending.set(Number(row?.n ?? 0));
      deps.metrics.outboxOldestAge.set(row?.oldest ? Math.max(0, (Date.now() - new Date(row.oldest).getTime()) / 1000) : 0);
    } catch {
      // database down: /readyz says so; keep serving the other metrics
    }
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  return router;
}
