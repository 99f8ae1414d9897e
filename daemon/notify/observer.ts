// What the daemon tells its observers (metrics, notifications): one small object of optional callbacks, called at
// the few places where something happened. Callbacks must be cheap and must not throw or block: the pass hands over
// what it already holds (its rows, its read) and goes on; anything slow (HTTP, the registry) runs in the background.
import type { FleetConfig } from '../core/types.ts';
import type { FleetRead } from '../git/read.ts';
import type { ProjectRecord } from '../registry/registry.ts';

/** A pass as observers see it. `result` is the PassResult shape (kept structural: no import of daemon.ts). */
export interface PassObservation {
  result: { commit: string | null; ok: boolean; error?: string };
  /** Wall-clock seconds the pass took. */
  seconds: number;
  /** False when another daemon holds the reconcile lock: this one did nothing. */
  locked: boolean;
  /** The read the pass converged on, and the rows it left (null when it did not get that far). */
  read: FleetRead | null;
  rows: readonly ProjectRecord[] | null;
  /** The fleet.yaml in force (the last valid one). */
  fleet: FleetConfig | null;
}

export interface FleetObserver {
  onPass?(p: PassObservation): void;
  /** A sync of the git source (fetch of a remote, or reading a local branch). */
  onFetch?(seconds: number, ok: boolean): void;
  /** A gateway sync that loaded a config (`changed`) or failed (`ok` false); an unchanged config is not a load. */
  onGatewayLoad?(g: { ok: boolean; changed?: boolean }): void;
  /** A backup ended: written and verified (ok), or failed with a message. */
  onBackup?(project: string, ok: boolean, message?: string): void;
}

/** Several observers as one (metrics and notifications side by side); a throwing observer never stops the others. */
export function observers(...list: (FleetObserver | null | undefined)[]): FleetObserver {
  const all = list.filter((o): o is FleetObserver => !!o);
  const each = <K extends keyof FleetObserver>(k: K) => (...args: Parameters<NonNullable<FleetObserver[K]>>) => {
    for (const o of all) {
      try {
        (o[k] as ((...a: unknown[]) => void) | undefined)?.(...args);
      } catch {
        // An observer is never worth a pass.
      }
    }
  };
  return { onPass: each('onPass'), onFetch: each('onFetch'), onGatewayLoad: each('onGatewayLoad'), onBackup: each('onBackup') };
}
