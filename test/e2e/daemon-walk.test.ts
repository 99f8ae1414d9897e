// The daemon end to end with real parts: git, Postgres, the daemon and stand-in instance processes.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { createHash } from 'node:crypto';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const sha256 = (t: string) => createHash('sha256').update(t).digest('hex');
const BLOG_V1 = 'export interface Post { id: string; title: string; }\n';
const BLOG_V2 = 'export interface Post { id: string; title: string; }\nexport interface Comment { id: string; body: string; }\n';

describe('daemon walk: add, schema change, stop, remove, revert', () => {
  let f: TestFleet;
  const pid = async (id: string) => (await f.running!.driver.list()).find((i) => i.id === id && i.running)?.ref;

  beforeAll(async () => {
    f = await createFleet();
  });
  afterAll(async () => {
    await f?.destroy();
  });

  it('brings two new projects up healthy, each with its own database and role', async () => {
    writeProject(f.repo, 'blog', { schema: BLOG_V1 });
    writeProject(f.repo, 'shop');
    const c1 = f.repo.commit('add blog and shop', { author: 'Ada <ada@example.com>' });
    const t0 = Date.now();
    await f.boot();
    const blog = await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
    await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1);
    console.log(`commit-to-healthy (cold start, 2 projects): ${Date.now() - t0} ms`);
    expect(blog.schemaVersion).toBe(c1);
    expect(blog.lastHealth?.ok).toBe(true);
    expect(blog.databaseUrlRef).toBe('/atomo/blog/DATABASE_URL');
    const meta = await f.get('blog', '/meta/schema');
    expect(meta.body.digest).toBe(sha256(BLOG_V1));
    const events = await f.events('blog');
    // A new project's first start is part of its create (one planned action, one event).
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['create', 'database_created']));
    expect(events.map((e) => e.action)).not.toContain('start');
    expect(events.find((e) => e.action === 'create')).toMatchObject({ actor: 'Ada <ada@example.com>', commit: c1 });
  });

  it('a quiet pass rewrites no manifest and records no event', async () => {
    const registry = f.running!.daemon.registry;
    const writes = vi.spyOn(registry, 'updateWithEvents');
    const eventsBefore = (await registry.events()).length;
    const p0 = f.running!.daemon.passes;
    await expect.poll(() => f.running!.daemon.passes - p0, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    // Nothing changed: no row is written (health is probed apart from the pass, and recorded only when it changes).
    expect(writes.mock.calls).toEqual([]);
    writes.mockRestore();
    expect((await registry.events()).length).toBe(eventsBefore);
  });

  it('refuses a connection from one project role to another project database', async () => {
    const blogUrl = await f.running!.secrets.get('/atomo/blog/DATABASE_URL');
    const own = new pg.Client(blogUrl);
    await own.connect();
    await own.end();
    const other = new URL(blogUrl);
    other.pathname = '/atomo_shop';
    const c = new pg.Client(other.toString());
    c.on('error', () => {});
    await expect(c.connect()).rejects.toThrow(/permission denied for database "atomo_shop"/);
  });

  it('restarts only the project whose schema changed, once, and follows schema_version', async () => {
    const blogPid = await pid('blog');
    const shopPid = await pid('shop');
    const shopBefore = (await f.project('shop'))!;
    f.repo.write('projects/blog/schema.ts', BLOG_V2);
    const c2 = f.repo.commit('blog: comments');
    const t0 = Date.now();
    const blog = await f.until('blog', (p) => p.schemaVersion === c2 && p.appliedCommit === c2 && p.status === 'running');
    console.log(`commit-to-healthy (schema change): ${Date.now() - t0} ms`);
    expect(blog.schemaDigest).toBe(sha256(BLOG_V2));
    expect((await f.get('blog', '/meta/schema')).body.models).toEqual(['Post', 'Comment']);
    expect(await pid('blog')).not.toBe(blogPid);
    expect(await pid('shop')).toBe(shopPid);
    // A commit that does not touch shop's folder leaves its row as it was: applied where it last changed.
    const shop = (await f.project('shop'))!;
    expect(shop.schemaVersion).not.toBe(c2);
    expect(shop.version).toBe(shopBefore.version);
    expect(shop.appliedCommit).toBe(shopBefore.appliedCommit);
    const restarts = (await f.events('blog')).filter((e) => e.commit === c2 && ['start', 'restart'].includes(e.action));
    expect(restarts).toHaveLength(1);
    expect((await f.events('blog')).filter((e) => e.action === 'schema_update')).toHaveLength(1);
  });

  it('stops a project on state: stopped and keeps its database', async () => {
    writeProject(f.repo, 'shop', { manifest: { state: 'stopped' } });
    const c3 = f.repo.commit('stop shop');
    const shop = await f.until('shop', (p) => p.status === 'stopped' && p.appliedCommit === c3);
    expect(shop.upstream).toBeNull();
    expect(await pid('shop')).toBeUndefined();
    const admin = new pg.Client(f.pg.url);
    await admin.connect();
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'atomo_shop'");
    await admin.end();
    expect(rowCount).toBe(1);
  });

  it('stops a project whose folder is removed, and a revert brings it back with its data', async () => {
    const blogUrl = await f.running!.secrets.get('/atomo/blog/DATABASE_URL');
    const c = new pg.Client(blogUrl);
    await c.connect();
    await c.query("INSERT INTO posts (id, data) VALUES ('p1', '{}')");
    await c.end();
    f.repo.remove('projects/blog');
    const c4 = f.repo.commit('remove blog');
    await f.until('blog', (p) => p.status === 'stopped' && !p.present && p.observedCommit === c4);
    expect(await pid('blog')).toBeUndefined();
    const c5 = f.repo.revert(c4);
    await f.until('blog', (p) => p.status === 'running' && p.present && p.appliedCommit === c5);
    const back = new pg.Client(blogUrl);
    await back.connect();
    const { rows } = await back.query('SELECT id FROM posts');
    await back.end();
    expect(rows).toEqual([{ id: 'p1' }]);
  });

  it('reverting the schema change returns the old schema content', async () => {
    const log = f.repo.git('log', '--format=%H %s').split('\n');
    const schemaCommit = log.find((l) => l.endsWith('blog: comments'))!.split(' ')[0];
    const c6 = f.repo.revert(schemaCommit);
    const blog = await f.until('blog', (p) => p.schemaVersion === c6 && p.appliedCommit === c6);
    expect(blog.schemaDigest).toBe(sha256(BLOG_V1));
    expect((await f.get('blog', '/meta/schema')).body.digest).toBe(sha256(BLOG_V1));
  });

  it('never writes a secret value into the registry or the logs', async () => {
    const secrets = [
      await f.running!.secrets.get('/atomo/blog/DATABASE_URL'),
      await f.running!.secrets.get('/atomo/blog/JWT_SECRET'),
    ];
    const password = decodeURIComponent(new URL(secrets[0]).password);
    const admin = new pg.Client(f.registryUrl);
    await admin.connect();
    const dump = JSON.stringify((await admin.query('SELECT * FROM projects')).rows) + JSON.stringify((await admin.query('SELECT * FROM project_events')).rows);
    await admin.end();
    const logs = f.logs.join('\n');
    for (const s of [...secrets, password]) {
      expect(dump).not.toContain(s);
      expect(logs).not.toContain(s);
    }
  });
});
