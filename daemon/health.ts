// The daemon's own HTTP probe of an instance: `GET /ready` (200 only when its database answers), not a TCP connect.
import http from 'node:http';

export interface Health {
  ok: boolean;
  status?: number;
  error?: string;
  at: string;
}

export function probeReady(upstream: string, timeoutMs = 2000): Promise<Health> {
  const at = () => new Date().toISOString();
  const [host, portText] = splitHostPort(upstream);
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(portText), path: '/ready', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, status: res.statusCode, at: at() }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.message, at: at() }));
  });
}

function splitHostPort(upstream: string): [string, string] {
  const i = upstream.lastIndexOf(':');
  return [upstream.slice(0, i).replace(/^\[|\]$/g, ''), upstream.slice(i + 1)];
}
