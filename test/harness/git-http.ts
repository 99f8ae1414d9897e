// A smart-HTTP git server on loopback for tests: node's http server in front of `git http-backend` (CGI).
// Real git on both ends, pushes kept (unlike git-http-mock-server), optional Basic-auth token.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { freePort } from './ports.ts';

export interface GitHttpServer {
  /** Base URL of a bare repo under root, e.g. `url('fleet.git')` → `http://127.0.0.1:<port>/fleet.git`. */
  url(repoName: string): string;
  readonly port: number;
  /** Paths requested so far (PATH_INFO + query), for tests that check what a client asked for. */
  readonly requests: string[];
  stop(): Promise<void>;
}

const BACKEND = 'git';

/** Serve every bare repository under `root`. With `token`, a request needs Basic auth whose password is the token. */
export async function startGitHttp(opts: { root: string; token?: string; port?: number }): Promise<GitHttpServer> {
  // A fixed port lets a test stop the server and bring it back at the same URL.
  const port = opts.port ?? await freePort();
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (opts.token !== undefined && basicPassword(req) !== opts.token) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fleet-test"' }).end('authentication required\n');
      return;
    }
    runBackend(opts.root, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    url: (repoName) => `http://127.0.0.1:${port}/${repoName.replace(/^\/+/, '')}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function basicPassword(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization ?? '';
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

function runBackend(root: string, req: IncomingMessage, res: ServerResponse): void {
  const target = new URL(req.url ?? '/', 'http://127.0.0.1');
  const child = spawn(BACKEND, ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      // http-backend only enables receive-pack for an authenticated user: every request that got here passed auth.
      REMOTE_USER: 'fleet-test',
      PATH_INFO: decodeURIComponent(target.pathname),
      QUERY_STRING: target.search.replace(/^\?/, ''),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {}); // the backend may exit before reading a body it rejects
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('error', (err) => failResponse(res, `cannot run git http-backend: ${err.message}`));
  pipeCgiOutput(child.stdout, res, () => stderr);
}

/** Split the CGI output into headers (until the blank line) and body, and stream the body through. */
function pipeCgiOutput(out: NodeJS.ReadableStream, res: ServerResponse, stderr: () => string): void {
  let head = Buffer.alloc(0);
  let headersDone = false;
  out.on('data', (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const split = findHeaderEnd(head);
    if (!split) return;
    headersDone = true;
    writeCgiHeaders(res, head.subarray(0, split.at).toString('latin1'));
    const rest = head.subarray(split.at + split.length);
    if (rest.length > 0) res.write(rest);
  });
  out.on('end', () => {
    if (!headersDone) failResponse(res, `git http-backend sent no headers: ${stderr()}`);
    else res.end();
  });
}

function findHeaderEnd(buf: Buffer): { at: number; length: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { at: crlf, length: 4 };
  if (lf >= 0) return { at: lf, length: 2 };
  return undefined;
}

function writeCgiHeaders(res: ServerResponse, text: string): void {
  let status = 200;
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else res.setHeader(name, value);
  }
  res.statusCode = status;
}

function failResponse(res: ServerResponse, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${message}\n`);
}

/** A bare `fleet.git` served over HTTP with a token, set as the test repo's `origin`, and a push that never blocks. */
export interface RemoteOrigin {
  root: string;
  url: string;
  server: GitHttpServer;
  /** `git push origin main` (extra args first, e.g. --force), run asynchronously: the server lives in this process. */
  push(args?: string[]): Promise<void>;
  /** Stop the server and remove the bare repository. */
  destroy(): Promise<void>;
}

export async function startRemoteOrigin(repoDir: string, token: string): Promise<RemoteOrigin> {
  const root = mkdtempSync(join(tmpdir(), 'fleet-remote-'));
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(root, 'fleet.git')]);
  const origin: RemoteOrigin = {
    root,
    url: '',
    server: await startGitHttp({ root, token }),
    push: (args = []) => new Promise<void>((resolve, reject) => {
      execFile('git', ['push', '-q', ...args, 'origin', 'main'], { cwd: repoDir }, (err) => (err ? reject(err) : resolve()));
    }),
    async destroy() {
      await origin.server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  origin.url = origin.server.url('fleet.git');
  execFileSync('git', ['remote', 'add', 'origin', origin.url.replace('http://', `http://x:${token}@`)], { cwd: repoDir });
  return origin;
}
