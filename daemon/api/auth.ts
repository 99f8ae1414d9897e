// Operator authentication for the daemon's HTTP routes (the API, the dashboard, /metrics): one bearer token from
// the secret store (`<prefix>/fleet/OPERATOR_TOKEN`). It grants operating the fleet, never anything inside a
// project. Shared by every route module, so there is one way to present it and one way to compare it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

/** The cookie the dashboard's login form sets (HttpOnly, SameSite=Strict), for browsers that cannot send a header. */
export const OPERATOR_COOKIE = 'fleet_operator';

/** The secret name under the fleet's own path: `<prefix>/fleet/OPERATOR_TOKEN`. */
export const OPERATOR_TOKEN_NAME = 'OPERATOR_TOKEN';

/** The token a request presents: `Authorization: Bearer <t>`, else the operator cookie; undefined when neither. */
export function presentedToken(req: Pick<http.IncomingMessage, 'headers'>): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const cookie = req.headers.cookie;
  if (typeof cookie === 'string') {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === OPERATOR_COOKIE) {
        try {
          return decodeURIComponent(part.slice(eq + 1).trim());
        } catch {
          return undefined; // malformed: no token (a throw here was a 503 and a log line per request)
        }
      }
    }
  }
  return undefined;
}

/**
 * Whether `presented` is the operator token, in constant time: both sides are hashed first, so neither the
 * token's length nor its prefix shows in the timing. An empty expected token never matches.
 */
export function tokenMatches(presented: string | undefined, expected: string | undefined): boolean {
  if (!presented || !expected) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Whether the request carries the operator token. */
export function isOperator(req: Pick<http.IncomingMessage, 'headers'>, expected: string | undefined): boolean {
  return tokenMatches(presentedToken(req), expected);
}
