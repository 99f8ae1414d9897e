// The registry: the `projects` and `project_events` tables in the control plane's own database.
// It stores secret references only; nothing here ever holds a secret value.
import pg from 'pg';
import type { Logger } from 'pino';
import { FleetError } from '../core/errors.ts';
import type { ActualProject, Condition, Manifest, ProjectStatus, RegistryRow, Suspension } from '../core/types.ts';
import { migrations } from './migrations.ts';
import { DEFAULT_DATABASE_SERVER } from '../core/servers.ts';

/** A registry row with the bookkeeping only the daemon needs. */
export interface ProjectRecord extends RegistryRow {
  databaseUrlRef: string;
  databaseName: string;
  roleName: string;
  schemaRef: { type: 'git'; repo: string; path: string; ref: string };
  schemaHistory: string[];
  env: Record<string, string>;
  present: boolean;
  specHash: string | null;
  secretsVersion: number;
  restarts: number;
  /** Connection limit the role was provisioned with; null until provisioned (or after its database was dropped). */
  provisionedConnections: number | null;
  lastError: string | null;
  /** Operator restart requests so far (part of the spec hash), and who asked last; always set when read (0, null). */
  restartGeneration?: number;
  restartRequestedBy?: string | null;
  /** Set while an operator keeps the project as it is (Flux's suspend); always set when read (null: not suspended). */
  suspended?: Suspension | null;
  /** The fleet.yaml Postgres server holding the database (`main` for rows from before servers); always set when read. */
  databaseServer?: string;
  /** The server still holding the copy a move left behind; null: none. Always set when read. */
  oldDatabaseServer?: string | null;
  /** The commit whose move left that copy (null: none, or a row from before it was kept). */
  oldDatabaseCommit?: string | null;
  createdAt: string;
  /** The row version (Postgres xmin) this record was read at: a write by anyone changes it. */
  version?: string;
}

/** An operator request the daemon carries out in its pass (`project_requests`). */
export interface ProjectRequest {
  id: number;
  projectId: string;
  kind: string;
  args: Record<string, unknown>;
  requestedBy: string | null;
  requestedAt: string;
  startedAt: string | null;
  doneAt: string | null;
  outcome: Record<string, unknown> | null;
  progress: Record<string, unknown> | null;
}

function toRequest(r: Record<string, any>): ProjectRequest {
  const at = (v: any) => (v ? new Date(v).toISOString() : null);
  return {
    id: Number(r.id), projectId: r.project_id, kind: r.kind, args: r.args ?? {}, requestedBy: r.requested_by,
    requestedAt: at(r.requested_at)!, startedAt: at(r.started_at), doneAt: at(r.done_at), outcome: r.outcome, progress: r.progress,
  };
}

export interface ProjectEvent {
  id: number;
  projectId: string;
  action: string;
  actor: string | null;
  commit: string | null;
  detail: Record<string, unknown> | null;
  at: string;
}

const columns: Record<string, string> = {
  displayName: 'display_name', hostname: 'hostname', aliases: 'aliases', databaseUrlRef: 'database_url',
  databaseName: 'database_name', roleName: 'role_name', schemaRef: 'schema_ref', schemaVersion: 'schema_version',
  schemaDigest: 'schema_digest', schemaHistory: 'schema_history', upstream: 'upstream', port: 'port', env: 'env',
  secretRefs: 'secret_refs', manifest: 'manifest', present: 'present', status: 'status',
  desiredState: 'desired_state', observedCommit: 'observed_commit', appliedCommit: 'applied_commit',
  specHash: 'spec_hash', secretsVersion: 'secrets_version', restarts: 'restarts', lastHealth: 'last_health',
  conditions: 'conditions', lastError: 'last_error', provisionedConnections: 'provisioned_connections',
  restartGeneration: 'restart_generation', restartRequestedBy: 'restart_requested_by', suspended: 'suspended',
  databaseServer: 'database_server', oldDatabaseServer: 'old_database_server', oldDatabaseCommit: 'old_database_commit',
};
const jsonColumns = new Set(['schema_ref', 'env', 'secret_refs', 'manifest', 'last_health', 'conditions', 'suspended']);

