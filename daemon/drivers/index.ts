// Drivers by name, in an explicit map: an unknown name fails with the list of known ones.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Driver, DriverLayout } from '../core/types.ts';
import { FleetError } from '../core/errors.ts';
import { PROCESS_LAYOUT, createProcessDriver } from './process.ts';
import { dockerLayout } from './container-spec.ts';
import { SWARM_LAYOUT } from './swarm-spec.ts';

/** Options every driver accepts; a driver reads the extra keys it needs (e.g. docker's socketPath, network). */
export interface DriverOptions {
  stateDir: string;
  log: Logger;
  standinPath?: string;
  [key: string]: unknown;
}

type DriverFactory = (opts: DriverOptions) => Driver | Promise<Driver>;

/**
 * The docker and swarm drivers register from './docker.ts' and './swarm.ts', loaded lazily: they pull in dockerode,
 * which the process driver (laptops, tests) does not need. The specifier is computed so a missing file fails here,
 * with a clear error, instead of breaking every import of this module.
 */
function lazy(name: string, file: string, factory: string): DriverFactory {
  return async (opts) => {
    const url = new URL(file, import.meta.url);
    if (!existsSync(fileURLToPath(url))) {
      throw new FleetError('UNKNOWN_COMPONENT', `driver "${name}" is not available in this build (daemon/drivers/${file.slice(2)} is missing); use driver: process`);
    }
    let mod: Record<string, unknown>;
    try {
      mod = await import(url.href);
    } catch (err) {
      throw new FleetError('DRIVER', `cannot load the ${name} driver: ${(err as Error).message}`, { cause: err });
    }
    if (typeof mod[factory] !== 'function') {
      throw new FleetError('DRIVER', `daemon/drivers/${file.slice(2)} does not export ${factory}(opts)`);
    }
    return (mod[factory] as DriverFactory)(opts);
  };
}

/** fleet.yaml's `swarm:` settings (passed as `swarm`), else the docker-style socketPath and network keys. */
function swarmOptions(opts: DriverOptions): DriverOptions {
  const swarm = (opts.swarm ?? {}) as { socketPath?: string; network?: string; healthcheck?: string[]; bindNetwork?: string };
  return { ...opts, socketPath: swarm.socketPath ?? opts.socketPath, network: swarm.network, healthcheck: swarm.healthcheck, bindNetwork: swarm.bindNetwork };
}

const loadSwarm = lazy('swarm', './swarm.ts', 'createSwarmDriver');

export const drivers: Readonly<Record<string, DriverFactory>> = Object.freeze({
  process: createProcessDriver,
  docker: lazy('docker', './docker.ts', 'createDockerDriver'),
  swarm: (opts) => loadSwarm(swarmOptions(opts)),
});

export async function createDriver(name: string, opts: DriverOptions): Promise<Driver> {
  if (!Object.hasOwn(drivers, name)) {
    throw new FleetError('UNKNOWN_COMPONENT', `unknown driver "${name}"; known: ${Object.keys(drivers).join(', ')}`);
  }
  return drivers[name](opts);
}

/** Where each driver's instances listen and read their schema (the drivers declare it; options may refine it). */
const layouts: Readonly<Record<string, (opts: { network?: string }) => DriverLayout>> = Object.freeze({
  process: () => PROCESS_LAYOUT,
  docker: (opts) => dockerLayout(opts.network),
  swarm: () => SWARM_LAYOUT,
});

export function driverLayout(name: string, opts: { network?: string } = {}): DriverLayout {
  if (!Object.hasOwn(layouts, name)) {
    throw new FleetError('UNKNOWN_COMPONENT', `unknown driver "${name}"; known: ${Object.keys(layouts).join(', ')}`);
  }
  return layouts[name](opts);
}
