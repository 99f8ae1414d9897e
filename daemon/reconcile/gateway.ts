// After each pass: render the Caddy config from the registry and load it when it differs. A failure is recorded
// as the fleet's `gateway` state (ok: false) and retried next pass; Caddy keeps serving its last good config meanwhile.
//
// Blast radius: one project's row must not break the gateway for the others. A project whose part cannot be
// rendered, or whose part Caddy rejects, is left out of the config (its hosts get the uniform 404) and gets the
// condition Gateway=false (reason GatewayRejected) with one `gateway_rejected` event per distinct failure; the
// others are loaded. Which projects Caddy rejects is found with `caddy.check`, which never changes what Caddy serves.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson } from '../core/canonical.ts';
import { FleetError, describe } from '../core/errors.ts';
import { isCaddyRejection, type CaddyGateway } from '../gateway/caddy.ts';
import { knownRows } from '../gateway/hosts.ts';
import { renderCaddyConfig, renderGateway, type RenderOptions } from '../gateway/render.ts';
import { withCondition, type Registry } from '../registry/registry.ts';
import type { Condition, FleetConfig, RegistryRow } from '../core/types.ts';

export interface GatewaySync {
  caddy: CaddyGateway;
  /** Where Caddy asks whether a hostname may get an on-demand certificate. */
  permissionUrl?: string;
  /** Values that win over fleet.yaml (a local run's port, the tests' loopback ports). */
  override?: Partial<FleetConfig['gateway']>;
  /**
   * Mutable, kept between passes (created on the first): projects Caddy rejected, with a fingerprint of their
   * rendered part. Left out without asking Caddy again until that part changes (or the daemon restarts).
   */
  rejected?: Map<string, { fingerprint: string; message: string }>;
}

export interface GatewayStatus {
  ok: boolean;
  changed?: boolean;
  message: string;
  at: string;
  /** Projects left out of the loaded config (see their Gateway condition). */
  rejected?: string[];
}

export const REJECTED_REASON = 'GatewayRejected';
const MESSAGE_MAX = 1000;

export async function syncGateway(gs: GatewaySync, registry: Registry, rows: RegistryRow[], fleet: FleetConfig | null, log: Logger, opts: { verify?: boolean } = {}): Promise<GatewayStatus> {
  const at = new Date().toISOString();
  let status: GatewayStatus;
  let left: Map<string, string> | null = null;
  if (!fleet) {
    status = { ok: false, message: 'no valid fleet.yaml yet: gateway not configured', at };
  } else {
    try {
      // Rendering is part of the attempt: a config that cannot be rendered was not loaded, so the status is not ok.
      const loaded = await loadGateway(gs, rows, { ...fleet.gateway, ...gs.override }, log, opts.verify);
      left = loaded.left;
      if (loaded.changed) log.info({ projects: rows.length, rejected: [...left.keys()] }, 'gateway config loaded');
      const ids = [...left.keys()].sort();
      const what = loaded.changed ? 'loaded' : 'unchanged';
      status = ids.length === 0
        ? { ok: true, changed: loaded.changed, message: what, at }
        : { ok: true, changed: loaded.changed, message: `${what} without ${ids.join(', ')} (rejected: see their Gateway condition)`, at, rejected: ids };
    } catch (err) {
      log.warn({ err: { message: describe(err) } }, 'gateway not updated; retrying next pass');
      status = { ok: false, message: describe(err), at };
    }
  }
  // Project conditions only change after a load: when nothing was loaded, nobody's standing is known anew.
  if (left) await recordProjects(registry, rows, left);
  // A load is always recorded; otherwise only a status that differs (read only then: after a load, Caddy switching
  // to the new config shares the machine with whatever the daemon does next).
  const prev = status.changed ? null : await registry.getState<GatewayStatus>('gateway');
  if (status.changed || !prev || prev.ok !== status.ok || prev.message !== status.message) await registry.setState('gateway', status);
  return status;
}

/**
 * Load the config of every project Caddy takes; returns the ones left out, with why. Throws when nothing could be
 * loaded: a fleet-wide render error, an unreachable Caddy, or a config Caddy rejects even without any project.
 */
async function loadGateway(gs: GatewaySync, rows: RegistryRow[], gw: FleetConfig['gateway'], log: Logger, verify = false): Promise<{ changed: boolean; left: Map<string, string> }> {
  const opts: RenderOptions = { permissionUrl: gs.permissionUrl };
  const memo = (gs.rejected ??= new Map());
  // 1. Render each project's part first: one that cannot be rendered is left out, up front.
  const rendered = renderGateway(rows, gw, opts);
  const left = new Map(rendered.dropped.map((d) => [d.id, `not routed: its gateway config cannot be rendered: ${d.message}`]));
  // 2. Projects Caddy rejected before stay out while their part is unchanged: no new checks every pass.
  const renderedLeft = left.size;
  for (const row of knownRows(rows)) {
    const known = memo.get(row.id);
    if (known && !left.has(row.id) && known.fingerprint === fingerprint(row, gw, opts)) left.set(row.id, known.message);
  }
  for (const id of memo.keys()) if (!left.has(id)) memo.delete(id);
  const candidates = rows.filter((r) => !left.has(r.id));
  // 3. Load. Only a rejection (Caddy answered 4xx) is narrowed down to projects; anything else is the fleet's.
  try {
    const config = left.size === renderedLeft ? rendered.config : renderCaddyConfig(candidates, gw, opts);
    return { changed: (await gs.caddy.apply(config, { verify })).changed, left };
  } catch (err) {
    if (!isCaddyRejection(err)) throw err;
    log.warn({ err: { message: describe(err) } }, 'Caddy rejected the gateway config: finding the projects responsible');
  }
  const culprits = await findRejected(gs.caddy, candidates, (subset) => renderCaddyConfig(subset, gw, opts));
  for (const { row, message } of culprits) {
    const text = `not routed: Caddy rejected its gateway config: ${clean(message)}`;
    left.set(row.id, text);
    memo.set(row.id, { fingerprint: fingerprint(row, gw, opts), message: text });
  }
  // 4. Load the rest: the checks left Caddy serving what it served before, plus an unused check server.
  const rest = candidates.filter((r) => !left.has(r.id));
  return { changed: (await gs.caddy.apply(renderCaddyConfig(rest, gw, opts))).changed, left };
}

