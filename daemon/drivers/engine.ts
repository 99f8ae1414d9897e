// What the docker and swarm drivers share about talking to a Docker Engine API: every call's errors become
// FleetErrors (an unreachable API is DRIVER_UNREACHABLE, naming the socket and the fleet.yaml key to fix), and
// the engine's "not found / already there" statuses become plain values.
import { FleetError, describe } from '../core/errors.ts';

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE', 'ENOTSOCK']);

export function isUnreachable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && UNREACHABLE.has(code);
}

/** A `.catch` handler: the given HTTP status(es) from the engine become `value`, anything else rethrows. */
export function ifStatus<T>(status: number | number[], value: T): (err: unknown) => T {
  const wanted = Array.isArray(status) ? status : [status];
  return (err) => {
    if (wanted.includes((err as { statusCode?: number })?.statusCode ?? -1)) return value;
    throw err;
  };
}

/** The wrapper every engine call of one driver (`docker` or `swarm`, also its fleet.yaml section) goes through. */
export function engineApi(driver: 'docker' | 'swarm', socketPath: string) {
  return async function api<T>(what: string, fn: () => Promise<T>, project?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof FleetError) throw err;
      if (isUnreachable(err)) {
        throw new FleetError('DRIVER_UNREACHABLE', `Docker API at ${socketPath} is unreachable: ${describe(err)}; start the engine or fix ${driver}.socketPath in fleet.yaml`, { project, cause: err });
      }
      throw new FleetError('DRIVER', `${driver}: ${what} failed: ${describe(err)}`, { project, cause: err });
    }
  };
}