function toRecord(r: Record<string, any>): ProjectRecord {
  return {
    id: r.id, displayName: r.display_name, hostname: r.hostname, aliases: r.aliases,
    status: r.status as ProjectStatus, desiredState: r.desired_state, upstream: r.upstream,
    schemaVersion: r.schema_version, schemaDigest: r.schema_digest, observedCommit: r.observed_commit,
    appliedCommit: r.applied_commit, lastHealth: r.last_health, conditions: r.conditions ?? [],
    manifest: r.present ? (r.manifest as Manifest) : null, secretRefs: r.secret_refs ?? {}, port: r.port,
    updatedAt: r.updated_at?.toISOString?.() ?? String(r.updated_at),
    databaseUrlRef: r.database_url, databaseName: r.database_name, roleName: r.role_name, schemaRef: r.schema_ref,
    schemaHistory: r.schema_history ?? [], env: r.env ?? {}, present: r.present, specHash: r.spec_hash,
    secretsVersion: r.secrets_version, restarts: r.restarts, lastError: r.last_error,
    provisionedConnections: r.provisioned_connections ?? null,
    restartGeneration: r.restart_generation ?? 0, restartRequestedBy: r.restart_requested_by ?? null, suspended: r.suspended ?? null,
    databaseServer: r.database_server ?? DEFAULT_DATABASE_SERVER, oldDatabaseServer: r.old_database_server ?? null, oldDatabaseCommit: r.old_database_commit ?? null,
    createdAt: r.created_at?.toISOString?.() ?? String(r.created_at),
    ...(r.xmin !== undefined ? { version: String(r.xmin) } : {}),
  };
}

/** A row as read, with the manifest kept for a removed project too (see lastManifest). */
function readRecord(r: Record<string, any>): ProjectRecord {
  return Object.assign(toRecord(r), { _manifest: r.manifest as Manifest });
}

/** The fingerprint of a set of rows: how many, and the sum of their versions (any write changes it). */
function fingerprintOf(versions: Iterable<string | undefined>): string {
  let n = 0;
  let sum = 0n;
  for (const v of versions) {
    n++;
    sum += BigInt(v ?? 0);
  }
  return `${n}:${sum}`;
}

/** The last applied manifest, also for a removed project (whose RegistryRow.manifest is null). */
export function lastManifest(rec: ProjectRecord & { _manifest?: Manifest }): Manifest | null {
  return rec._manifest ?? rec.manifest;
}

export interface NewEvent {
  action: string;
  actor?: string | null;
  commit?: string | null;
  detail?: object;
}

const INSERT_EVENT = 'INSERT INTO project_events (project_id, action, actor, commit, detail) VALUES ($1, $2, $3, $4, $5)';

function eventParams(projectId: string, e: NewEvent): unknown[] {
  return [projectId, e.action, e.actor ?? null, e.commit ?? null, e.detail ? JSON.stringify(e.detail) : null];
}

// A fixed advisory-lock key: "one daemon reconciles at a time" for this registry database.
const LOCK_KEY = 0x61746f6d; // "atom"

const ROW = '*, xmin::text AS xmin';
/** SQL: someone holds the reconcile lock (a session advisory lock on the key in parameter `param`) in this database. */
const lockHeld = (param: string) => `EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objsubid = 1
  AND objid::text::bigint = ${param} AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`;


export class Registry {
  private readonly pool: pg.Pool;
  private lockClient: pg.Client | null = null;
  /**
   * The rows as last read or written through this client, in id order. `list()` returns it as long as the table's
   * fingerprint (row count and sum of row versions) matches, so a quiet fleet costs one small query, not a read of
   * every row; a write by anyone else (the CLI, another daemon) changes the fingerprint and the rows are read again.
   * The same array and row objects are returned while nothing changed: callers may compare them by identity.
   */
  private cache: { rows: ProjectRecord[]; fingerprint: string } | null = null;

