// The daemon's observers, made once per daemon: its Prometheus metrics and its notifier, handed to the loop as
// one FleetObserver, and attached to the registry (where both keep what must outlive a restart) once it exists.
import type { Logger } from 'pino';
import type { SecretStore } from '../core/types.ts';
import { FleetMetrics, type StateStore } from '../metrics/metrics.ts';
import { Notifier } from './notifier.ts';
import { observers, type FleetObserver } from './observer.ts';

export interface FleetObservers {
  metrics: FleetMetrics;
  notifier: Notifier;
  observer: FleetObserver;
  attach(store: StateStore): void;
  close(): void;
}

export function createFleetObservers(o: { log: Logger; secrets: Pick<SecretStore, 'get'>; repoUrl: string; retry?: { baseMs: number; capMs: number } }): FleetObservers {
  const metrics = new FleetMetrics();
  const notifier = new Notifier({ log: o.log.child({ component: 'notify' }), secrets: o.secrets, repoUrl: o.repoUrl, metrics, retry: o.retry && { baseMs: o.retry.baseMs, capMs: o.retry.capMs } });
  return {
    metrics, notifier,
    observer: observers(metrics, notifier),
    attach(store) {
      metrics.attach(store);
      notifier.attach(store);
    },
    close: () => notifier.close(),
  };
}
