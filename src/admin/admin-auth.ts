import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../shared/errors';

/** `Authorization: Bearer <ADMIN_TOKEN>`; with no token configured every admin call is refused. */
export function requireAdminToken(token: string | undefined): RequestHandler {
  const expected = token ? Buffer.from(token) : undefined;
  return (req, _res, next) => {
    const match = /^Bearer (.+)$/.exec(req.header('authorization') ?? '');
    const given = match ? Buffer.from(match[1] as string) : undefined;
    if (!expected || !given || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      next(new UnauthorizedError(expected ? 'a valid admin bearer token is required' : 'admin routes are disabled: ADMIN_TOKEN is not set'));
      return;
    }
    next();
  };
}
