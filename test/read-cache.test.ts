// The fleet read kept across restarts is trusted only from the same validator, and never breaks a start.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRead, saveRead, validatorVersion } from '../daemon/git/read-cache.ts';
import type { FleetRead } from '../daemon/git/read.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleet-read-cache-'));
const read: FleetRead = { commit: 'a'.repeat(40), projects: [], invalid: [{ id: 'bad', errors: [] }], fleet: null, fleetIssues: [] };

describe('read cache', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a snapshot, private to the daemon', () => {
    const path = join(dir, 'last-read.json');
    saveRead(path, { key: 'k1', read });
    expect(loadRead(path)).toEqual({ key: 'k1', read });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('ignores a snapshot written by another validator', () => {
    const path = join(dir, 'other.json');
    saveRead(path, { key: 'k1', read });
    const data = JSON.parse(readFileSync(path, 'utf8'));
    expect(data.validator).toBe(validatorVersion());
    writeFileSync(path, JSON.stringify({ ...data, validator: 'an older daemon' }));
    expect(loadRead(path)).toBeNull();
  });

  it('ignores a missing, truncated or shapeless file', () => {
    expect(loadRead(join(dir, 'none.json'))).toBeNull();
    writeFileSync(join(dir, 'cut.json'), '{"validator":');
    expect(loadRead(join(dir, 'cut.json'))).toBeNull();
    writeFileSync(join(dir, 'shape.json'), JSON.stringify({ validator: validatorVersion(), key: 1 }));
    expect(loadRead(join(dir, 'shape.json'))).toBeNull();
  });
});
