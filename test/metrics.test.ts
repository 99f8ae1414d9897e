// FleetMetrics without a daemon: each instance has its own registry (two daemons in one process never collide), and
// per-project series are rendered from the rows handed over, at scrape time.
import { describe, expect, it } from 'vitest';
import { FleetMetrics } from '../daemon/metrics/metrics.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';
import { parseExposition } from './harness/prom.ts';

const row = (id: string, over: Partial<ProjectRecord>) => ({ id, hostname: `${id}.localhost`, status: 'running', conditions: [], appliedCommit: 'c', restarts: 0, secretsVersion: 0, ...over }) as ProjectRecord;

describe('FleetMetrics', () => {
  it('two instances in one process, each with its own series', async () => {
    const a = new FleetMetrics();
    const b = new FleetMetrics();
    a.onPass({ result: { commit: 'c', ok: true }, seconds: 0.2, locked: true, read: null, rows: [row('blog', {})], fleet: null });
    const ta = parseExposition(await a.render());
    const tb = parseExposition(await b.render());
    expect(ta.value('fleet_reconcile_passes_total', { result: 'ok' })).toBe(1);
    expect(tb.value('fleet_reconcile_passes_total', { result: 'ok' })).toBe(0);
    expect(tb.find('fleet_project_state')).toEqual([]);
  });

  it('a pass without the lock counts as waiting; rows follow the last pass that had them', async () => {
    const m = new FleetMetrics();
    m.onPass({ result: { commit: 'c', ok: true }, seconds: 0.1, locked: true, read: null, rows: [row('a', { status: 'failed', restarts: 4 }), row('b', {})], fleet: null });
    m.onPass({ result: { commit: null, ok: false }, seconds: 0.01, locked: false, read: null, rows: null, fleet: null });
    const t = parseExposition(await m.render());
    expect(t.value('fleet_reconcile_passes_total', { result: 'waiting' })).toBe(1);
    expect(t.value('fleet_project_state', { project: 'a', state: 'failed' })).toBe(1);
    expect(t.value('fleet_project_state', { project: 'a', state: 'running' })).toBe(0);
    expect(t.value('fleet_instance_restarts_total', { project: 'a' })).toBe(4);
    m.onPass({ result: { commit: 'c', ok: true }, seconds: 0.1, locked: true, read: null, rows: [row('b', {})], fleet: null });
    expect(parseExposition(await m.render()).find('fleet_project_state', { project: 'a' })).toEqual([]);
  });

  it('gateway loads count loads and failures, not unchanged configs', async () => {
    const m = new FleetMetrics();
    m.onGatewayLoad({ ok: true, changed: false });
    m.onGatewayLoad({ ok: true, changed: true });
    m.onGatewayLoad({ ok: false });
    const t = parseExposition(await m.render());
    expect(t.value('fleet_gateway_config_loads_total', { result: 'ok' })).toBe(1);
    expect(t.value('fleet_gateway_config_loads_total', { result: 'failed' })).toBe(1);
  });
});
