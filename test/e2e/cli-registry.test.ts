// `fleet plan --against-registry`: HEAD against what the daemon deployed, read from the real registry.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const run = promisify(execFile);
const FLEET = resolve(import.meta.dirname, '../../scripts/fleet.js');
let f: TestFleet;

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog');
  const c1 = f.repo.commit('add blog');
  await f.boot();
  await f.until('blog', (p) => p.appliedCommit === c1 && p.status === 'running');
  await f.stopDaemon();
});
afterAll(async () => f?.destroy());

it('plans HEAD against the deployed fleet, not against another commit', async () => {
  writeProject(f.repo, 'blog', { manifest: { env: { FEATURE_X: 'on' } } });
  writeProject(f.repo, 'shop');
  f.repo.commit('blog env, add shop');
  const { stdout } = await run('node', [FLEET, 'plan', '--against-registry', '--registry', f.registryUrl, '--repo', f.repo.dir]);
  const lines = stdout.trim().split('\n');
  expect(lines.some((l) => /^~ blog\b.*env/.test(l))).toBe(true);
  expect(lines.some((l) => /^\+ shop\b/.test(l))).toBe(true);
});

it('says clearly when the registry is unreachable, without a stack trace', async () => {
  const bad = f.registryUrl.replace(/:\d+\//, ':1/');
  const err = await run('node', [FLEET, 'plan', '--against-registry', '--registry', bad, '--repo', f.repo.dir]).catch((e) => e);
  expect(err.code).toBe(1);
  expect(err.stderr).toMatch(/registry at .* is unreachable/);
  expect(err.stderr).not.toMatch(/\n\s+at /);
  expect(err.stderr).not.toContain(':postgres@');
});

it('fleet status prints each project with state, health, applied commit, drift and last error', async () => {
  const { stdout } = await run('node', [FLEET, 'status', '--registry', f.registryUrl, '--repo', f.repo.dir]);
  const [header, ...rows] = stdout.trim().split('\n');
  expect(header).toMatch(/^ID\s+STATE\s+HEALTH\s+APPLIED\s+DRIFT\s+SUSPENDED\s+LAST ERROR$/);
  const blog = rows.find((r) => r.startsWith('blog'))!;
  // The daemon stopped after applying the first commit: blog ran healthy then, and nothing newer was observed.
  expect(blog).toMatch(/^blog\s+running\s+healthy for \d+[smhd]\s+[0-9a-f]{7}\s+no\s+-(\s|$)/);
  const json = JSON.parse((await run('node', [FLEET, 'status', '--registry', f.registryUrl, '--format', 'json', '--repo', f.repo.dir])).stdout);
  expect(json.map((p: { id: string }) => p.id)).toEqual(['blog']);
  expect(JSON.stringify(json)).not.toMatch(/postgres:\/\/[^"]*:[^"*]+@/);
});
