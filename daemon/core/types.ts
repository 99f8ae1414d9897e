// The shapes every part of the fleet agrees on. Pure data: no I/O lives here.

export type ProjectState = 'running' | 'stopped' | 'deleted';

/** A project's manifest, `projects/<id>/project.yaml`, after validation and defaults. */
export interface Manifest {
  id: string;
  displayName: string;
  hostname: string;
  aliases: string[];
  state: ProjectState;
  /** Path of the schema file relative to the project folder (default `schema.ts`). */
  schema: string;
  runtime: {
    /** Container image, for the docker driver. */
    image?: string;
    /** argv, for the process driver. Absent: `atomo-server` on PATH, else the stand-in. */
    command?: string[];
    version?: string;
    /** Port the instance listens on inside its container (docker driver). Default 3000. */
    port?: number;
  };
  /** Non-secret environment values. */
  env: Record<string, string>;
  /** ENV_NAME → secret reference: a name under the project's secret path, or an absolute `/path`. */
  secrets: Record<string, string>;
  resources: {
    /** Docker-style size, 6m to 1024g. */
    memory?: string;
    /** 0.01 to 64, in steps of 0.01. */
    cpus?: number;
    /** CONNECTION LIMIT of the project's Postgres role, 1 to 100 (default 20). */
    connections?: number;
  };
  backup?: { schedule: string; retention: number };
  /** Needed for `state: deleted`: `confirm` must equal the id. */
  deletion?: { confirm: string; dropDatabase?: boolean };
  tenancy?: { rls: boolean };
  /** Per-project edge policy overrides (gateway). */
  edge?: EdgePolicy;
  /** Where the instance may run (driver: swarm): Swarm constraints and spread preferences. */
  placement?: Placement;
  /**
   * Which fleet.yaml Postgres server holds the database (default `main`); changing it is a planned move. `dropOld`:
   * drop the copy a move left on the old server (after a backup).
   */
  database?: { server?: string; dropOld?: boolean };
}

/** Swarm placement, as compose's `deploy.placement` writes it: `node.labels.tier==hot`, `{ spread: node.labels.zone }`. */
export interface Placement {
  constraints?: string[];
  preferences?: { spread: string }[];
}

export interface EdgePolicy {
  requestIdHeader?: string;
  maxBodyBytes?: number;
  allow?: string[];
  deny?: string[];
}

/** `fleet.yaml`: fleet-wide defaults, after validation and defaults. */
export interface FleetConfig {
  branch: string;
  /** Seconds between fetches of the tracked branch (jittered). */
  pollInterval: number;
  driver: 'process' | 'docker' | 'swarm';
  postgres: {
    /** Reference in the secret store to the admin URL, or `embedded`. */
    admin: string;
    /** Host name instances use to reach Postgres (docker: the compose service name). */
    instanceHost?: string;
    /** More servers by name (core/servers.ts): a reference to the admin URL, or `{ admin, instanceHost }`. */
    servers?: Record<string, string | { admin: string; instanceHost?: string }>;
  };
  secretStore: { type: 'local' | 'ssm'; prefix: string; region?: string; endpoint?: string };
  gateway: {
    admin: string;
    listen: string;
    tls: 'off' | 'internal' | 'acme';
    acmeEmail?: string;
    onDemandTls?: boolean;
    /** `exposeMetricsAndMeta` is fleet-wide only (a project cannot open its own): instances' /metrics and /meta stay private unless true. */
    policies: EdgePolicy & { exposeMetricsAndMeta?: boolean };
  };
  docker?: { socketPath?: string; network: string };
  /** driver: swarm: the manager's Docker API, the swarm-scoped network tasks join, the healthcheck argv. */
  swarm?: {
    socketPath?: string; network: string; healthcheck?: string[];
    /** The config-only network on every node that sets the address host-mode ports bind to (default fleet-swarm-bind). */
    bindNetwork?: string;
    /** What projects may put in placement (daemon/manifest/placement.ts); default nothing. */
    placement?: { allowedLabels?: string[]; allowedAttributes?: string[] };
  };
  git?: { url?: string; tokenSecret?: string; webhookSecret?: string };
  /**
   * Absolute secret references any project may name besides its own `<prefix>/<id>/...` (default none);
   * an entry ending in `/` shares everything under it.
   */
  sharedSecrets?: string[];
  /** The registry database's own backup schedule (project databases follow their manifest's `backup`). */
  backups?: { registry?: { schedule: string; retention: number } };
  /** Webhooks and the GitHub commit status (daemon/notify); credentials are secret references, never values. */
  notify?: NotifyConfig;
}

