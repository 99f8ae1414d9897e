// Drivers by name, in an explicit map: an unknown name fails with the list of known ones.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Driver, DriverLayout } from '../core/types.ts';
import { FleetError } from '../core/errors.ts';
import { PROCESS_LAYOUT, createProcessDriver } from './process.ts';
import { dockerLayout } from './container-spec.ts';

/** Options every driver accepts; a driver reads the extra keys it needs (e.g. docker's socketPath, network). */
export interface DriverOptions {
  stateDir: string;
  log: Logger;
  standinPath?: string;
  [key: string]: unknown;
}

type DriverFactory = (opts: DriverOptions) => Driver | Promise<Driver>;

/**
 * The docker driver registers from './docker.ts', loaded lazily: it pulls in dockerode, which the process driver
 * (laptops, tests) does not need. The specifier is computed so a missing file fails here, with a clear error,
 * instead of breaking every import of this module.
 */
async function loadDocker(opts: DriverOptions): Promise<Driver> {
  const url = new URL('./docker.ts', import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new FleetError('UNKNOWN_COMPONENT', 'driver "docker" is not available in this build (daemon/drivers/docker.ts is missing); use driver: process');
  }
  let mod: { createDockerDriver?: DriverFactory };
  try {
    mod = await import(url.href);
  } catch (err) {
    throw new FleetError('DRIVER', `cannot load the docker driver: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.createDockerDriver !== 'function') {
    throw new FleetError('DRIVER', 'daemon/drivers/docker.ts does not export createDockerDriver(opts)');
  }
  return mod.createDockerDriver(opts);
}

export const drivers: Readonly<Record<string, DriverFactory>> = Object.freeze({
  process: createProcessDriver,
  docker: loadDocker,
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
});

export function driverLayout(name: string, opts: { network?: string } = {}): DriverLayout {
  if (!Object.hasOwn(layouts, name)) {
    throw new FleetError('UNKNOWN_COMPONENT', `unknown driver "${name}"; known: ${Object.keys(layouts).join(', ')}`);
  }
  return layouts[name](opts);
}