  constructor(readonly url: string, private readonly log: Logger, opts: { connections?: number } = {}) {
    this.pool = new pg.Pool({ connectionString: url, max: opts.connections ?? 4, connectionTimeoutMillis: 5000 });
    // An idle client losing its server must not crash the daemon: the next query reports it.
    this.pool.on('error', (err) => this.log.warn({ err: { message: err.message } }, 'registry connection lost'));
  }

  private async query<T = any>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    try {
      return await this.pool.query(sql, params);
    } catch (err: any) {
      throw isConnectionError(err) ? unreachable(err) : err;
    }
  }

  async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      // Two daemons starting together must not both migrate.
      await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY + 1]);
      await client.query('CREATE TABLE IF NOT EXISTS fleet_migrations (version INT PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const done = new Set((await client.query('SELECT version FROM fleet_migrations')).rows.map((r) => r.version));
      for (const [i, sql] of migrations.entries()) {
        if (done.has(i + 1)) continue;
        await client.query(sql);
        await client.query('INSERT INTO fleet_migrations (version) VALUES ($1)', [i + 1]);
      }
    });
    await this.restrictConnect();
  }

  /**
   * Project roles must not reach the control plane (its tables, its advisory lock): CONNECT on the registry's
   * database is revoked from PUBLIC, so only its owner and superusers get in. Best effort: a registry role that
   * does not own its database cannot, and says so.
   */
  private async restrictConnect(): Promise<void> {
    const { rows: [r] } = await this.query(`SELECT current_database() AS db,
        has_database_privilege('public', d.oid, 'CONNECT') AS open, pg_has_role(current_user, d.datdba, 'USAGE') AS owner
      FROM pg_database d WHERE d.datname = current_database()`);
    if (!r?.open) return;
    if (!r.owner) {
      this.log.warn({ database: r.db }, `every role may CONNECT to the registry database ${r.db}, project roles included: `
        + `its owner should run REVOKE CONNECT ON DATABASE ${r.db} FROM PUBLIC`);
      return;
    }
    try {
      await this.query(`REVOKE CONNECT ON DATABASE ${pg.escapeIdentifier(r.db)} FROM PUBLIC`);
    } catch (err: any) {
      if (isConnectionError(err) || err instanceof FleetError) throw err;
      this.log.warn({ database: r.db, err: { code: err.code, message: err.message } }, `could not revoke CONNECT on the registry database ${r.db} from PUBLIC`);
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err: any) {
      throw unreachable(err);
    }
  }

  /** Try once to become the one reconciling daemon; true when this process holds the lock. */
  async tryLock(): Promise<boolean> {
    if (this.lockClient) {
      // Still ours only while its session lives.
      try {
        await this.lockClient.query('SELECT 1');
        return true;
      } catch {
        await this.releaseLockClient();
      }
    }
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query('SELECT pg_try_advisory_lock($1) AS ok', [LOCK_KEY]);
      if (rows[0].ok) {
        this.lockClient = client;
        return true;
      }
      await client.end();
      return false;
    } catch (err: any) {
      await client.end().catch(() => {});
      throw unreachable(err);
    }
  }

  private async releaseLockClient(): Promise<void> {
    const c = this.lockClient;
    this.lockClient = null;
    await c?.end().catch(() => {});
  }

  async list(): Promise<ProjectRecord[]> {
    if (this.cache) {
      const { rows: [r] } = await this.query(`SELECT count(*)::text || ':' || coalesce(sum(xmin::text::numeric), 0)::text AS fp FROM projects`);
      if (r.fp === this.cache.fingerprint) return this.cache.rows;
    }
    const { rows } = await this.query(`SELECT ${ROW} FROM projects ORDER BY id`);
    const records = rows.map(readRecord);
    this.cache = { rows: records, fingerprint: fingerprintOf(records.map((x) => x.version)) };
    return records;
  }

  /** The rows as this client last read or wrote them (no query; `list()` when it holds none yet). */
  async listKnown(): Promise<ProjectRecord[]> {
    return this.cache?.rows ?? this.list();
  }

  async get(id: string): Promise<ProjectRecord | null> {
    const { rows } = await this.query(`SELECT ${ROW} FROM projects WHERE id = $1`, [id]);
    return rows[0] ? readRecord(rows[0]) : null;
  }

  /** A row this client just wrote, as the database returned it: the cache follows without reading the table. */
  private cached(r: Record<string, any> | undefined): void {
    if (!this.cache || !r) return;
    const rec = readRecord(r);
    const rows = [...this.cache.rows];
    // Rows are in id order: the place by binary search. The array is copied (callers compare it by identity to see
    // a change), which costs a pointer per row per write: microseconds at 1,000 rows.
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid].id < rec.id) lo = mid + 1;
      else hi = mid;
    }
    const old = rows[lo]?.id === rec.id ? rows[lo] : null;
    rows.splice(lo, old ? 1 : 0, rec);
    const [n, sum] = this.cache.fingerprint.split(':');
    const next = BigInt(sum) - BigInt(old?.version ?? 0) + BigInt(rec.version ?? 0);
    this.cache = { rows, fingerprint: `${Number(n) + (old ? 0 : 1)}:${next}` };
  }

  /**
   * Insert a project row when it does not exist yet; an existing row is left as it is. `events` are recorded in the
   * same transaction, and only when the row was inserted: a crash never leaves a row without its `create` event.
   */
  async insert(rec: Partial<ProjectRecord> & { id: string; manifest: Manifest }, events: NewEvent[] = []): Promise<void> {
    const entries = Object.entries(rec).filter(([k, v]) => columns[k] && v !== undefined);
    const names = ['id', ...entries.map(([k]) => columns[k])];
    const values = [rec.id, ...entries.map(([k, v]) => encode(columns[k], v))];
    const ph = values.map((_, i) => `$${i + 1}`).join(', ');
    let written: Record<string, any> | undefined;
    await this.transaction(async (client) => {
      const { rowCount, rows } = await client.query(`INSERT INTO projects (${names.join(', ')}) VALUES (${ph}) ON CONFLICT (id) DO NOTHING RETURNING ${ROW}`, values);
      if (rowCount) for (const e of events) await client.query(INSERT_EVENT, eventParams(rec.id, e));
      written = rows[0];
    });
    this.cached(written);
  }

  async update(id: string, patch: Partial<ProjectRecord>): Promise<void> {
    await this.updateWithEvents(id, patch, []);
  }

  /** Update a row and record its events in one transaction, so a crash never records one without the other. */
  async updateWithEvents(id: string, patch: Partial<ProjectRecord>, events: NewEvent[]): Promise<void> {
    const entries = Object.entries(patch).filter(([k, v]) => columns[k] && v !== undefined);
    if (entries.length === 0 && events.length === 0) return;
    // One statement, so one round trip: the row's UPDATE and one INSERT of all the events (in their order) as
    // data-modifying CTEs, atomic as any single statement. A deploy's record is on the path from merge to serving.
    const params: unknown[] = [id];
    const sets = entries.map(([k, v]) => `${columns[k]} = $${params.push(encode(columns[k], v))}`);
    const rows = events.map((e, i) => `(${i}, ${eventParams(id, e).slice(1).map((v) => `$${params.push(v)}`).join(', ')})`);
    const insert = rows.length
      ? `INSERT INTO project_events (project_id, action, actor, commit, detail) SELECT $1, a, b, c, d::jsonb FROM (VALUES ${rows.join(', ')}) AS v(n, a, b, c, d) ORDER BY n`
      : '';
    const sql = sets.length
      ? `WITH written AS (UPDATE projects SET ${sets.join(', ')}, updated_at = now() WHERE id = $1 RETURNING ${ROW})${insert ? `, logged AS (${insert})` : ''} SELECT * FROM written`
      : insert;
    const written = (await this.query(sql, params)).rows[0] as Record<string, any> | undefined;
    this.cached(written);
  }

  private async transaction(fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      await fn(client);
      await client.query('COMMIT');
    } catch (err: any) {
      await client.query('ROLLBACK').catch(() => {});
      throw isConnectionError(err) ? unreachable(err) : err;
    } finally {
      client.release();
    }
  }

  async event(projectId: string, action: string, e: Omit<NewEvent, 'action'>): Promise<void> {
    await this.query(INSERT_EVENT, eventParams(projectId, { ...e, action }));
  }

  async events(projectId?: string, limit = 200): Promise<ProjectEvent[]> {
    const { rows } = projectId
      ? await this.query('SELECT * FROM project_events WHERE project_id = $1 ORDER BY id DESC LIMIT $2', [projectId, limit])
      : await this.query('SELECT * FROM project_events ORDER BY id DESC LIMIT $1', [limit]);
    return rows.reverse().map((r) => ({
      id: Number(r.id), projectId: r.project_id, action: r.action, actor: r.actor, commit: r.commit,
      detail: r.detail, at: r.at.toISOString(),
    }));
  }


  /**
   * An operator restart: the generation is bumped in the database (two requests are two bumps, never one lost),
   * with who asked and its event, in one transaction. The row as written.
   */
  async requestRestart(id: string, actor: string, detail: object = {}): Promise<ProjectRecord | null> {
    let written: Record<string, any> | undefined;
    await this.transaction(async (client) => {
      written = (await client.query(`UPDATE projects SET restart_generation = restart_generation + 1, restart_requested_by = $2, updated_at = now() WHERE id = $1 RETURNING ${ROW}`, [id, actor])).rows[0];
      if (written) await client.query(INSERT_EVENT, eventParams(id, { action: 'restart_requested', actor, detail: { restartGeneration: written.restart_generation, ...detail } }));
    });
    this.cached(written);
    return written ? readRecord(written) : null;
  }

  /** Events newest first, `before` an event id (a page's `next` cursor), optionally of one project. */
  async eventsPage(o: { project?: string; before?: number; limit: number }): Promise<ProjectEvent[]> {
    const { rows } = await this.query(
      `SELECT * FROM project_events WHERE ($1::text IS NULL OR project_id = $1) AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
      [o.project ?? null, o.before ?? null, o.limit],
    );
    return rows.map((r) => ({
      id: Number(r.id), projectId: r.project_id, action: r.action, actor: r.actor, commit: r.commit,
      detail: r.detail, at: r.at.toISOString(),
    }));
  }

  /** Whether a daemon holds the reconcile lock on this registry (and so will carry out requests). */
  async daemonRunning(): Promise<boolean> {
    return (await this.query(`SELECT ${lockHeld('$1')} AS held`, [LOCK_KEY])).rows[0].held === true;
  }

  /**
   * Record an operator request for the daemon, only while a daemon holds the reconcile lock (null otherwise: nothing
   * is left behind for nobody). A second open request of the same kind for the project is a USAGE error.
   */
  async addRequest(projectId: string, kind: string, args: object, by: string): Promise<ProjectRequest | null> {
    try {
      const { rows } = await this.query(`INSERT INTO project_requests (project_id, kind, args, requested_by)
        SELECT $1, $2, $3, $4 WHERE ${lockHeld('$5')} RETURNING *`, [projectId, kind, JSON.stringify(args), by, LOCK_KEY]);
      return rows[0] ? toRequest(rows[0]) : null;
    } catch (err: any) {
      if (err.code !== '23505') throw err;
      throw new FleetError('USAGE', `a ${kind} of ${projectId} is already pending; wait for it (fleet events ${projectId})`, { project: projectId });
    }
  }

  async openRequests(): Promise<ProjectRequest[]> {
    return (await this.query('SELECT * FROM project_requests WHERE done_at IS NULL ORDER BY id')).rows.map(toRequest);
  }

  async getRequest(id: number): Promise<ProjectRequest | null> {
    const { rows } = await this.query('SELECT * FROM project_requests WHERE id = $1', [id]);
    return rows[0] ? toRequest(rows[0]) : null;
  }

  /**
   * Mark a request started, record its progress, or finish it with its outcome; `event` (the project's) is recorded
   * in the same transaction, so whoever sees the request done also finds its event.
   */
  async markRequest(id: number, m: { started?: boolean; progress?: object; outcome?: object; event?: NewEvent & { projectId: string } }): Promise<void> {
    await this.transaction(async (client) => {
      const { rows } = await client.query(`UPDATE project_requests SET started_at = CASE WHEN $2 THEN now() ELSE started_at END,
        progress = COALESCE($3, progress), outcome = COALESCE($4, outcome), done_at = CASE WHEN $4::jsonb IS NULL THEN done_at ELSE now() END
        WHERE id = $1 RETURNING project_id`, [id, m.started === true, m.progress ? JSON.stringify(m.progress) : null, m.outcome ? JSON.stringify(m.outcome) : null]);
      if (m.event && rows[0]) await client.query(INSERT_EVENT, eventParams(m.event.projectId, m.event));
    });
  }

  /** Take back a request no daemon has started; false when one already started it. */
  async withdrawRequest(id: number): Promise<boolean> {
    return ((await this.query('DELETE FROM project_requests WHERE id = $1 AND started_at IS NULL', [id])).rowCount ?? 0) > 0;
  }

  async getState<T>(key: string): Promise<T | null> {
    const { rows } = await this.query('SELECT value FROM fleet_state WHERE key = $1', [key]);
    return rows[0] ? (rows[0].value as T) : null;
  }

  async setState(key: string, value: unknown): Promise<void> {
    await this.query(
      'INSERT INTO fleet_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2, at = now()',
      [key, JSON.stringify(value)],
    );
  }

  async close(): Promise<void> {
    await this.releaseLockClient();
    await this.pool.end().catch(() => {});
  }
}

function unreachable(err: any): FleetError {
  return new FleetError('POSTGRES_UNREACHABLE', `registry database is unreachable: ${err.code ?? err.message}`, { cause: err });
}

function encode(column: string, v: unknown): unknown {
  return jsonColumns.has(column) && v !== null ? JSON.stringify(v) : v;
}

export function isConnectionError(err: any): boolean {
  const code = err?.code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08001', '08003'].includes(code)
    || /Connection terminated|timeout exceeded when trying to connect/i.test(err?.message ?? '');
}

/** Replace the condition of the same type, keeping the others (pure). */
export function withCondition(conds: Condition[], c: Omit<Condition, 'at'>, now = new Date()): Condition[] {
  const prev = conds.find((x) => x.type === c.type);
  // Keep the time of the last transition, as Kubernetes conditions do, so "since when" stays meaningful.
  const unchanged = prev && prev.status === c.status && prev.reason === c.reason && prev.message === c.message;
  const next: Condition = unchanged ? prev : { ...c, at: now.toISOString() };
  return [...conds.filter((x) => x.type !== c.type), next].sort((a, b) => a.type.localeCompare(b.type));
}

/** The registry row as the plan reads it: what is deployed (`fleet plan --against-registry` and the daemon alike). */
export function toActual(rec: ProjectRecord): ActualProject {
  return {
    id: rec.id, status: rec.status, desiredState: rec.desiredState, manifest: lastManifest(rec)!,
    schemaDigest: rec.schemaDigest, schemaVersion: rec.schemaVersion, schemaHistory: rec.schemaHistory, present: rec.present,
    specHash: rec.specHash, port: rec.port, secretsVersion: rec.secretsVersion, upstream: rec.upstream,
    provisioned: rec.provisionedConnections,
    restartGeneration: rec.restartGeneration, restartRequestedBy: rec.restartRequestedBy, suspended: rec.suspended,
    databaseServer: rec.databaseServer ?? DEFAULT_DATABASE_SERVER, oldDatabaseServer: rec.oldDatabaseServer ?? null,
    oldDatabaseCommit: rec.oldDatabaseCommit ?? null,
  };
}
