// Files are private: the state dir is never listable or writable by other users, instance logs and pid files
// are the daemon user's alone. The harness hands the daemon a 0755 state dir, as an earlier version left it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

let f: TestFleet;
const mode = (path: string) => statSync(path).mode & 0o777;

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog');
  const c = f.repo.commit('add blog');
  await f.boot();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c);
});
afterAll(async () => {
  await f?.destroy();
});

it('the state dir grants nothing to group or others but traverse (an embedded Postgres run as user postgres needs it)', () => {
  expect(mode(f.stateDir) & 0o066).toBe(0);
  expect(mode(join(f.stateDir, 'instances')) & 0o077).toBe(0);
  expect(mode(join(f.stateDir, 'projects')) & 0o077).toBe(0);
});

it('instance logs and pid files are 0600, in 0700 folders', () => {
  expect(mode(join(f.stateDir, 'projects', 'blog', 'logs', 'instance.log'))).toBe(0o600);
  expect(mode(join(f.stateDir, 'projects', 'blog', 'logs'))).toBe(0o700);
  expect(mode(join(f.stateDir, 'instances', 'blog.json'))).toBe(0o600);
});
