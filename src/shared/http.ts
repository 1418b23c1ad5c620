import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { AppError, UnavailableError, UnsupportedMediaTypeError, ValidationError } from './errors';
import type { Logger } from './logger';
import { CORRELATION_ID, runWithCorrelationId } from './request-context';
import type { Metrics } from './metrics';

export type RawBodyRequest = express.Request & { rawBody?: Buffer };

/** Correlation id from X-Request-Id (nginx sets one) or a new one; echoed on the response. */
export function correlationMiddleware(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.header('x-request-id');
    const id = incoming && CORRELATION_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    runWithCorrelationId(id, next);
  };
}

/** JSON only, at most `limit` bytes; keeps the raw bytes for signature checks. */
export function jsonBodyMiddleware(limit: number): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json')) {
      next(new UnsupportedMediaTypeError(`Content-Type must be application/json, got ${req.headers['content-type'] ?? 'none'}`));
      return;
    }
    next();
  };
  const parse = express.json({
    limit,
    strict: false,
    verify: (req, _res, buf) => {
      (req as RawBodyRequest).rawBody = Buffer.from(buf);
    },
  });
  return [requireJson, parse];
}

export function metricsMiddleware(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpRequests.startTimer();
    res.on('finish', () => {
      // The matched route pattern, never the raw path: ids would explode the label set.
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'PROTOCOL_CONNECTION_LOST', 'EPIPE', 'ER_SERVER_SHUTDOWN']);

/** The database is down or restarting: a client should retry, so 503 rather than 500. */
function isDependencyDown(err: unknown): boolean {
  const e = err as { code?: string; name?: string };
  return CONNECTION_ERRORS.has(e.code ?? '') || e.name === 'KnexTimeoutError';
}

/** The one error handler: AppErrors keep their code; anything else is a bare 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let appError: AppError;
    const type = (err as { type?: string }).type;
    if (err instanceof AppError) appError = err;
    else if (type === 'entity.too.large') appError = new AppError('PAYLOAD_TOO_LARGE', 'request body is larger than the limit', 413);
    else if (type === 'entity.parse.failed') appError = new ValidationError('request body is not valid JSON');
    else if (type === 'encoding.unsupported' || type === 'charset.unsupported') appError = new UnsupportedMediaTypeError(String(err.message));
    // http-errors style client errors, e.g. the router's URIError for a malformed %-escape in a path.
    else if ((err as { status?: number }).status === 400) appError = new ValidationError('request URL or body is malformed');
    else if (isDependencyDown(err)) appError = new UnavailableError('a dependency is unavailable; retry shortly');
    else appError = new AppError('INTERNAL', 'internal error', 500, { cause: err });

    if (appError.httpStatus >= 500) {
      logger.error('request failed', { method: req.method, path: req.path, error: String(err?.stack ?? err) });
    }
    const body: { error: { code: string; message: string; details?: unknown } } = {
      error: { code: appError.code, message: appError.httpStatus === 500 ? 'internal error' : appError.message },
    };
    if (appError.options.details && appError.options.details.length > 0) body.error.details = appError.options.details;
    res.status(appError.httpStatus).json(body);
  };
}

export function notFoundHandler(): RequestHandler {
  return (req, _res, next) => next(new AppError('NOT_FOUND', `no route for ${req.method} ${req.path}`, 404));
}
