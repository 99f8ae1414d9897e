// A whole fleet for end-to-end tests: a real git repository, a real Postgres, the real daemon with the process
// driver and real instance processes, all in temp folders, torn down after.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { vi } from 'vitest';
import { bootDaemon, type BootOptions, type RunningDaemon } from '../../daemon/boot.ts';
import { createProcessDriver } from '../../daemon/drivers/process.ts';
import { createLogger } from '../../daemon/log.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { REGISTRY_DATABASE } from '../../daemon/postgres/resolve.ts';
import type { ProjectRecord } from '../../daemon/registry/registry.ts';
import { DEFAULT_FLEET_YAML, createRepo, type TestRepo } from './git.ts';
import { startPostgres, type TestPostgres } from './postgres.ts';

export interface TestFleet {
  repo: TestRepo;
  pg: TestPostgres;
  stateDir: string;
  registryUrl: string;
  /** Every JSON log line the daemon wrote. */
  logs: string[];
  running: RunningDaemon | null;
  boot(extra?: Partial<BootOptions>): Promise<RunningDaemon>;
  /** Stop the daemon (instances keep running, as after a daemon restart). */
  stopDaemon(): Promise<void>;
  project(id: string): Promise<ProjectRecord | null>;
  events(id: string): Promise<{ action: string; actor: string | null; commit: string | null }[]>;
  /** Wait until the project's row satisfies `check`. */
  until(id: string, check: (p: ProjectRecord) => boolean, timeoutMs?: number): Promise<ProjectRecord>;
  get(id: string, path: string): Promise<{ status: number; body: any }>;
  destroy(): Promise<void>;
}

export async function createFleet(opts: { pg?: TestPostgres } = {}): Promise<TestFleet> {
  const repo = await createRepo();
  repo.write('fleet.yaml', DEFAULT_FLEET_YAML);
  const pg = opts.pg ?? (await startPostgres());
  const registryUrl = await pg.database(REGISTRY_DATABASE);
  const stateDir = mkdtempSync(join(tmpdir(), 'fleet-state-'));
  chmodSync(stateDir, 0o755);
  const logs: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  const log = createLogger({ level: 'debug', destination: sink });

  const fleet: TestFleet = {
    repo, pg, stateDir, registryUrl, logs, running: null,
    async boot(extra = {}) {
      const cfg = checkFleetConfig(DEFAULT_FLEET_YAML).config!;
      fleet.running = await bootDaemon({
        log, repoDir: repo.dir, fleet: cfg, stateDir, registryUrl, adminUrl: pg.url, httpPort: 0,
        intervalMs: 300, caddyAdmin: null,
        // Test files run side by side: each fleet hands out instance ports from its own range.
        portBase: 20000 + Math.floor(Math.random() * 400) * 100, backoff: { baseMs: 300, capMs: 2000, stallAfter: 3, stableMs: 5000 },
        ...extra,
      });
      return fleet.running;
    },
    async stopDaemon() {
      await fleet.running?.stop();
      fleet.running = null;
    },
    async project(id) {
      return (await fleet.running!.daemon.registry.get(id));
    },
    async events(id) {
      return (await fleet.running!.daemon.registry.events(id)).map(({ action, actor, commit }) => ({ action, actor, commit }));
    },
    async until(id, check, timeoutMs = 30_000) {
      let last: ProjectRecord | null = null;
      // vi.waitFor works in hooks too (expect.poll only inside a test).
      await vi.waitFor(async () => {
        last = await fleet.project(id).catch(() => null);
        if (!last || !check(last)) {
          throw new Error(`project ${id} not there yet: ${JSON.stringify(last && { status: last.status, applied: last.appliedCommit, observed: last.observedCommit, error: last.lastError })}`);
        }
      }, { timeout: timeoutMs, interval: 100 });
      return last!;
    },
    async get(id, path) {
      const rec = await fleet.project(id);
      const res = await fetch(`http://${rec!.upstream}${path}`);
      const text = await res.text();
      let body: any = text;
      try { body = JSON.parse(text); } catch { /* plain text */ }
      return { status: res.status, body };
    },
    async destroy() {
      // Instances outlive the daemon by design: stop them explicitly.
      await fleet.stopDaemon().catch(() => {});
      const driver = createProcessDriver({ stateDir: join(stateDir, 'instances'), log });
      for (const inst of await driver.list()) await driver.stop(inst.id).catch(() => {});
      if (!opts.pg) await pg.destroy();
      repo.cleanup();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return fleet;
}
