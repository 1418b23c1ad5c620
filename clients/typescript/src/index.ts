import type { components, operations, paths } from './openapi';

export { signCallback, verifyNotification, WebhookVerificationError, SIGNATURE_TOLERANCE_SECONDS, type HeaderSource, type NotificationEvent } from './signatures';
export type { components, operations, paths } from './openapi';

// Every type below is read from the generated document types (src/openapi.ts), never written by hand.
export type Payment = components['schemas']['Payment'];
export type PaymentStatus = components['schemas']['PaymentStatus'];
export type PaymentEvent = components['schemas']['PaymentEvent'];
export type ErrorCode = components['schemas']['ErrorCode'];
export type ErrorBody = components['schemas']['Error']['error'];
export type CreatePaymentRequest = components['schemas']['CreatePaymentRequest'];
export type CallbackRequest = components['schemas']['CallbackRequest'];
export type FindPaymentByOrderQuery = NonNullable<operations['findPaymentByOrder']['parameters']['query']>;

type Method = 'get' | 'post' | 'delete';
/** The methods the document describes for a path: calling another one does not compile. */
type MethodOf<P extends keyof paths> = { [M in Method]-?: [NonNullable<paths[P][M]>] extends [never] ? never : M }[Method];
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;
type Success<O> = O extends { responses: infer R } ? { [S in keyof R]: S extends 200 | 201 | 202 ? JsonOf<R[S]> : never }[keyof R] : never;
type PathParams<O> = O extends { parameters: { path: infer T } } ? T : never;
type Query<O> = O extends { parameters: { query?: infer T } } ? T : never;
type Body<O> = O extends { requestBody?: { content: { 'application/json': infer T } } } ? T : never;

/** fetch, or anything with its signature (a wrapper that logs, a test's recorder). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Where the API is served, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** A merchant's API key (sk_...), or a platform key (then name merchantId where it is asked for). */
  apiKey: string;
  fetch?: FetchLike;
  /** Per request, unless a call brings its own signal; 10 s by default. */
  timeoutMs?: number;
  /** Sent with every request. */
  headers?: Record<string, string>;
}

export interface CallOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * An answer other than 2xx. `code` is the error body's; an answer without one (a proxy's 502)
 * gets the code of its status, UNAVAILABLE for a 502, 503 or 504.
 */
export class CompensatorError extends Error {
  readonly httpStatus: number;
  readonly code: ErrorCode;
  readonly details: NonNullable<ErrorBody['details']>;
  /** From Retry-After, on a 429. */
  readonly retryAfterSeconds: number | undefined;
  /** The X-Request-Id the service logged the request under. */
  readonly requestId: string | undefined;

  constructor(init: { httpStatus: number; code: ErrorCode; message: string; details?: ErrorBody['details']; retryAfterSeconds?: number; requestId?: string }) {
    super(init.message);
    this.name = 'CompensatorError';
    this.httpStatus = init.httpStatus;
    this.code = init.code;
    this.details = init.details ?? [];
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.requestId = init.requestId;
  }
}

const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'UNAVAILABLE',
};

function errorOf(res: Response, body: unknown): CompensatorError {
  const error = (body as { error?: Partial<ErrorBody> } | undefined)?.error;
  const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
  return new CompensatorError({
    httpStatus: res.status,
    code: typeof error?.code === 'string' ? error.code : (CODE_OF_STATUS[res.status] ?? 'INTERNAL'),
    message: typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`,
    details: Array.isArray(error?.details) ? error.details : undefined,
    retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined,
    requestId: res.headers.get('x-request-id') ?? undefined,
  });
}

/**
 * A client of the merchant API (README.md, "HTTP API"): create, read, find by order, cancel and
 * the timeline of payments, with one API key. Errors are thrown as CompensatorError.
 */
export function createCompensatorClient(options: ClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const fetchImpl: FetchLike = options.fetch ?? ((url, init) => fetch(url, init));
  const timeoutMs = options.timeoutMs ?? 10_000;

  /** One call of an operation of the document; its path, parameters and body are type-checked against it. */
  async function call<P extends keyof paths, M extends MethodOf<P>>(
    method: M,
    path: P,
    input: { path?: PathParams<Operation<P, M>>; query?: Query<Operation<P, M>>; body?: Body<Operation<P, M>> },
    callOptions: CallOptions = {},
  ): Promise<{ status: number; body: Success<Operation<P, M>> }> {
    let url = baseUrl + String(path).replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String((input.path as Record<string, unknown> | undefined)?.[name] ?? '')));
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries((input.query ?? {}) as Record<string, unknown>)) if (value !== undefined) query.set(name, String(value));
    if (query.toString()) url += `?${query.toString()}`;
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers, ...callOptions.headers, authorization: `Bearer ${options.apiKey}` };
    if (input.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetchImpl(url, {
      method: method.toUpperCase(),
      headers,
      body: input.body === undefined ? undefined : JSON.stringify(input.body),
      signal: callOptions.signal ?? AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) throw errorOf(res, body);
    return { status: res.status, body: body as Success<Operation<P, M>> };
  }

  return {
    /** POST /v1/payments. `created` is false for a repeat of the same order with the same body (safe to retry). */
    async createPayment(request: CreatePaymentRequest, callOptions?: CallOptions): Promise<{ payment: Payment; created: boolean }> {
      const res = await call('post', '/v1/payments', { body: request }, callOptions);
      return { payment: res.body, created: res.status === 201 };
    },

    /** GET /v1/payments/{id}; another merchant's payment is NOT_FOUND, like an unknown id. */
    async getPayment(id: string, callOptions?: CallOptions): Promise<Payment> {
      return (await call('get', '/v1/payments/{id}', { path: { id } }, callOptions)).body;
    },

    /** GET /v1/payments?orderId= (a platform key adds merchantId); null when the merchant has no payment for that order. */
    async findPaymentByOrder(query: FindPaymentByOrderQuery, callOptions?: CallOptions): Promise<Payment | null> {
      try {
        return (await call('get', '/v1/payments', { query }, callOptions)).body;
      } catch (err) {
        if (err instanceof CompensatorError && err.code === 'NOT_FOUND') return null;
        throw err;
      }
    },

    /**
     * POST /v1/payments/{id}/cancel: PAID if the channel says paid, else CLOSED. A payment that
     * was already settled otherwise is a CONFLICT whose details name its status.
     */
    async cancelPayment(id: string, callOptions?: CallOptions): Promise<Payment> {
      return (await call('post', '/v1/payments/{id}/cancel', { path: { id } }, callOptions)).body;
    },

    /** GET /v1/payments/{id}/events: the payment's timeline, oldest first. */
    async listPaymentEvents(id: string, callOptions?: CallOptions): Promise<PaymentEvent[]> {
      return (await call('get', '/v1/payments/{id}/events', { path: { id } }, callOptions)).body.events;
    },
  };
}
export type CompensatorClient = ReturnType<typeof createCompensatorClient>;
