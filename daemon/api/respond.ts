// What every route module of the daemon's HTTP endpoint shares: the route shape, JSON answers, bounded bodies, and
// the one error type a route throws to answer with a status and a sentence.
import type http from 'node:http';

/** A route module: answers the request and returns true, or returns false to let the next module look at it. */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<boolean>;

/** An answer other than 2xx, thrown by a route: its status and a sentence that says what to do next. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(body));
}

/** The request body, refused with 413 past `max` bytes (the connection is not read further). */
export function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      reject(new ApiError(413, `the request body is larger than ${max} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max && !over) {
        over = true;
        reject(new ApiError(413, `the request body is larger than ${max} bytes`));
      } else if (!over) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** API request bodies are small: an actor name, a backup file name. */
export const MAX_JSON_BODY = 64 * 1024;

/** A JSON object body; an empty body is `{}`. Anything else is a 400 that says what was expected. */
export async function readJsonObject(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req, MAX_JSON_BODY)).toString('utf8').trim();
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ApiError(400, 'the request body is not valid JSON: send a JSON object such as {"actor": "alice"}, or no body');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ApiError(400, 'the request body must be a JSON object such as {"actor": "alice"}');
  }
  return parsed as Record<string, unknown>;
}

/** 405 with the methods the path takes. */
export function methodNotAllowed(allowed: string[], path: string): ApiError {
  return new ApiError(405, `${path} takes ${allowed.join(' or ')}`, { allow: allowed.join(', ') });
}
