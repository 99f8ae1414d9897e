// Pure renderer: InstanceSpec → the body of Docker's `POST /containers/create`. No I/O, golden-tested.
// Secret values reach the container only through Env; names and labels carry ids, commits and hashes only.
import { FleetError } from '../core/errors.ts';
import type { DriverLayout, InstanceSpec } from '../core/types.ts';

export const LABEL_MANAGED = 'atomo.fleet.managed';
export const LABEL_PROJECT = 'atomo.fleet.project';
export const LABEL_COMMIT = 'atomo.fleet.commit';
export const LABEL_SPEC_HASH = 'atomo.fleet.spec-hash';
/** The port the instance listens on inside its container, so `list()` can rebuild the upstream. */
export const LABEL_PORT = 'atomo.fleet.port';

/** Where the image reads its schema (instance contract: `ATOMO_SCHEMA_PATH=/app/schema.ts`). */
export const DEFAULT_SCHEMA_MOUNT = '/app/schema.ts';

/**
 * Containers listen on every interface of their own network namespace and have their own ports; the schema file is
 * bind-mounted at DEFAULT_SCHEMA_MOUNT. On the host's network (`network: host`) they listen on loopback only.
 */
export function dockerLayout(network?: string): DriverLayout {
  return Object.freeze({ name: 'docker', host: network === 'host' ? '127.0.0.1' : '0.0.0.0', hostPorts: false, schemaMount: DEFAULT_SCHEMA_MOUNT });
}

export interface RenderOptions {
  /** Docker network the instance joins (compose: `fleet-projects`); `host` shares the host's network, listening on loopback. */
  network: string;
  /** Publish the port on this host address with an ephemeral host port (tests: `127.0.0.1`). Never 0.0.0.0. */
  publishHost?: string;
  /** Path inside the container where the schema file is mounted read-only. */
  schemaMount: string;
}

/** The subset of Docker's create body the fleet sets; serialisable as JSON for golden files. */
export interface ContainerCreateBody {
  name: string;
  Image: string;
  Env: string[];
  Labels: Record<string, string>;
  ExposedPorts: Record<string, Record<string, never>>;
  HostConfig: {
    Memory?: number;
    NanoCpus?: number;
    RestartPolicy: { Name: 'unless-stopped' };
    Binds: string[];
    NetworkMode: string;
    PortBindings?: Record<string, { HostIp: string; HostPort: string }[]>;
    CapDrop: string[];
    SecurityOpt: string[];
    LogConfig: { Type: string; Config: Record<string, string> };
  };
}

export function containerName(spec: Pick<InstanceSpec, 'id' | 'specHash'>): string {
  return `fleet-${spec.id}-${spec.specHash.slice(0, 8)}`;
}

export function renderContainer(spec: InstanceSpec, opts: RenderOptions): ContainerCreateBody {
  const manifest = `projects/${spec.id}/project.yaml`;
  if (!spec.image) {
    throw new FleetError('INVALID_MANIFEST', `${manifest}: /runtime/image: the docker driver needs runtime.image (e.g. ghcr.io/atomo-cc/atomo-server:<version>)`, { project: spec.id });
  }
  if (opts.publishHost === '0.0.0.0' || opts.publishHost === '::') {
    throw new FleetError('DRIVER', `refusing to publish instance ports on all interfaces (${opts.publishHost}); use 127.0.0.1 or no publishing`, { project: spec.id });
  }
  const portKey = `${spec.port}/tcp`;
  const hostConfig: ContainerCreateBody['HostConfig'] = {
    // The atomo schema watcher exits 0 on change: the engine must start it again.
    RestartPolicy: { Name: 'unless-stopped' },
    Binds: [`${spec.schemaPath}:${opts.schemaMount}:ro`],
    NetworkMode: opts.network,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    // Bounded logs: many instances on one host must not fill the disk.
    LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
  };
  if (spec.resources.memory !== undefined) hostConfig.Memory = parseMemory(spec.resources.memory, spec.id);
  if (spec.resources.cpus !== undefined) hostConfig.NanoCpus = parseCpus(spec.resources.cpus, spec.id);
  // Host networking shares the host's ports: nothing to publish.
  if (opts.publishHost && opts.network !== 'host') hostConfig.PortBindings = { [portKey]: [{ HostIp: opts.publishHost, HostPort: '' }] };

  return {
    name: containerName(spec),
    Image: spec.image,
    Env: renderEnv(spec, opts),
    Labels: {
      [LABEL_MANAGED]: 'true',
      [LABEL_PROJECT]: spec.id,
      [LABEL_COMMIT]: spec.commit,
      [LABEL_SPEC_HASH]: spec.specHash,
      [LABEL_PORT]: String(spec.port),
    },
    ExposedPorts: { [portKey]: {} },
    HostConfig: hostConfig,
  };
}

/**
 * The environment the executor rendered (core/instance-spec.ts renderInstanceEnv), with the wiring this container
 * really has pinned over it: the port it publishes, the mount it reads, the address its layout declares.
 */
function renderEnv(spec: InstanceSpec, opts: RenderOptions): string[] {
  const env: Record<string, string> = {
    ...spec.env,
    ATOMO_PROJECT_ID: spec.id,
    HOST: dockerLayout(opts.network).host,
    PORT: String(spec.port),
    ATOMO_SCHEMA_PATH: opts.schemaMount,
  };
  return Object.keys(env)
    .sort()
    .map((k) => `${k}=${env[k]}`);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Docker-style sizes: "268435456", "512k", "256m", "1g", "1.5g" (binary units). */
export function parseMemory(value: string, project: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$/i.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]) : NaN;
  // Docker refuses limits under 6 MB; say so here with the file to fix rather than as an engine error.
  if (!Number.isFinite(bytes) || bytes < 6 * 1024 ** 2) {
    throw new FleetError('INVALID_MANIFEST', `projects/${project}/project.yaml: /resources/memory: "${value}" is not a memory size of at least 6m; use e.g. "256m" or "1g"`, { project });
  }
  return bytes;
}

function parseCpus(cpus: number, project: string): number {
  if (!Number.isFinite(cpus) || cpus <= 0) {
    throw new FleetError('INVALID_MANIFEST', `projects/${project}/project.yaml: /resources/cpus: ${cpus} must be a positive number, e.g. 0.5`, { project });
  }
  return Math.round(cpus * 1e9);
}
