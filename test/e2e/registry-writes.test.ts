// A project's row and its events are written by one statement (Registry.updateWithEvents): both or neither, the
// events in the order given, and the cached row is the written one. Real Postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../daemon/log.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import type { Manifest } from '../../daemon/core/types.ts';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';

const manifest: Manifest = { id: 'blog', displayName: 'Blog', hostname: 'blog.localhost', aliases: [], state: 'running', schema: 'schema.ts', runtime: {}, env: {}, secrets: {}, resources: {} };

describe('Registry.updateWithEvents', () => {
  let pg: TestPostgres;
  let registry: Registry;
  beforeAll(async () => {
    pg = await startPostgres();
    registry = new Registry(pg.url, createLogger({ level: 'silent' }));
    await registry.migrate();
    await registry.insert({
      id: 'blog', manifest, displayName: 'Blog', hostname: 'blog.localhost', aliases: [], databaseUrlRef: '/atomo/blog/DATABASE_URL',
      databaseName: 'atomo_blog', roleName: 'atomo_blog', status: 'provisioning', secretRefs: {}, env: {},
      schemaRef: { type: 'git', repo: 'file:///fleet', path: 'projects/blog/schema.ts', ref: 'c0' },
    });
  }, 60_000);
  afterAll(async () => {
    await registry?.close();
    await pg?.stop();
  });

  it('writes the row and every event, in order, at once', async () => {
    await registry.updateWithEvents('blog', { status: 'running', aliases: ['www.blog.localhost'], appliedCommit: 'c1' }, [
      { action: 'update', actor: 'ada', commit: 'c1', detail: { n: 1 } },
      { action: 'restart', actor: 'ada', commit: 'c1', detail: { n: 2, quote: "it's \"x\"" } },
      { action: 'error', actor: null, commit: null },
    ]);
    const row = await registry.get('blog');
    expect(row).toMatchObject({ status: 'running', aliases: ['www.blog.localhost'], appliedCommit: 'c1' });
    const events = (await registry.events('blog')).slice(-3);
    expect(events.map((e) => [e.action, e.actor, e.commit, e.detail])).toEqual([
      ['update', 'ada', 'c1', { n: 1 }], ['restart', 'ada', 'c1', { n: 2, quote: "it's \"x\"" }], ['error', null, null, null],
    ]);
    expect(events[0].id).toBeLessThan(events[1].id);
    expect(events[1].id).toBeLessThan(events[2].id);
  });

  it('events alone, and a row alone', async () => {
    await registry.updateWithEvents('blog', {}, [{ action: 'note', actor: 'x' }]);
    expect((await registry.events('blog')).at(-1)).toMatchObject({ action: 'note', actor: 'x' });
    await registry.updateWithEvents('blog', { lastError: 'boom' }, []);
    expect((await registry.get('blog'))!.lastError).toBe('boom');
  });

  it('neither the row nor any event when one part fails', async () => {
    const before = (await registry.events('blog')).length;
    // An event whose actor is not text-compatible fails its INSERT: the UPDATE beside it must not land.
    await expect(registry.updateWithEvents('blog', { lastError: 'half' }, [
      { action: 'update', actor: 'ada' }, { action: 'x'.repeat(10), actor: 'ada', detail: { bad: '\u0000' } },
    ])).rejects.toThrow();
    expect((await registry.get('blog'))!.lastError).toBe('boom');
    expect(await registry.events('blog')).toHaveLength(before);
  });
});