/**
 * The projects whose part Caddy rejects. Known good projects accumulate; a chunk Caddy rejects together with them
 * is halved until single projects remain, so k bad projects among n cost about 2·k·log2(n) checks, and a project
 * that only fails next to another one is still caught (the one checked later is left out).
 */
async function findRejected(
  caddy: CaddyGateway,
  candidates: RegistryRow[],
  render: (rows: RegistryRow[]) => object,
): Promise<{ row: RegistryRow; message: string }[]> {
  // Rows the gateway does not render cannot be at fault: they always come along.
  const rendered = new Set(knownRows(candidates).map((r) => r.id));
  const accepted = candidates.filter((r) => !rendered.has(r.id));
  // The fleet's own part: no project, and one placeholder that overrides nothing (fleet.yaml's edge policy).
  const none = await caddy.check(render([...accepted, FLEET_DEFAULTS]));
  if (!none.ok) {
    throw new FleetError('GATEWAY', `Caddy rejects the gateway config even without any project (fix fleet.yaml gateway): ${clean(none.message)}`);
  }
  const culprits: { row: RegistryRow; message: string }[] = [];
  const visit = async (chunk: RegistryRow[], knownBad: boolean): Promise<void> => {
    if (chunk.length === 0) return;
    if (!knownBad || chunk.length === 1) {
      const res = await caddy.check(render([...accepted, ...chunk]));
      if (res.ok) {
        accepted.push(...chunk);
        return;
      }
      if (chunk.length === 1) {
        // Caddy's words about this project alone when it fails alone: the same failure gives the same message
        // (and so no second event) whatever else the fleet holds.
        const alone = await caddy.check(render([...accepted.filter((r) => !rendered.has(r.id)), chunk[0]]));
        culprits.push({ row: chunk[0], message: alone.ok ? res.message : alone.message });
        return;
      }
    }
    const half = Math.ceil(chunk.length / 2);
    await visit(chunk.slice(0, half), false);
    await visit(chunk.slice(half), false);
  };
  // The whole set was just rejected by the load: start by halving it.
  await visit(candidates.filter((r) => rendered.has(r.id)), true);
  if (culprits.length === 0) {
    // Every project passes the check (which covers the HTTP servers only): the fault is not a project's.
    throw new FleetError('GATEWAY', 'Caddy rejected the gateway config, but no project on its own: see the Caddy log');
  }
  return culprits;
}

/** A project with no edge overrides, never loaded: it renders the fleet-wide policy on its own. */
const FLEET_DEFAULTS: RegistryRow = {
  id: 'fleet_defaults_check', displayName: 'fleet defaults', hostname: 'fleet-defaults-check.invalid', aliases: [],
  status: 'running', desiredState: 'running', upstream: '127.0.0.1:9', schemaVersion: null, schemaDigest: null,
  observedCommit: null, appliedCommit: null, lastHealth: null, conditions: [], secretRefs: {}, port: null, updatedAt: '',
  manifest: {
    id: 'fleet_defaults_check', displayName: 'fleet defaults', hostname: 'fleet-defaults-check.invalid', aliases: [],
    state: 'running', schema: 'schema.ts', runtime: {}, env: {}, secrets: {}, resources: {},
  },
};

/** Conditions and events: once per distinct failure, cleared once the project is loaded again. */
async function recordProjects(registry: Registry, rows: RegistryRow[], left: Map<string, string>): Promise<void> {
  for (const row of rows) {
    const prev = row.conditions.find((c) => c.type === 'Gateway');
    const message = left.get(row.id);
    if (message !== undefined) {
      const next: Omit<Condition, 'at'> = { type: 'Gateway', status: false, reason: REJECTED_REASON, message };
      if (prev && prev.status === next.status && prev.reason === next.reason && prev.message === next.message) continue;
      await registry.updateWithEvents(row.id, { conditions: withCondition(row.conditions, next) }, [
        { action: 'gateway_rejected', actor: 'fleet-daemon', commit: row.appliedCommit, detail: { message } },
      ]);
    } else if (prev?.reason === REJECTED_REASON) {
      await registry.update(row.id, { conditions: row.conditions.filter((c) => c.type !== 'Gateway') });
    }
  }
}

/** What Caddy would be given for this project alone: a rejection is remembered against it. */
function fingerprint(row: RegistryRow, gw: FleetConfig['gateway'], opts: RenderOptions): string {
  return createHash('sha256').update(canonicalJson(renderCaddyConfig([row], gw, opts))).digest('hex');
}

/** Caddy's message, bounded, with any URL credentials masked: it goes into conditions and events. */
function clean(message: string): string {
  const masked = message.replace(/(\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1***@');
  return masked.length > MESSAGE_MAX ? `${masked.slice(0, MESSAGE_MAX)}…` : masked;
}
