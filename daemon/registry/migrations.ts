// Registry schema, applied in order at start. Each entry runs once, inside a transaction, recorded in fleet_migrations.
export const migrations: string[] = [
  `
  CREATE TABLE projects (
    id              TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    -- Not UNIQUE in the database: validation enforces unique hostnames per commit, and a commit that swaps two
    -- hostnames must be appliable one row at a time. The gateway renders only present rows.
    hostname        TEXT,
    aliases         TEXT[] NOT NULL DEFAULT '{}',
    database_url    TEXT NOT NULL,            -- secret-store reference, never the URL itself
    database_name   TEXT NOT NULL,
    role_name       TEXT NOT NULL,
    schema_ref      JSONB NOT NULL,           -- { type: "git", repo, path, ref: <commit sha> }
    schema_version  TEXT,                     -- commit whose schema the instance runs
    schema_digest   TEXT,                     -- sha256 of the materialized schema file
    schema_history  TEXT[] NOT NULL DEFAULT '{}',
    upstream        TEXT,
    port            INT UNIQUE,
    env             JSONB NOT NULL DEFAULT '{}',
    secret_refs     JSONB NOT NULL DEFAULT '{}',
    manifest        JSONB NOT NULL,           -- last applied manifest
    present         BOOLEAN NOT NULL DEFAULT true,
    status          TEXT NOT NULL,
    desired_state   TEXT NOT NULL DEFAULT 'running',
    observed_commit TEXT,
    applied_commit  TEXT,
    spec_hash       TEXT,
    secrets_version INT NOT NULL DEFAULT 0,
    restarts        INT NOT NULL DEFAULT 0,
    last_health     JSONB,
    conditions      JSONB NOT NULL DEFAULT '[]',
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
  );
  CREATE TABLE project_events (
    id          BIGSERIAL PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id),
    action      TEXT NOT NULL,
    actor       TEXT,
    commit      TEXT,
    detail      JSONB,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
  );
  CREATE INDEX project_events_project ON project_events (project_id, id);
  CREATE TABLE fleet_state (
    key   TEXT PRIMARY KEY,
    value JSONB NOT NULL,
    at    TIMESTAMPTZ NOT NULL DEFAULT now()
  );
  `,
  // What provisioning gave the project's role (its connection limit); NULL until the role, database and secrets
  // exist. Recorded so a daemon restart does not provision every project again.
  `ALTER TABLE projects ADD COLUMN provisioned_connections INT`,
  // Operator requests (the API): a restart generation bumped per restart request (part of the instance spec hash, so
  // the pending restart is level-based), who asked last, and a suspension ({ by, at }) that every pass leaves alone.
  `ALTER TABLE projects ADD COLUMN restart_generation INT NOT NULL DEFAULT 0;
   ALTER TABLE projects ADD COLUMN restart_requested_by TEXT;
   ALTER TABLE projects ADD COLUMN suspended JSONB`,
  // Operator requests the daemon carries out in its pass (level-based: an open row is looked at every pass until
  // done): `restore` today. At most one open request per project and kind; `progress` is written while it runs.
  `CREATE TABLE project_requests (
     id            BIGSERIAL PRIMARY KEY,
     project_id    TEXT NOT NULL REFERENCES projects(id),
     kind          TEXT NOT NULL,
     args          JSONB NOT NULL DEFAULT '{}',
     requested_by  TEXT,
     requested_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
     started_at    TIMESTAMPTZ,
     done_at       TIMESTAMPTZ,
     outcome       JSONB,
     progress      JSONB
   );
   CREATE UNIQUE INDEX project_requests_open ON project_requests (project_id, kind) WHERE done_at IS NULL`,
  // Which fleet.yaml Postgres server holds the project's database (NULL: the default server, main, as for every row
  // from before servers existed), which one still holds the copy a move left behind (NULL: none), and the commit
  // whose move left it (`dropOld` drops it only from a later commit).
  `ALTER TABLE projects ADD COLUMN database_server TEXT;
   ALTER TABLE projects ADD COLUMN old_database_server TEXT;
   ALTER TABLE projects ADD COLUMN old_database_commit TEXT`,
];
