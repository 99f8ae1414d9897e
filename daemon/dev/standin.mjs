#!/usr/bin/env node
// The stand-in atomo instance: honours the atomo-server contract (design/instance-contract.md) so tests and
// local runs exercise the fleet without the real server. Plain ESM with only node builtins + `pg`, so it starts
// fast and fits in a minimal container image. Configured only by the environment.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const NAME = 'atomo-server-standin';
const VERSION = '0.1.0-standin';
const env = process.env;
const project = env.ATOMO_PROJECT_ID ?? null;
const jsonLogs = env.LOG_FORMAT === 'json';

function log(level, msg, fields = {}) {
  if (jsonLogs) {
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, msg, project, ...fields }) + '\n');
    return;
  }
  const extra = Object.entries(fields).map(([k, v]) => ` ${k}=${v}`).join('');
  process.stdout.write(`${new Date().toISOString()} ${level.toUpperCase()} ${msg}${extra}\n`);
}

/** Boot failures: a clear message on stderr, then a non-zero exit. Never a stack trace. */
function fail(msg) {
  process.stderr.write(`standin: ${msg}\n`);
  log('error', msg);
  process.exit(1);
}

function banner() {
  const line = `*** STAND-IN: this is the atomo-fleet stand-in instance (${NAME}), NOT atomo-server ***`;
  process.stdout.write(line + '\n');
  process.stderr.write(line + '\n');
}

/** The database URL without its password, for messages. */
function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

function readConfig() {
  const interval = Number(env.ATOMO_SCHEMA_WATCH_INTERVAL ?? 2);
  return {
    databaseUrl: env.DATABASE_URL ?? 'postgresql://127.0.0.1/atomo_dev',
    schemaPath: resolve(env.ATOMO_SCHEMA_PATH ?? './schema.ts'),
    host: env.HOST ?? '::',
    port: Number(env.PORT ?? 3000),
    atomoEnv: env.ATOMO_ENV ?? 'development',
    hasJwtSecret: Boolean(env.JWT_SECRET),
    watch: env.ATOMO_SCHEMA_WATCH === 'true' || env.ATOMO_SCHEMA_WATCH === '1',
    watchIntervalMs: Math.max(1, Number.isFinite(interval) ? interval : 2) * 1000,
  };
}

/** snake_case plural of a model name: BlogPost → blog_posts, Category → categories. */
function tableNameFor(model) {
  const snake = model.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  if (/[^aeiou]y$/.test(snake)) return snake.slice(0, -1) + 'ies';
  if (/(s|x|z|ch|sh)$/.test(snake)) return snake + 'es';
  return snake + 's';
}