/** What a notification receiver may subscribe to. */
export type NotifyEvent = 'deploy_applied' | 'project_failed' | 'project_stalled' | 'project_recovered' | 'backup_failed' | 'manifest_invalid';

export interface NotifyConfig {
  webhooks?: { name: string; format: 'json' | 'slack'; urlSecret: string; events?: NotifyEvent[] }[];
  githubStatus?: { repository: string; tokenSecret: string; apiUrl: string; context: string; targetUrl?: string };
}

/** What git says a project should be, at one commit. */
export interface DesiredProject {
  id: string;
  manifest: Manifest;
  schema: { path: string; content: string; digest: string };
  /** The commit this desired state was read at (a later commit that changed neither projects/ nor fleet.yaml reuses the read). */
  commit: string;
}

/** A project folder at the commit that failed validation: the project keeps what was last applied. */
export interface InvalidProject {
  id: string;
  errors: ValidationIssue[];
}

export interface ValidationIssue {
  file: string;
  line?: number;
  column?: number;
  /** JSON pointer inside the file, e.g. `/hostname`. */
  path: string;
  message: string;
}

export interface DesiredFleet {
  commit: string;
  projects: DesiredProject[];
  invalid: InvalidProject[];
}

export type ProjectStatus = 'provisioning' | 'running' | 'stopped' | 'failed' | 'deleted';

/** What the fleet currently runs for a project, as the registry knows it. */
export interface ActualProject {
  id: string;
  status: ProjectStatus;
  desiredState: 'running' | 'stopped';
  /** The manifest last applied. */
  manifest: Manifest;
  schemaDigest: string | null;
  /** Commit whose schema is deployed. */
  schemaVersion: string | null;
  /** Digests of schema contents deployed before, newest last (for "revert to older content" warnings). */
  schemaHistory: string[];
  /** False when the project folder is gone from git (stopped, database kept). */
  present: boolean;
  /** Spec hash of the instance last started (unknown: no spec-based restart is planned). */
  specHash?: string | null;
  /** The project's stable host port (process driver). */
  port?: number | null;
  secretsVersion?: number;
  upstream?: string | null;
  /** Connection limit the project's role was provisioned with; null: not provisioned yet; undefined: unknown. */
  provisioned?: number | null;
  /** Bumped by each operator restart request; part of the instance's spec hash, so a pending one shows as a restart. */
  restartGeneration?: number;
  /** Who asked for the last operator restart. */
  restartRequestedBy?: string | null;
  /** Set while an operator keeps the project as it is: no pass changes anything about it. */
  suspended?: Suspension | null;
  /** The fleet.yaml server the database lives on (undefined: unknown, e.g. a plan between two commits). */
  databaseServer?: string;
  /** The server still holding the copy a move left behind; null: none; undefined: unknown. */
  oldDatabaseServer?: string | null;
  /** The commit whose move left that copy: `dropOld` drops it only from a later commit. */
  oldDatabaseCommit?: string | null;
}

/** Flux's `suspend`: who suspended a project's reconciliation, and when. */
export interface Suspension {
  by: string;
  at: string;
}

/** What the driver reports for one project's instance, as far as the plan needs it. */
export interface ObservedInstance {
  running: boolean;
  specHash: string;
  exitCode?: number | null;
  /** Why the engine cannot place the instance now (see Instance.pending): the plan waits, no crash is counted. */
  pending?: string;
  /** What `pending` is (default Unschedulable): see Instance.pendingReason. */
  pendingReason?: PendingReason;
}

/**
 * Why an instance that should run does not, though nothing crashed: the engine finds no node for it
 * (`Unschedulable`), or it is starting a replacement for one it lost with a node (`Rescheduling`).
 */
export type PendingReason = 'Unschedulable' | 'Rescheduling';

