// Pure renderer: InstanceSpec → the body of Swarm's `POST /services/create` (and `/update`). No I/O.
// Secret values reach the task only through its environment; labels and names carry ids, commits and hashes.
import { createHash } from 'node:crypto';
import { FleetError } from '../core/errors.ts';
import type { DriverLayout, InstanceSpec } from '../core/types.ts';
import { DEFAULT_SCHEMA_MOUNT, LABEL_COMMIT, LABEL_MANAGED, LABEL_PORT, LABEL_PROJECT, LABEL_SPEC_HASH, parseMemory } from './container-spec.ts';

export const LABEL_SCHEMA_DIGEST = 'atomo.fleet.schema-digest';
export const DEFAULT_SWARM_NETWORK = 'fleet-swarm';

/**
 * Tasks listen on every interface of their container (their port is published in host mode on the node that runs
 * them, a port the swarm picks) and read the schema from a Swarm config mounted at the contract's path.
 */
export const SWARM_LAYOUT: DriverLayout = Object.freeze({ name: 'swarm', host: '0.0.0.0', hostPorts: false, schemaMount: DEFAULT_SCHEMA_MOUNT });

/**
 * Default healthcheck, run inside the image: GET /ready on $PORT with bash's /dev/tcp (atomo-server's Debian image
 * has bash, not curl). Swarm stops the old task only when the new one is healthy.
 */
export const DEFAULT_HEALTHCHECK = [
  'bash', '-c',
  'exec 3<>/dev/tcp/127.0.0.1/$PORT && printf \'GET /ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\' >&3 && read -r status <&3 && [[ $status == *" 200 "* ]]',
];

export interface HealthTimings {
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  /** Boot time: failures meanwhile do not count (atomo migrates its database before it binds its port). */
  startPeriodMs: number;
}

export const DEFAULT_HEALTH: HealthTimings = Object.freeze({ intervalMs: 2000, timeoutMs: 3000, retries: 3, startPeriodMs: 60_000 });

export interface ServiceRenderOptions {
  network: string;
  /** The schema's config object, created by the driver for this content. */
  config: { id: string; name: string };
  healthcheck: string[];
  health: HealthTimings;
  /** How long Swarm watches a new task for failure before the update counts as done. */
  monitorMs: number;
  replicas: number;
}

/** The subset of Swarm's ServiceSpec the fleet sets. */
export interface ServiceSpecBody {
  Name: string;
  Labels: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: {
      Image: string;
      Env: string[];
      Labels: Record<string, string>;
      Configs: { File: { Name: string; UID: string; GID: string; Mode: number }; ConfigID: string; ConfigName: string }[];
      Healthcheck: { Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number };
      StopGracePeriod: number;
      CapabilityDrop: string[];
    };
    Resources: { Limits: Limits; Reservations: Limits };
    RestartPolicy: { Condition: 'any'; Delay: number; MaxAttempts: number };
    Placement: { Constraints: string[]; Preferences: { Spread: { SpreadDescriptor: string } }[] };
    Networks: { Target: string }[];
    LogDriver: { Name: string; Options: Record<string, string> };
  };
  Mode: { Replicated: { Replicas: number } };
  UpdateConfig: UpdatePolicy;
  RollbackConfig: UpdatePolicy;
  EndpointSpec: { Ports: { Protocol: 'tcp'; TargetPort: number; PublishMode: 'host' }[] };
}

interface Limits { MemoryBytes?: number; NanoCPUs?: number }
interface UpdatePolicy { Parallelism: number; Order: 'start-first'; FailureAction: string; Monitor: number; MaxFailureRatio: number }

const MS = 1_000_000; // nanoseconds

/**
 * The project's service name. Swarm takes a DNS label component of at most 63 characters, ending in a letter or
 * digit: `fleet-<id>` for every id that gives one (a service cannot be renamed, so these stay as they were), and
 * for an id ending in `_` the id without them plus a hash of the whole id. No id contains `-`, so a hashed name
 * never equals another project's plain one.
 */