/** Models = exported interfaces; a `tableName` in the `schema` object overrides the derived table name. */
function parseSchema(content) {
  const names = [...content.matchAll(/^\s*export\s+interface\s+([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]);
  const models = [...new Set(names)];
  return models.map((name) => {
    const explicit = new RegExp(`\\b${name}\\s*:\\s*\\{[^{}]*?\\btableName\\s*:\\s*['"]([^'"]+)['"]`).exec(content);
    const table = explicit && /^[A-Za-z_][A-Za-z0-9_]*$/.test(explicit[1]) ? explicit[1] : tableNameFor(name);
    return { name, table };
  });
}

function loadSchema(path) {
  let mtimeMs;
  let content;
  try {
    // mtime first: a change between stat and read is then seen by the watcher, never missed.
    mtimeMs = statSync(path).mtimeMs;
    content = readFileSync(path, 'utf8');
  } catch (err) {
    fail(`cannot read the schema file ${path} (${err.code ?? err.message}); set ATOMO_SCHEMA_PATH to a readable schema.ts`);
  }
  const models = parseSchema(content);
  if (models.length === 0) fail(`schema file ${path} exports no interface; add e.g. \`export interface Widget { id: string; }\``);
  const digest = createHash('sha256').update(content).digest('hex');
  return { path, content, models, digest, mtimeMs };
}

const PLATFORM_TABLES = [
  `CREATE TABLE IF NOT EXISTS users (id text PRIMARY KEY, email text UNIQUE NOT NULL, password_hash text,
     role text NOT NULL DEFAULT 'user', tenant_id text, created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS sessions (id text PRIMARY KEY, user_id text REFERENCES users(id) ON DELETE CASCADE,
     tenant_id text, expires_at timestamptz, created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), actor text,
     action text NOT NULL, model text, record_id text, tenant_id text, data jsonb)`,
];

/** Idempotent migration; the advisory lock keeps two instances booting on one database from racing. */
async function migrate(pool, models) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('atomo-standin-migrate'))");
    for (const sql of PLATFORM_TABLES) await client.query(sql);
    for (const m of models) {
      await client.query(`CREATE TABLE IF NOT EXISTS "${m.table}" (id text PRIMARY KEY, tenant_id text, data jsonb
        NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function isReady(pool) {
  try {
    await pool.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

function buildTime() {
  try {
    return statSync(fileURLToPath(import.meta.url)).mtime.toISOString();
  } catch {
    return null;
  }
}

function createHandler(pool, schema, stats) {
  const send = (res, status, type, body) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const sendJson = (res, status, obj) => send(res, status, 'application/json', JSON.stringify(obj));
  return async (req, res) => {
    stats.requests += 1;
    const path = new URL(req.url ?? '/', 'http://standin').pathname;
    if (req.method === 'GET' && path === '/health') return send(res, 200, 'text/plain', 'OK');
    if (req.method === 'GET' && path === '/ready') {
      if (await isReady(pool)) return send(res, 200, 'text/plain', 'OK');
      res.writeHead(503, { 'content-length': 0 });
      return res.end();
    }
    if (req.method === 'GET' && path === '/version') {
      return sendJson(res, 200, { name: NAME, version: VERSION, commit: env.ATOMO_COMMIT ?? null, buildTime: stats.buildTime });
    }
    if (req.method === 'GET' && path === '/metrics') {
      const body = [
        '# TYPE atomo_standin_up gauge', 'atomo_standin_up 1',
        '# TYPE atomo_http_requests_total counter', `atomo_http_requests_total ${stats.requests}`,
        '# TYPE atomo_uptime_seconds gauge', `atomo_uptime_seconds ${Math.round((Date.now() - stats.startedAt) / 1000)}`,
        '# TYPE atomo_schema_models gauge', `atomo_schema_models ${schema.models.length}`,
        // Lets a test see that the watcher has looked (e.g. at a deleted file) without sleeping.
        '# TYPE atomo_schema_watch_polls_total counter', `atomo_schema_watch_polls_total ${stats.watchPolls}`, '',
      ].join('\n');
      return send(res, 200, 'text/plain; version=0.0.4', body);
    }
    if (req.method === 'GET' && path === '/meta/schema') {
      return sendJson(res, 200, { models: schema.models.map((m) => m.name), digest: schema.digest, project });
    }
    // Anything else names the instance, so a gateway test can see who answered.
    return sendJson(res, 200, { project, path, method: req.method });
  };
}

function listen(server, host, port) {
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
}

/** Close the HTTP server and the pool, then exit; a stuck close never keeps the process alive. */
function shutdown(server, pool, code, reason) {
  log('info', `shutting down: ${reason}`);
  setTimeout(() => process.exit(code), 5000).unref();
  server.close();
  server.closeAllConnections?.();
  pool.end().catch(() => {}).finally(() => process.exit(code));
}

/** ATOMO_SCHEMA_WATCH: exit 0 when the schema file's mtime changes, so the supervisor starts us again. */
function watchSchema(schema, intervalMs, stats, onChange) {
  const timer = setInterval(() => {
    stats.watchPolls += 1;
    let mtimeMs;
    try {
      mtimeMs = statSync(schema.path).mtimeMs;
    } catch {
      return; // a missing file never triggers an exit
    }
    if (mtimeMs !== schema.mtimeMs) {
      clearInterval(timer);
      onChange();
    }
  }, intervalMs);
}

async function main() {
  banner();
  if (env.STANDIN_FAIL_AT_BOOT === '1') fail('STANDIN_FAIL_AT_BOOT=1: failing at boot on purpose');
  const cfg = readConfig();
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) fail(`PORT must be a port number, got "${env.PORT}"`);
  const schema = loadSchema(cfg.schemaPath);
  if (cfg.atomoEnv === 'production' && !cfg.hasJwtSecret) {
    fail('JWT_SECRET is required when ATOMO_ENV=production; set it or use ATOMO_ENV=development');
  }
  const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: 5, connectionTimeoutMillis: 3000, query_timeout: 3000 });
  // Idle connections die when the database restarts: log it, never crash on it.
  pool.on('error', (err) => log('warn', 'database connection lost', { error: err.code ?? err.message }));
  try {
    await migrate(pool, schema.models);
  } catch (err) {
    fail(`cannot reach or migrate the database at ${redactUrl(cfg.databaseUrl)} (${err.code ?? err.message}); check DATABASE_URL`);
  }
  const stats = { requests: 0, watchPolls: 0, startedAt: Date.now(), buildTime: buildTime() };
  const server = createServer(createHandler(pool, schema, stats));
  try {
    await listen(server, cfg.host, cfg.port);
  } catch (err) {
    fail(`cannot listen on ${cfg.host}:${cfg.port} (${err.code ?? err.message}); set HOST/PORT`);
  }
  log('info', 'stand-in listening', {
    address: `${cfg.host}:${cfg.port}`, models: schema.models.map((m) => m.name).join(','), digest: schema.digest,
  });
  for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => shutdown(server, pool, 0, sig));
  if (cfg.watch) watchSchema(schema, cfg.watchIntervalMs, stats, () => shutdown(server, pool, 0, 'schema file changed'));
}

main().catch((err) => fail(`unexpected boot error: ${err?.message ?? err}`));
