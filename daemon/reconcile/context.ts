// What every step of a reconcile pass is handed: the clients it may use and the pass it belongs to. Apart from
// reconcile.ts so the steps (instance, delete) can name it without importing the reconciler that calls them.
import type { Logger } from 'pino';
import type { Backoff } from '../core/backoff.ts';
import type { Action, Instance } from '../core/types.ts';
import type { Registry } from '../registry/registry.ts';
import type { InstanceDeps } from './instance.ts';
import type { ServerDirectory } from '../postgres/servers.ts';

export interface ReconcileDeps extends InstanceDeps {
  registry: Registry;
  repoUrl: string;
  /** First port handed to process-driver instances. */
  portBase: number;
  backupDir: string;
  /** Pacing of operations that failed and must not be retried every pass (a guarded delete's backup). */
  retries: Backoff;
  /** Projects converged side by side in one pass. */
  concurrency: number;
  /** fleet.yaml's Postgres servers by name (the default one is `adminUrl`): where each project's database lives. */
  servers: ServerDirectory;
}

/** One pass over one project: its logger, the instances seen at the pass's start, the commit and its author. */
export type ReconcileContext = {
  deps: ReconcileDeps;
  log: Logger;
  instances: Map<string, Instance> | null;
  commit: string;
  actor: string;
  actions: Action[];
  /** Ports held by projects, shared by the pass's registrations. */
  ports: Set<number>;
};
