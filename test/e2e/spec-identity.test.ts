// Stable spec identity: a project's instance restarts only when what it runs changes. The spec hash is computed
// from a canonical form, so a manifest read back from jsonb (keys reordered), an invalid commit that keeps the last
// applied manifest, a name conflict and the fix that follows never restart it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import { condition } from '../harness/instances.ts';

let f: TestFleet;
// Key orders YAML keeps and jsonb changes (jsonb sorts shorter keys first): version before image, memory before cpus.
const MANIFEST = { runtime: { version: '0.9.0', image: 'ghcr.io/atomo-cc/atomo-server:0.9.0' }, resources: { memory: '256m', cpus: 0.5 } };

const pidOf = async (id: string) => (await f.running!.driver.list()).find((i) => i.id === id && i.running)?.ref;
const starts = async (id: string) => (await f.running!.daemon.registry.events(id)).filter((e) => e.action === 'start' || e.action === 'restart').length;
async function morePasses(n: number): Promise<void> {
  const start = f.running!.daemon.passes;
  await expect.poll(() => f.running!.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + n);
}

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog', { manifest: MANIFEST });
  const c = f.repo.commit('blog');
  await f.boot();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c);
});
afterAll(async () => f?.destroy());

it('an invalid commit and its fix never restart the project', async () => {
  const pid = await pidOf('blog');
  const before = await starts('blog');
  writeProject(f.repo, 'blog', { manifest: { ...MANIFEST, colour: 'blue' } });
  const bad = f.repo.commit('blog: unknown key');
  await f.until('blog', (p) => p.observedCommit === bad && condition(p, 'Invalid')?.status === true);
  await morePasses(3);
  expect(await pidOf('blog')).toBe(pid);
  writeProject(f.repo, 'blog', { manifest: MANIFEST });
  const fixed = f.repo.commit('blog: fixed');
  await f.until('blog', (p) => p.appliedCommit === fixed && condition(p, 'Invalid')?.status !== true);
  await morePasses(3);
  expect(await pidOf('blog')).toBe(pid);
  expect(await starts('blog')).toBe(before);
});

it('a name conflict with a new folder leaves the running project alone', async () => {
  const pid = await pidOf('blog');
  const before = await starts('blog');
  writeProject(f.repo, 'rival', { manifest: { hostname: 'blog.localhost' } });
  const c = f.repo.commit('rival claims blog.localhost');
  await f.until('blog', (p) => p.observedCommit === c && condition(p, 'Invalid')?.status === true);
  await morePasses(3);
  expect(await pidOf('blog')).toBe(pid);
  f.repo.remove('projects/rival');
  const gone = f.repo.commit('rival removed');
  await f.until('blog', (p) => p.appliedCommit === gone && condition(p, 'Invalid')?.status !== true);
  await morePasses(3);
  expect(await pidOf('blog')).toBe(pid);
  expect(await starts('blog')).toBe(before);
});
