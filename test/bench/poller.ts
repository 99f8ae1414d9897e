// Figure 9's client: polls Caddy from a worker thread, so "serving" is seen as a client outside the daemon sees it.
// The bench runs the daemon in its own process; a poller on that event loop would wait for whatever the daemon
// does after the load (its bookkeeping writes) before it could read Caddy's answer, which no real client does.
// Both sides of the figure (webhook and by hand) use the same poller.
import { Worker } from 'node:worker_threads';

// Plain JavaScript: the worker is started from source text, without the TypeScript loader.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const net = require('node:net');
const now = () => performance.timeOrigin + performance.now();
// A bare socket and the status line only: node's http client costs several times the CPU per request, which a
// 1 ms poll takes from the daemon and Caddy on a 2-core machine. A fresh connection each time, as Caddy hands a
// new connection to the config it runs now (an old keep-alive one stays on the old config until it closes).
function get(port, host) {
  return new Promise((resolve) => {
    let head = '';
    let done = false;
    const finish = (status) => { if (!done) { done = true; sock.destroy(); resolve(status); } };
    const sock = net.connect(port, '127.0.0.1', () => sock.write('GET / HTTP/1.1\\r\\nHost: ' + host + '\\r\\nConnection: close\\r\\n\\r\\n'));
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      head += d;
      const m = /^HTTP\\/1\\.[01] (\\d{3})/.exec(head);
      if (m) finish(Number(m[1]));
      else if (head.length > 64) finish(0);
    });
    sock.setTimeout(5000, () => finish(0));
    sock.on('error', () => finish(0));
    sock.on('close', () => finish(0));
  });
}
// The webhook's POST is sent from here too, as GitHub sends it from outside the daemon's process.
function post(url, body, headers) {
  return new Promise((resolve) => {
    const req = require('node:http').request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode || 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}
parentPort.on('message', async ({ id, port, host, everyMs, timeoutMs, post: p }) => {
  if (p) {
    const at = now();
    return parentPort.postMessage({ id, at, status: await post(p.url, p.body, p.headers) });
  }
  const deadline = Date.now() + timeoutMs;
  let status = 0;
  while (Date.now() < deadline) {
    status = await get(port, host);
    if (status === 200) return parentPort.postMessage({ id, at: now() });
    await new Promise((r) => setTimeout(r, everyMs));
  }
  parentPort.postMessage({ id, error: host + ' not served after ' + timeoutMs + ' ms (last status ' + status + ')' });
});
`;

export interface Poller {
  /** Resolves with the absolute time (performance.timeOrigin + now(), ms) of the first 200 for `host`. */
  served(port: number, host: string, everyMs: number, timeoutMs: number): Promise<number>;
  /** POSTs from the worker; resolves with the absolute time it began sending, and the answer's status. */
  post(url: string, body: string, headers: Record<string, string>): Promise<{ at: number; status: number }>;
  close(): Promise<void>;
}

/** The absolute time in ms with sub-millisecond precision, comparable across threads. */
export const absNow = (): number => performance.timeOrigin + performance.now();

export function startPoller(): Poller {
  const worker = new Worker(SOURCE, { eval: true });
  worker.unref();
  type Answer = { id: number; at?: number; status?: number; error?: string };
  const waiting = new Map<number, { resolve: (m: Answer) => void; reject: (err: Error) => void }>();
  let next = 0;
  worker.on('message', (m: Answer) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(m.error));
    else w?.resolve(m);
  });
  const ask = (message: object) => {
    const id = ++next;
    return new Promise<Answer>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...message });
    });
  };
  worker.on('error', (err) => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  });
  return {
    served: async (port, host, everyMs, timeoutMs) => (await ask({ port, host, everyMs, timeoutMs })).at!,
    post: async (url, body, headers) => {
      const m = await ask({ post: { url, body, headers } });
      return { at: m.at!, status: m.status! };
    },
    close: async () => {
      await worker.terminate();
    },
  };
}
