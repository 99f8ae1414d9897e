// After each pass: render the Caddy config from the registry and load it when it differs. A failure is recorded
// as the fleet's Gateway condition and retried next pass; Caddy keeps serving its last good config meanwhile.
import type { Logger } from 'pino';
import { describe } from './errors.ts';
import type { CaddyGateway } from './gateway/caddy.ts';
import { renderCaddyConfig } from './gateway/render.ts';
import type { Registry } from './registry/registry.ts';
import type { FleetConfig, RegistryRow } from './types.ts';

export interface GatewaySync {
  caddy: CaddyGateway;
  /** Where Caddy asks whether a hostname may get an on-demand certificate. */
  permissionUrl?: string;
  /** Values that win over fleet.yaml (a local run's port, the tests' loopback ports). */
  override?: Partial<FleetConfig['gateway']>;
}

export interface GatewayStatus {
  ok: boolean;
  changed?: boolean;
  message: string;
  at: string;
}

export async function syncGateway(gs: GatewaySync, registry: Registry, rows: RegistryRow[], fleet: FleetConfig | null, log: Logger): Promise<GatewayStatus> {
  const at = new Date().toISOString();
  let status: GatewayStatus;
  if (!fleet) {
    status = { ok: false, message: 'no valid fleet.yaml yet: gateway not configured', at };
  } else {
    const config = renderCaddyConfig(rows, { ...fleet.gateway, ...gs.override }, { permissionUrl: gs.permissionUrl });
    try {
      const { changed } = await gs.caddy.apply(config);
      if (changed) log.info({ projects: rows.length }, 'gateway config loaded');
      status = { ok: true, changed, message: changed ? 'loaded' : 'unchanged', at };
    } catch (err) {
      log.warn({ err: { message: describe(err) } }, 'gateway not updated; retrying next pass');
      status = { ok: false, message: describe(err), at };
    }
  }
  const prev = await registry.getState<GatewayStatus>('gateway');
  if (!prev || prev.ok !== status.ok || prev.message !== status.message || status.changed) await registry.setState('gateway', status);
  return status;
}
