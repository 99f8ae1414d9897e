// The one backup layout: `<backupDir>/<project>/<UTC time>-<kind>[-<commit>].dump`, named so a listing needs no
// sidecar file (time, kind and commit from the name, size from the file).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BACKUP_KINDS, REGISTRY_FOLDER, backupFolder, backupName, latestBackup, listBackups, parseBackupName,
} from '../daemon/backup/layout.ts';
import { restoreProgress, tocEntries } from '../daemon/backup/archive.ts';
import { formatProgress, formatSize } from '../scripts/commands/backup.ts';

const AT = new Date('2026-05-01T03:00:00.123Z');

describe('backup names', () => {
  it.each([
    ['scheduled', 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678', '2026-05-01T03-00-00.123Z-scheduled-a1b2c3d4e5f6.dump'],
    ['manual', null, '2026-05-01T03-00-00.123Z-manual.dump'],
    ['pre-delete', 'abc1234', '2026-05-01T03-00-00.123Z-pre-delete-abc1234.dump'],
    ['pre-restore', 'not a commit', '2026-05-01T03-00-00.123Z-pre-restore.dump'],
  ] as const)('%s, commit %s → %s', (kind, commit, name) => {
    expect(backupName(AT, kind, commit)).toBe(name);
    expect(parseBackupName(name)).toEqual({ at: AT.toISOString(), kind, commit: commit && /^[0-9a-f]+$/.test(commit) ? commit.slice(0, 12) : null });
  });

  it.each([
    'notes.sql', 'atomo_x-2026-05-01T03-00-00-123Z.sql', '2026-05-01T03-00-00.123Z-weekly.dump',
    '2026-05-01T03-00-00.123Z-manual.dump.partial', '../2026-05-01T03-00-00.123Z-manual.dump', '2026-05-01T03-00-00.123Z-manual-XYZ1234.dump',
  ])('%s is not a backup name', (name) => {
    expect(parseBackupName(name)).toBeNull();
  });

  it('round-trips any time, kind and commit, and sorts by time', () => {
    fc.assert(fc.property(
      fc.date({ min: new Date('2000-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }),
      fc.constantFrom(...BACKUP_KINDS), fc.option(fc.stringMatching(/^[0-9a-f]{7,40}$/)),
      (at, kind, commit) => {
        const name = backupName(at, kind, commit);
        expect(parseBackupName(name)).toEqual({ at: at.toISOString(), kind, commit: commit ? commit.slice(0, 12) : null });
      },
    ));
    const a = backupName(new Date('2026-01-02T00:00:00Z'), 'scheduled');
    const b = backupName(new Date('2026-01-10T00:00:00Z'), 'manual');
    expect([b, a].sort()).toEqual([a, b]);
  });

  it('a folder is a project id or the registry, nothing else', () => {
    expect(backupFolder('/b', 'blog')).toBe('/b/blog');
    expect(backupFolder('/b', REGISTRY_FOLDER)).toBe('/b/_registry');
    for (const bad of ['..', '../x', 'Blog', '', 'a/b', '_other']) expect(() => backupFolder('/b', bad)).toThrow(/not a project id/);
  });
});

describe('listing', () => {
  it('lists dumps newest first with size, ignores anything else, and finds the latest restorable one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-layout-'));
    try {
      mkdirSync(join(dir, 'blog'));
      const names = [
        backupName(new Date('2026-01-01T00:00:00Z'), 'scheduled', 'abcdef1'),
        backupName(new Date('2026-01-03T00:00:00Z'), 'manual'),
        backupName(new Date('2026-01-04T00:00:00Z'), 'pre-restore'),
      ];
      for (const n of names) writeFileSync(join(dir, 'blog', n), 'x'.repeat(5));
      writeFileSync(join(dir, 'blog', `${backupName(new Date('2026-01-05T00:00:00Z'), 'manual')}.partial`), 'half');
      writeFileSync(join(dir, 'blog', 'notes.txt'), 'hi');
      const list = listBackups(dir, 'blog');
      expect(list.map((b) => b.name)).toEqual([names[2], names[1], names[0]]);
      expect(list[2]).toMatchObject({ project: 'blog', kind: 'scheduled', commit: 'abcdef1', size: 5, at: '2026-01-01T00:00:00.000Z', file: join(dir, 'blog', names[0]) });
      // --latest never picks the safety dump a restore took of what it replaced.
      expect(latestBackup(dir, 'blog')?.name).toBe(names[1]);
      expect(listBackups(dir, 'shop')).toEqual([]);
      expect(latestBackup(dir, 'shop')).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pg_restore output', () => {
  it('counts the TOC entries of `pg_restore --list` and reads the database name', () => {
    const list = [
      ';', '; Archive created at 2026-05-01 03:00:00 UTC', ';     dbname: atomo_blog', ';     TOC Entries: 9', ';',
      '; Selected TOC Entries:', ';', '215; 1259 16390 TABLE public widgets atomo_blog',
      '214; 1259 16389 SEQUENCE public widgets_n_seq atomo_blog', '3321; 0 16390 TABLE DATA public widgets atomo_blog', '',
    ].join('\n');
    expect(tocEntries(list)).toEqual({ entries: 3, database: 'atomo_blog' });
    expect(tocEntries('')).toEqual({ entries: 0, database: null });
  });

  it.each([
    ['pg_restore: creating TABLE "public.widgets"', true],
    ['pg_restore: processing data for table "public.widgets"', true],
    ['pg_restore: executing SEQUENCE SET widgets_n_seq', true],
    ['pg_restore: connecting to database for restore', false],
    ['pg_restore: error: could not execute query', false],
  ])('%s is a step: %s', (line, step) => {
    expect(restoreProgress(line)).toBe(step);
  });
});

describe('progress and sizes for people', () => {
  it.each([
    [{ phase: 'restore', done: 18, total: 40 }, 12_400, 'restoring blog: 45% (18/40), 12 s'],
    [{ phase: 'restore', done: 50, total: 40 }, 1000, 'restoring blog: 100% (50/40), 1 s'],
    [{ phase: 'dump', done: 3, total: null }, 4000, 'dumping blog: 3 tables, 4 s'],
    [{ phase: 'dump', done: 3, total: 12 }, 4000, 'dumping blog: 25% (3/12), 4 s'],
  ] as const)('%o after %d ms', (p, ms, line) => {
    expect(formatProgress('blog', p, ms)).toBe(line);
  });

  it.each([[0, '0 B'], [1023, '1023 B'], [1536, '1.5 KiB'], [5 * 1024 ** 3, '5.0 GiB']])('%d bytes → %s', (n, text) => {
    expect(formatSize(n)).toBe(text);
  });
});

