/**
 * The no-op ceiling's backend: an express 5 app (the service's own framework and version) whose
 * route does nothing. It answers POST /v1/payments with 201 and an empty JSON object without
 * reading the body, so the same autocannon load as the intake scenario can be pointed at it.
 * Started twice by the ceilings scenario, behind its own nginx rendered from the service's template.
 */
import express from 'express';

const port = Number(process.env.PORT ?? 0);
const app = express();
app.disable('x-powered-by');
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.post('/v1/payments', (_req, res) => {
  res.status(201).json({});
});
const server = app.listen(port, '127.0.0.1', (err?: Error) => {
  if (err) {
    process.stderr.write(`noop server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
