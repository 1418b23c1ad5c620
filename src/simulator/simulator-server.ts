import express from 'express';
import { z } from 'zod';
import { signGatewayRequest, verifyGatewaySignature } from '../shared/gateway-signature';

const answerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('paid'), transactionId: z.string().optional(), paidAmount: z.number().int().optional() }).strict(),
  z.object({ kind: z.literal('not_paid') }).strict(),
  z.object({ kind: z.literal('unknown') }).strict(),
  z.object({ kind: z.literal('error'), status: z.number().int().min(400).max(599).default(500) }).strict(),
  z.object({ kind: z.literal('slow'), ms: z.number().int().positive().max(120000) }).strict(),
  /** The customer pays between our query and our close: the query says NOT_PAID, the close is refused, later queries say PAID. */
  z.object({ kind: z.literal('paid_during_close'), transactionId: z.string() }).strict(),
]);
type Answer = z.infer<typeof answerSchema>;
const scriptSchema = z.object({ answers: z.array(answerSchema).min(1) }).strict();

export interface SimulatorCall {
  op: 'query' | 'close';
  paymentId: string;
  orderId: string;
  attempt: number;
  /** X-Request-Id: the correlation id of the request that created the payment. */
  requestId: string | null;
  /** Whether X-Signature verified with the channel's secret, for this payment, body and time. */
  signed: boolean;
  at: string;
  answered: string;
}

/**
 * A scriptable payment channel speaking the http adapter's protocol. Scripts are keyed by
 * payment id, order id or merchant id (checked in that order, then "default"); each query takes
 * the next answer and the last one repeats.
 *   PUT  /script/:key   { "answers": [{ "kind": "error" }, { "kind": "paid" }] }
 *   GET  /calls?paymentId=...      what the channel was asked, in order
 *   POST /callbacks { target, paymentId, channel, body }   sends a signed channel callback
 */
const callbackSchema = z
  .object({
    /** The service's base URL, e.g. http://127.0.0.1:8080. */
    target: z.string().url(),
    paymentId: z.string().min(1).max(64),
    channel: z.string().regex(/^[a-z0-9_]{1,32}$/),
    body: z.object({ result: z.enum(['SUCCESS', 'FAILED']), transactionId: z.string().optional(), paidAmount: z.number().int().optional() }).strict(),
  })
  .strict();

/** The channel's secret: CHANNEL_SECRET_<NAME>, or the development one the service also falls back to. */
export function channelSecretOf(channel: string, env: NodeJS.ProcessEnv = process.env): string {
  return env[`CHANNEL_SECRET_${channel.toUpperCase()}`] ?? `dev-secret-${channel}`;
}

export function createSimulatorApp(options: { secretOf?: (channel: string) => string } = {}) {
  const secretOf = options.secretOf ?? ((channel: string) => channelSecretOf(channel));
  const scripts = new Map<string, Answer[]>();
  const calls: SimulatorCall[] = [];
  function record(op: SimulatorCall['op'], req: express.Request, answered: string): void {
    const payment = req.body as { id: string; orderId: string; channel: string };
    const rawBody = (req as express.Request & { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0);
    calls.push({
      op,
      paymentId: payment.id,
      orderId: payment.orderId,
      attempt: Number(req.header('x-compensator-attempt') ?? 0),
      requestId: req.header('x-request-id') ?? null,
      signed: typeof payment.channel === 'string' && verifyGatewaySignature(secretOf(payment.channel), payment.id, rawBody, req.header('x-signature')).ok,
      at: new Date().toISOString(),
      answered,
    });
  }
  const paidDuringClose = new Set<string>();
  const app = express();
  app.use(express.json({ limit: '64kb', verify: (req, _res, buf) => ((req as express.Request & { rawBody?: Buffer }).rawBody = Buffer.from(buf)) }));

  function nextAnswer(keys: string[]): Answer {
    for (const key of keys) {
      const answers = scripts.get(key);
      if (!answers) continue;
      return (answers.length > 1 ? answers.shift() : answers[0]) as Answer;
    }
    return { kind: 'not_paid' };
  }

  app.put('/script/:key', (req, res) => {
    const parsed = scriptSchema.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: parsed.error.issues[0]?.message ?? 'bad script' } });
      return;
    }
    scripts.set(req.params.key, [...parsed.data.answers]);
    res.status(204).end();
  });
  app.delete('/script/:key', (req, res) => {
    scripts.delete(req.params.key);
    res.status(204).end();
  });
  app.get('/calls', (req, res) => {
    const id = req.query.paymentId;
    res.json({ calls: typeof id === 'string' ? calls.filter((c) => c.paymentId === id) : calls.slice(-1000) });
  });
  // Sends a channel callback to the service, signed the way the gateway signs (t, payment id, body).
  app.post('/callbacks', async (req, res) => {
    const parsed = callbackSchema.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: parsed.error.issues[0]?.message ?? 'bad callback' } });
      return;
    }
    const { target, paymentId, channel, body } = parsed.data;
    const raw = JSON.stringify(body);
    try {
      const answer = await fetch(`${target.replace(/\/$/, '')}/v1/payments/${encodeURIComponent(paymentId)}/callback`, {
        method: 'POST',
        body: raw,
        headers: { 'content-type': 'application/json', 'x-signature': signGatewayRequest(secretOf(channel), paymentId, raw) },
        signal: AbortSignal.timeout(10000),
      });
      res.json({ status: answer.status, body: (await answer.json().catch(() => null)) as unknown });
    } catch (err) {
      res.status(502).json({ error: { code: 'UNAVAILABLE', message: (err as Error).message } });
    }
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.post('/orders/query', async (req, res) => {
    const payment = req.body as { id: string; orderId: string; merchantId: string; amount: number };
    const answer = nextAnswer([payment.id, payment.orderId, payment.merchantId, 'default']);
    record('query', req, answer.kind);
    switch (answer.kind) {
      case 'paid':
        res.json({ status: 'PAID', transactionId: answer.transactionId ?? `sim-${payment.id}`, paidAmount: answer.paidAmount ?? payment.amount });
        return;
      case 'not_paid':
        res.json({ status: 'NOT_PAID' });
        return;
      case 'unknown':
        res.json({ status: 'UNKNOWN', reason: 'simulator: order state unknown' });
        return;
      case 'error':
        res.status(answer.status).json({ error: 'simulated channel error' });
        return;
      case 'paid_during_close':
        paidDuringClose.add(payment.id);
        scripts.set(payment.id, [{ kind: 'paid', transactionId: answer.transactionId }]);
        res.json({ status: 'NOT_PAID' });
        return;
      case 'slow':
        await new Promise((r) => setTimeout(r, answer.ms).unref());
        if (!res.writableEnded && !req.socket.destroyed) res.json({ status: 'NOT_PAID' });
    }
  });

  app.post('/orders/close', (req, res) => {
    const id = (req.body as { id: string }).id;
    if (paidDuringClose.has(id)) {
      record('close', req, 'refused');
      res.json({ closed: false, reason: 'ORDERPAID' });
      return;
    }
    record('close', req, 'closed');
    res.json({ closed: true });
  });

  return app;
}
