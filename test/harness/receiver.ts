// A real HTTP server that records what webhooks POST to it, for notification tests. Its answers can be scripted
// (`answers`: status codes for the first requests, 200 after), like a receiver that is down for a while.
import http from 'node:http';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
  raw: string;
  /** The status the receiver answered. */
  status: number;
}

export interface Receiver {
  url: string;
  /** Every request, answered or not, in order. */
  requests: Received[];
  /** Requests answered 2xx, by path. */
  delivered(path?: string): Received[];
  close(): Promise<void>;
}

export async function startReceiver(opts: { answers?: Record<string, number[]>; onRequest?: (r: Received) => void } = {}): Promise<Receiver> {
  const requests: Received[] = [];
  const scripts = new Map(Object.entries(opts.answers ?? {}).map(([p, a]) => [p, [...a]]));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any = raw;
      try { body = JSON.parse(raw); } catch { /* not JSON: kept as text */ }
      const path = req.url ?? '/';
      const status = scripts.get(path)?.shift() ?? 200;
      const r: Received = { path, headers: req.headers, body, raw, status };
      requests.push(r);
      opts.onRequest?.(r);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'down');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    delivered: (path) => requests.filter((r) => r.status < 300 && (path === undefined || r.path === path)),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
