// Where a project's database lives, as `fleet status` and the dashboard's project page show it: nothing for the
// default server with no kept copy (every fleet before servers reads as before), else the server and any old copy.
import { describe, expect, it } from 'vitest';
import { databaseText } from '../daemon/dashboard/view.ts';
import { renderProjectPage, type DashboardProject } from '../daemon/dashboard/render.ts';
import { statusHeader, statusLine } from '../scripts/commands/status.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';

const rec = (p: Partial<ProjectRecord>) => ({
  id: 'blog', displayName: 'Blog', hostname: 'blog.localhost', aliases: [], status: 'running', desiredState: 'running', present: true,
  lastHealth: null, conditions: [], appliedCommit: 'a'.repeat(40), observedCommit: 'a'.repeat(40), lastError: null,
  updatedAt: '2026-01-01T00:00:00.000Z', databaseServer: 'main', oldDatabaseServer: null, ...p,
}) as unknown as ProjectRecord;

describe('where the database lives', () => {
  it.each([
    ['main, no old copy: nothing to say', {}, ''],
    ['a row from before servers', { databaseServer: undefined, oldDatabaseServer: undefined }, ''],
    ['moved to hot', { databaseServer: 'hot' }, 'hot'],
    ['moved to hot, the copy on main kept', { databaseServer: 'hot', oldDatabaseServer: 'main' }, 'hot (old copy kept on main)'],
    ['moved back to main, the copy on hot kept', { databaseServer: 'main', oldDatabaseServer: 'hot' }, 'main (old copy kept on hot)'],
  ])('%s', (_name, p, text) => {
    expect(databaseText(rec(p as Partial<ProjectRecord>))).toBe(text);
  });

  it('fleet status: a DATABASE column only when some project is not plainly on main', () => {
    const plain = [rec({}), rec({ id: 'shop' })];
    expect(statusHeader(plain)).toEqual(['ID', 'STATE', 'HEALTH', 'APPLIED', 'DRIFT', 'SUSPENDED', 'LAST ERROR']);
    expect(statusLine(plain[0], new Date(), plain)).toHaveLength(7);
    const moved = [rec({}), rec({ id: 'shop', databaseServer: 'hot', oldDatabaseServer: 'main', lastError: 'boom' })];
    expect(statusHeader(moved)).toEqual(['ID', 'STATE', 'HEALTH', 'APPLIED', 'DRIFT', 'SUSPENDED', 'DATABASE', 'LAST ERROR']);
    expect(statusLine(moved[0], new Date(), moved).slice(6)).toEqual(['main', '']);
    expect(statusLine(moved[1], new Date(), moved).slice(6)).toEqual(['hot (old copy kept on main)', 'boom']);
  });

  it('the dashboard\'s project page names the server and the kept copy, and says nothing for plain main', () => {
    const page = (p: Partial<ProjectRecord>) => renderProjectPage({
      now: new Date('2026-01-01T00:01:00.000Z'), refreshSeconds: 5, project: rec(p) as unknown as DashboardProject, events: [], logLines: [], links: { scheme: 'http' },
    });
    expect(page({ databaseServer: 'hot', oldDatabaseServer: 'main' })).toContain('<tr><th>database</th><td>hot (old copy kept on main)</td></tr>');
    expect(page({ databaseServer: 'hot' })).toContain('<tr><th>database</th><td>hot</td></tr>');
    expect(page({})).not.toContain('<th>database</th>');
  });
});
