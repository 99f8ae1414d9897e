// The edge policy that keeps instances' own /metrics and /meta private: on by default, one fleet-wide switch to
// expose them, which a project's own `edge:` cannot set. Through the real Caddy: test/gateway-caddy.test.ts.
import { describe, expect, it } from 'vitest';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { PRIVATE_PATHS, renderCaddyConfig } from '../daemon/gateway/render.ts';
import { checkProject } from '../daemon/manifest/project.ts';
import type { FleetConfig } from '../daemon/core/types.ts';

const gw: FleetConfig['gateway'] = { admin: '127.0.0.1:2019', listen: ':8080', tls: 'off', policies: {} };
const privateRoute = (cfg: any) => cfg.apps.http.servers.atomo.routes.find((r: any) => r.match?.[0]?.path);

describe("instances' /metrics and /meta at the edge", () => {
  it('are answered by the gateway (uniform 404) unless fleet.yaml exposes them', () => {
    expect(privateRoute(renderCaddyConfig([], gw))).toMatchObject({ match: [{ path: PRIVATE_PATHS }], handle: [{ status_code: 404 }], terminal: true });
    expect(privateRoute(renderCaddyConfig([], { ...gw, policies: { exposeMetricsAndMeta: false } }))).toBeDefined();
    expect(privateRoute(renderCaddyConfig([], { ...gw, policies: { exposeMetricsAndMeta: true } }))).toBeUndefined();
  });

  it.each<[string, object | string]>([
    ['gateway: { policies: { exposeMetricsAndMeta: true, maxBodyBytes: 10 } }\n', { exposeMetricsAndMeta: true, maxBodyBytes: 10 }],
    ['gateway: { policies: { exposeMetricsAndMeta: yes } }\n', '/gateway/policies/exposeMetricsAndMeta: must be boolean'],
    ['gateway: { policies: { maxBodyBytes: 0 } }\n', '/gateway/policies/maxBodyBytes: must be >= 1'],
    ['gateway: { policies: { nope: 1 } }\n', '/gateway/policies/nope: unknown key'],
  ])('fleet.yaml %j', (yaml, want) => {
    const r = checkFleetConfig(yaml);
    if (typeof want === 'string') expect(r.issues.map((i) => `${i.path}: ${i.message}`).join('\n')).toContain(want);
    else expect(r.config!.gateway.policies).toEqual(want);
  });

  it("a project's edge: cannot expose its own", async () => {
    const yaml = 'id: acme\ndisplayName: Acme\nhostname: acme.localhost\nstate: running\nedge: { exposeMetricsAndMeta: true }\n';
    const files: Record<string, string> = { 'project.yaml': yaml, 'schema.ts': 'export interface A { id: string }\n' };
    const check = await checkProject('acme', { readFile: async (rel: string) => files[rel] ?? null });
    expect(JSON.stringify(check)).toMatch(/\/edge\/exposeMetricsAndMeta/);
  });
});
