export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface ErrorDetail {
  path: string;
  message: string;
}

/** The one base error: HTTP handlers, consumers and process events all understand it. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly httpStatus: number,
    readonly options: { cause?: unknown; details?: ErrorDetail[]; catastrophic?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super('VALIDATION_FAILED', message, 400, { details });
  }
}
export class UnauthorizedError extends AppError {
  constructor(message = 'missing or invalid credentials') {
    super('UNAUTHORIZED', message, 401);
  }
}
export class ForbiddenError extends AppError {
  constructor(message: string) {
    super('FORBIDDEN', message, 403);
  }
}
export class NotFoundError extends AppError {
  constructor(message: string) {
    super('NOT_FOUND', message, 404);
  }
}
export class ConflictError extends AppError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super('CONFLICT', message, 409, { details });
  }
}
export class UnavailableError extends AppError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super('UNAVAILABLE', message, 503, { details });
  }
}
export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super('UNSUPPORTED_MEDIA_TYPE', message, 415);
  }
}
