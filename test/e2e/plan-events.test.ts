// Plan = events: over generated git histories, what `fleet plan --against-registry` prints before a pass is
// exactly what that daemon pass records (state-changing events) and starts (an in-memory test driver). Real git,
// real Postgres, the real daemon run one pass at a time.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { registryPlan } from '../../scripts/commands/plan.ts';
import type { Action, Driver, Instance } from '../../daemon/core/types.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const FLEET = fileURLToPath(new URL('../../scripts/fleet.js', import.meta.url));
/** The events that change a project's state; `invalid`, `error` and `database_created` are status, not lifecycle. */
const LIFECYCLE = new Set(['create', 'provision', 'start', 'restart', 'update', 'schema_update', 'stop', 'delete']);

/** An always-healthy in-memory driver: every start is counted. */
function testDriver() {
  const instances = new Map<string, Instance>();
  const starts: string[] = [];
  let n = 0;
  const driver: Driver = {
    name: 'process',
    async list() { return [...instances.values()]; },
    async start(spec) {
      const running = instances.get(spec.id);
      if (running?.specHash === spec.specHash) return running;
      starts.push(spec.id);
      const inst = { id: spec.id, running: true, upstream: `127.0.0.1:${spec.port}`, specHash: spec.specHash, commit: spec.commit, ref: `ref-${n++}` };
      instances.set(spec.id, inst);
      return inst;
    },
    async stop(id) { instances.delete(id); },
    async retire() {},
  };
  return { driver, starts };
}

type Model = Map<string, { manifest: Record<string, unknown>; schema: string }>;
type StepKind = 'add' | 'env' | 'runtime' | 'resources' | 'schema' | 'hostname' | 'stop' | 'start' | 'remove' | 'revert'
  | 'delete' | 'deleteDrop' | 'invalid' | 'conflict';
const KINDS: StepKind[] = ['add', 'env', 'runtime', 'resources', 'schema', 'hostname', 'stop', 'start', 'remove', 'revert', 'delete', 'deleteDrop', 'invalid', 'conflict'];
const step = fc.record({ kind: fc.constantFrom(...KINDS), who: fc.nat(2), other: fc.nat(2), n: fc.nat(9) });

/** The next model: one step of a history, on copies (a revert goes back to the model before the last commit). */
function next(models: Model[], ids: string[], s: { kind: StepKind; who: number; other: number; n: number }): Model {
  const cur = models[models.length - 1];
  if (s.kind === 'revert') return models.length > 1 ? models[models.length - 2] : cur;
  const m: Model = new Map([...cur].map(([k, v]) => [k, { manifest: { ...v.manifest }, schema: v.schema }]));
  const id = ids[s.who];
  const p = m.get(id);
  if (!p || s.kind === 'add') {
    m.set(id, { manifest: {}, schema: `export interface Widget { id: string; n${s.n}: string; }\n` });
    return m;
  }
  const man = p.manifest;
  delete man.colour;
  switch (s.kind) {
    case 'env': man.env = { GREETING: `hello ${s.n}` }; break;
    case 'runtime': man.runtime = { version: `1.${s.n}.0` }; break;
    case 'resources': man.resources = { memory: `${64 + s.n}m` }; break;
    case 'schema': p.schema = `export interface Widget { id: string; v${s.n}: string; }\n`; break;
    case 'hostname': man.hostname = `${id}-${s.n}.localhost`; break;
    case 'stop': man.state = 'stopped'; delete man.deletion; break;
    case 'start': man.state = 'running'; delete man.deletion; break;
    case 'remove': m.delete(id); break;
    case 'delete': case 'deleteDrop':
      man.state = 'deleted';
      man.deletion = { confirm: id, ...(s.kind === 'deleteDrop' ? { dropDatabase: true } : {}) };
      break;
    case 'invalid': man.colour = 'blue'; break;
    case 'conflict': {
      const o = m.get(ids[s.other]);
      if (o && ids[s.other] !== id) man.hostname = o.manifest.hostname ?? `${ids[s.other]}.localhost`;
      break;
    }
  }
  return m;
}

const key = (id: string, kind: string) => `${id} ${kind}`;

