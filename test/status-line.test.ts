// `fleet status` rows: drift means "git asks for something not applied yet", nothing else.
import { describe, expect, it } from 'vitest';
import { statusLine } from '../scripts/commands/status.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';

const rec = (p: Partial<ProjectRecord>) => ({
  id: 'blog', status: 'running', desiredState: 'running', present: true, lastHealth: null, conditions: [],
  appliedCommit: 'a'.repeat(40), observedCommit: 'a'.repeat(40), lastError: null, ...p,
}) as unknown as ProjectRecord;

describe('statusLine drift', () => {
  it.each([
    ['applied = observed', {}, 'no'],
    ['a newer commit not applied yet', { observedCommit: 'b'.repeat(40) }, 'yes (bbbbbbb)'],
    ['a removed folder whose instance is stopped', { present: false, status: 'stopped', desiredState: 'stopped', observedCommit: 'b'.repeat(40) }, 'no'],
    ['a removed folder still running', { present: false, status: 'running', desiredState: 'stopped', observedCommit: 'b'.repeat(40) }, 'yes (bbbbbbb)'],
    ['a deleted project', { status: 'deleted', desiredState: 'stopped', observedCommit: 'b'.repeat(40) }, 'no'],
  ])('%s → %s', (_name, p, drift) => {
    expect(statusLine(rec(p as Partial<ProjectRecord>))[4]).toBe(drift);
  });
});