/** The backoff's answer for one project, taken just before planning: what must wait, and how long. */
export interface Pacing {
  /** The instance may not be started before this many ms (crash backoff). */
  waitMs?: number;
  /** Crashes (or failed starts) in a row: a start after one is a `restart` with cause `crash`. */
  failures?: number;
  /** A replacement for a changed spec failed recently and is retried after this many ms. */
  replaceWaitMs?: number;
  /** A guarded delete failed at this commit and is retried after this many ms. */
  deleteWaitMs?: number;
  /** A database move failed and is retried after this many ms. */
  moveWaitMs?: number;
  /** The drop of the copy a move left behind failed and is retried after this many ms. */
  dropWaitMs?: number;
}

/** Everything one plan decides from: git, the registry, the instances and the pacing. Pure data. */
export interface PlanInput {
  desired: DesiredProject[];
  /** Ids whose manifest is invalid at the commit: they keep what was last applied. */
  invalid?: string[];
  actual: ActualProject[];
  /**
   * Instances by id. `undefined`: assume they match the registry (the CLI preview); `null`: the driver is
   * unreachable, so no instance action is planned.
   */
  instances?: Map<string, ObservedInstance> | null;
  pacing?: Map<string, Pacing>;
  /** Driver name, part of the spec hash; without it no spec-based restart is planned. */
  driver?: DriverLayout;
  /** Open restore requests by project id (the registry's `project_requests`). */
  restores?: Map<string, RestoreRequest>;
}

/** An operator's request to restore a project's database from a backup file. */
export interface RestoreRequest {
  request: number;
  /** The backup's file name, and its path on the daemon's host. */
  backup: string;
  file: string;
  by: string;
}

export type Action =
  | { kind: 'create'; id: string; reason: string }
  /** Role, database and secrets made to match (new to this registry, or resources.connections changed). */
  | { kind: 'provision'; id: string; reason: string; connections: number }
  | { kind: 'start'; id: string; reason: string }
  | { kind: 'update'; id: string; reason: string; changes: string[] }
  | { kind: 'schema_update'; id: string; reason: string; revert: boolean }
  /** `operator`: asked for through the operator API (restart generation bumped); replaced like a spec change. */
  | { kind: 'restart'; id: string; reason: string; cause: 'spec' | 'crash' | 'operator' }
  | { kind: 'stop'; id: string; reason: string; removed: boolean }
  | { kind: 'delete'; id: string; reason: string; dropDatabase: boolean }
  /** Backoff: nothing is started (or deleted) this pass; not a state change. */
  | { kind: 'wait'; id: string; reason: string; waitMs: number; on: 'crash' | 'replace' | 'delete' | 'move' | 'drop' | 'placement' | 'reschedule' }
  /** Suspended by an operator: the pass leaves the project exactly as it is (the only action it gets). */
  | { kind: 'suspended'; id: string; reason: string; by: string; at: string }
  /**
   * An operator asked to restore the project's database from a backup (request `request`): the instance stops, the
   * database is replaced, the instance starts again. `refused`: the request is closed as failed, nothing is touched.
   */
  | { kind: 'restore'; id: string; reason: string; request: number; backup: string; file: string; by: string; refused?: string }
  /**
   * The database moves to another fleet.yaml server: the instance stops, a fresh backup of `from` is restored on `to`,
   * DATABASE_URL points at `to`, the instance starts again. The copy on `from` is kept. `refused`: nothing is done.
   */
  | { kind: 'move_database'; id: string; reason: string; from: string; to: string; refused?: string }
  /** The copy a move left on `server` is dropped after a backup (`database.dropOld: true`); null: not known (a preview). */
  | { kind: 'drop_old_database'; id: string; reason: string; server: string | null }
  | { kind: 'noop'; id: string; reason: string };

/** `Degraded`: a replacement did not become ready and the previous instance keeps serving. */
export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled' | 'Invalid' | 'Healthy' | 'Gateway' | 'Degraded';

export interface Condition {
  type: ConditionType;
  status: boolean;
  reason: string;
  message: string;
  at: string;
}

/** One row of the `projects` table, as the gateway and `fleet status` read it. */
export interface RegistryRow {
  id: string;
  displayName: string;
  hostname: string | null;
  aliases: string[];
  status: ProjectStatus;
  desiredState: 'running' | 'stopped';
  upstream: string | null;
  schemaVersion: string | null;
  schemaDigest: string | null;
  observedCommit: string | null;
  appliedCommit: string | null;
  lastHealth: { ok: boolean; status?: number; error?: string; at: string } | null;
  conditions: Condition[];
  manifest: Manifest | null;
  /** Secret references only (ENV_NAME → store reference), never values. */
  secretRefs: Record<string, string>;
  port: number | null;
  updatedAt: string;
}