let f: TestFleet;
let t: ReturnType<typeof testDriver>;
let run = 0;

beforeAll(async () => {
  f = await createFleet();
  t = testDriver();
  writeProject(f.repo, 'base');
  f.repo.commit('base');
  // One pass at a time: the poller's interval is far away, and the first automatic pass is awaited.
  await f.boot({ driver: t.driver, probe: async () => ({ ok: true, status: 200, at: new Date().toISOString() }), intervalMs: 3_600_000 });
  await f.until('base', (p) => p.status === 'running');
  await vi.waitFor(() => { if (!f.running!.daemon.last.commit) throw new Error('first pass not done'); }, { timeout: 20_000 });
}, 60_000);
afterAll(async () => {
  await f?.destroy();
});

it('each pass records exactly the planned lifecycle events, starts only what the plan lists, and writes each row once', async () => {
  const daemon = f.running!.daemon;
  const registry = daemon.registry;
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 6 }), async (steps) => {
    run += 1;
    const ids = ['a', 'b', 'c'].map((x) => `h${run}${x}`);
    const models: Model[] = [new Map()];
    for (const [i, s] of steps.entries()) {
      const model = next(models, ids, s);
      let reverted = false;
      if (s.kind === 'revert' && models.length > 1) {
        try {
          f.repo.revert(f.repo.head());
          reverted = true;
        } catch {
          // An empty commit cannot be reverted: writing the earlier files is the same tree.
          try { f.repo.git('revert', '--abort'); } catch { /* nothing to abort */ }
        }
      }
      if (!reverted) {
        for (const id of ids) {
          const p = model.get(id);
          if (p) writeProject(f.repo, id, { manifest: p.manifest, schema: p.schema });
          else f.repo.remove(`projects/${id}`);
        }
        f.repo.commit(`${s.kind} ${ids[s.who]}`, { allowEmpty: true });
      }
      models.push(model);
      // The preview, by the CLI's own function; the real CLI once per history proves it prints the same.
      const preview = await registryPlan(f.repo.dir, registry, 'HEAD', 'json');
      if (i === 0) {
        const out = await new Promise<string>((resolve, reject) => execFile('node', [FLEET, 'plan', '--against-registry', '--format', 'json', '--registry', f.registryUrl, '--repo', f.repo.dir],
          { env: { ...process.env, FLEET_DEBUG: '' } }, (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout))));
        expect(JSON.parse(out)).toEqual(preview.actions);
      }
      const lastEvent = (await registry.events(undefined, 1))[0]?.id ?? 0;
      const startsBefore = t.starts.length;
      // Status is committed once per project per pass (a new project's row is inserted first).
      const writes = vi.spyOn(registry, 'updateWithEvents');
      const result = await daemon.pass();
      const perProject = writes.mock.calls.map(([id]) => id);
      writes.mockRestore();
      expect(perProject.length, `one write per project: ${perProject.join(', ')}`).toBe(new Set(perProject).size);
      expect(result, `${s.kind}: ${result.error}`).toMatchObject({ ok: true });
      const recorded = (await registry.events(undefined, 1000)).filter((e) => e.id > lastEvent && LIFECYCLE.has(e.action));
      const planned = preview.actions.filter((a: Action) => LIFECYCLE.has(a.kind));
      expect(recorded.map((e) => key(e.projectId, e.action)).sort(), `step ${i} ${s.kind} ${ids[s.who]}`)
        .toEqual(planned.map((a) => key(a.id, a.kind)).sort());
      // No instance start the plan did not list; an invalid or conflicting project never restarts.
      const started = t.starts.slice(startsBefore);
      const mayStart = planned.filter((a) => a.kind === 'create' || a.kind === 'start' || a.kind === 'restart').map((a) => a.id);
      for (const id of started) expect(mayStart).toContain(id);
      const head = preview.actions.filter((a) => a.kind === 'noop' && a.reason.startsWith('manifest invalid')).map((a) => a.id);
      for (const id of head) {
        expect(started).not.toContain(id);
        expect(recorded.filter((e) => e.projectId === id && e.action === 'restart')).toEqual([]);
      }
    }
  }), { numRuns: 15, seed: 9, endOnFailure: true });
}, 240_000);