export function serviceName(id: string): string {
  if (!id.endsWith('_')) return `fleet-${id}`;
  return `fleet-${id.replace(/_+$/, '')}-${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

/**
 * One config object per project and schema content: configs are immutable, a new schema is a new one. Swarm takes
 * at most 64 characters: the digest part shrinks from 12 to 10 hex digits for the longest ids.
 */
export function schemaConfigName(id: string, digest: string): string {
  return `fleet-schema-${id}-${digest.slice(0, Math.min(12, 50 - id.length))}`;
}

export function schemaDigest(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export function renderService(spec: InstanceSpec, o: ServiceRenderOptions): ServiceSpecBody {
  if (!spec.image) {
    throw new FleetError('INVALID_MANIFEST', `projects/${spec.id}/project.yaml: /runtime/image: the swarm driver needs runtime.image (e.g. ghcr.io/atomo-cc/atomo-server:<version>)`, { project: spec.id });
  }
  const labels = {
    [LABEL_MANAGED]: 'true', [LABEL_PROJECT]: spec.id, [LABEL_COMMIT]: spec.commit, [LABEL_SPEC_HASH]: spec.specHash, [LABEL_PORT]: String(spec.port),
  };
  const limits: Limits = {};
  if (spec.resources.memory !== undefined) limits.MemoryBytes = parseMemory(spec.resources.memory, spec.id);
  if (spec.resources.cpus !== undefined) limits.NanoCPUs = Math.round(spec.resources.cpus * 1e9);
  // start-first: the new task runs (and is healthy) before the old one stops; a failed one rolls the service back.
  const update = (failureAction: string): UpdatePolicy => ({ Parallelism: 1, Order: 'start-first', FailureAction: failureAction, Monitor: o.monitorMs * MS, MaxFailureRatio: 0 });
  return {
    Name: serviceName(spec.id),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        Env: renderEnv(spec),
        // On the task's container too: each task says which spec it runs, also while an update is under way.
        Labels: labels,
        Configs: [{ File: { Name: DEFAULT_SCHEMA_MOUNT, UID: '0', GID: '0', Mode: 0o444 }, ConfigID: o.config.id, ConfigName: o.config.name }],
        Healthcheck: {
          Test: ['CMD', ...o.healthcheck], Interval: o.health.intervalMs * MS, Timeout: o.health.timeoutMs * MS,
          Retries: o.health.retries, StartPeriod: o.health.startPeriodMs * MS,
        },
        StopGracePeriod: 10_000 * MS,
        CapabilityDrop: ['ALL'],
      },
      // Reservations equal to limits: the scheduler never places more on a node than it can hold.
      Resources: { Limits: limits, Reservations: { ...limits } },
      // The atomo schema watcher exits 0 on change: any exit is started again, as `unless-stopped` does.
      RestartPolicy: { Condition: 'any', Delay: 2000 * MS, MaxAttempts: 0 },
      Placement: {
        Constraints: spec.placement?.constraints ?? [],
        Preferences: (spec.placement?.preferences ?? []).map((p) => ({ Spread: { SpreadDescriptor: p.spread } })),
      },
      Networks: [{ Target: o.network }],
      LogDriver: { Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '3' } },
    },
    Mode: { Replicated: { Replicas: o.replicas } },
    UpdateConfig: update('rollback'),
    RollbackConfig: update('pause'),
    // Host mode, no published port: the swarm picks a free one per task on its node, so old and new tasks of a
    // start-first update can run side by side on one node.
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: spec.port, PublishMode: 'host' }] },
  };
}

/** The executor's environment with the wiring this task really has pinned over it (as container-spec.ts does). */
function renderEnv(spec: InstanceSpec): string[] {
  const env: Record<string, string> = {
    ...spec.env, ATOMO_PROJECT_ID: spec.id, HOST: SWARM_LAYOUT.host, PORT: String(spec.port), ATOMO_SCHEMA_PATH: DEFAULT_SCHEMA_MOUNT,
  };
  return Object.keys(env).sort().map((k) => `${k}=${env[k]}`);
}

/** `node.labels.tier==hot` → the command that makes a node satisfy it, for error messages. */
export function placementHint(constraints: string[]): string {
  const label = constraints.map((c) => /^node\.labels\.([^=!\s]+)\s*==\s*(\S+)$/.exec(c)).find(Boolean);
  return label ? `label a node (docker node update --label-add ${label[1]}=${label[2]} <node>)` : 'make a node match it';
}
