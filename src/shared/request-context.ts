import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

interface RequestContext {
  correlationId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/**
 * What a correlation id from outside may look like (X-Request-Id, an intent's ids): it travels
 * on to channels and merchants as a header, so nothing a header cannot carry, and short.
 */
export const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Runs fn with a correlation id that every log line and published message inside it carries. */
export function runWithCorrelationId<T>(correlationId: string | undefined, fn: () => T): T {
  return storage.run({ correlationId: correlationId || randomUUID() }, fn);
}

export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.correlationId;
}