/** What a driver needs to run one instance. Secret values are present only in memory, never persisted. */
export interface InstanceSpec {
  id: string;
  commit: string;
  image?: string;
  command?: string[];
  env: Record<string, string>;
  /** Host path of the materialized schema file. */
  schemaPath: string;
  /**
   * Port to listen on (process driver: the project's stable host port; a replacement started next to a running
   * instance gets a fresh one; docker: container port).
   */
  port: number;
  resources: { memory?: string; cpus?: number };
  /** Where the instance may run (swarm driver; the others run on this host). */
  placement?: Placement;
  /** A digest of everything that requires a restart when it changes (not secret values themselves). */
  specHash: string;
  logDir: string;
}

export interface Instance {
  id: string;
  running: boolean;
  upstream: string;
  specHash: string;
  commit: string;
  /** Exit code of the last exit, when known. */
  exitCode?: number | null;
  /**
   * Set when the instance does not run because the engine cannot place it now (swarm: no node satisfies its
   * placement, e.g. after losing the only matching node): what to do about it. Not an exit: the engine starts it
   * once a node fits, the daemon waits instead of restarting it.
   */
  pending?: string;
  /** What `pending` is (default Unschedulable). */
  pendingReason?: PendingReason;
  ref: string;
}

/**
 * Where a driver's instances listen and read their schema: declared by each driver (process.ts, container-spec.ts),
 * so nothing outside drivers/ branches on a driver's name.
 */
export interface DriverLayout {
  name: string;
  /** The address the instance binds (its HOST). */
  host: string;
  /** Each project needs its own host port from the fleet (processes share the host; containers do not). */
  hostPorts: boolean;
  /** Where the schema file is inside the instance, or null when the instance reads the host path itself. */
  schemaMount: string | null;
}

export interface Driver {
  readonly name: string;
  /** Every instance this driver runs for the fleet, found afresh (pid files, labels), not from memory. */
  list(): Promise<Instance[]>;
  /**
   * Start an instance; starting one that already runs with the same specHash returns it unchanged.
   * When one runs with another specHash it is replaced the Kamal way: the new one starts next to it (its own
   * port or container) and, given `ready` (the daemon's own HTTP probe), must answer before it becomes the
   * current instance. The old one keeps serving, as "retiring", until `retire` stops it. A replacement that does
   * not get ready is stopped and the start throws; the old one stays the current instance.
   */
  start(spec: InstanceSpec, opts?: { ready?: (upstream: string) => Promise<boolean> }): Promise<Instance>;
  /**
   * Stop the retiring instances nothing routes to any more. The daemon calls it after the gateway loaded the
   * registry's upstreams (at once when there is no gateway); `routed` is every upstream the registry names.
   * Level-based: retiring instances are found afresh (pid files, labels), also those a previous daemon left.
   */
  retire?(routed: ReadonlySet<string>): Promise<void>;
  /** Stop and forget an instance, retiring ones included; stopping one that does not run is fine. */
  stop(id: string): Promise<void>;
  /**
   * Remove all the driver keeps for a deleted project, where `stop` keeps something (swarm: the service scaled
   * to 0 and its schema configs). Drivers whose `stop` leaves nothing behind do not need it.
   */
  remove?(id: string): Promise<void>;
  /** Called once by the daemon; exits of supervised instances are reported here. */
  onExit?(listener: (id: string, code: number | null) => void): void;
  /**
   * The instance's output (stdout and stderr), oldest first: its last `lines` lines, then with `follow` each new
   * line until `signal` aborts. A project that never logged yields nothing. For `fleet logs` and the dashboard.
   */
  logs?(id: string, opts: LogOptions): AsyncIterable<string>;
  close?(): Promise<void>;
}

export interface LogOptions {
  lines: number;
  follow?: boolean;
  signal?: AbortSignal;
}

export interface SecretStore {
  readonly name: string;
  /** Resolve a reference to its value; missing → FleetError code SECRET_MISSING. */
  get(ref: string): Promise<string>;
  put(ref: string, value: string): Promise<void>;
  /** Whether a reference exists, without reading its value. */
  has(ref: string): Promise<boolean>;
  delete(ref: string): Promise<void>;
}
