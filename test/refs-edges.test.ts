// Secret references at their edges: what a reference may look like (SSM's rules), whose it is, who may read it.
import { describe, expect, it } from 'vitest';
import {
  checkRef, cleanPrefix, projectOf, projectPath, refProblem, resolveRef, secretRef, secretRefAllowed,
} from '../daemon/secrets/refs.ts';
import { thrown } from './harness/errors.ts';

const ABSOLUTE = 'must be an absolute path such as /atomo/<project>/NAME';
const EMPTY = 'has an empty path segment (// or a trailing /)';
const DOTS = 'must not contain "." or ".." segments';
const CHARS = 'may only use letters, digits, "_", "." and "-" between slashes';
const LONG = 'is longer than the 1011 characters SSM allows';
const DEEP = 'is nested deeper than the 15 levels SSM allows';

const nested = (levels: number) => '/' + Array.from({ length: levels }, (_, i) => `l${i}`).join('/');


describe('refProblem', () => {
  it.each<[string, unknown, string | null]>([
    ['a plain reference', '/atomo/acme/JWT_SECRET', null],
    ['every allowed character', '/atomo/a-b_c.d/E.F-1_2', null],
    ['dots inside a name', '/atomo/acme/.env', null],
    ['relative', 'atomo/acme/X', ABSOLUTE],
    ['empty', '', ABSOLUTE],
    ['not a string', undefined, ABSOLUTE],
    ['a number', 42, ABSOLUTE],
    ['double slash', '/atomo//X', EMPTY],
    ['trailing slash', '/atomo/acme/', EMPTY],
    ['just a slash', '/', EMPTY],
    ['a . segment', '/atomo/./X', DOTS],
    ['a .. segment', '/atomo/acme/../other/X', DOTS],
    ['a trailing . segment', '/atomo/acme/.', DOTS],
    ['a space', '/atomo/acme/MY KEY', CHARS],
    ['a backslash', '/atomo/acme\\X', CHARS],
    ['1011 characters, the most SSM allows', '/' + 'a'.repeat(1010), null],
    ['1012 characters', '/' + 'a'.repeat(1011), LONG],
    ['15 levels, the most SSM allows', nested(15), null],
    ['16 levels', nested(16), DEEP],
  ])('%s', (_name, ref, want) => {
    expect(refProblem(ref as string)).toBe(want);
  });

  it('reports the first problem in path order', () => {
    expect(refProblem('/a b//c')).toBe(CHARS);
    expect(refProblem('//a b')).toBe(EMPTY);
  });
});

describe('checkRef', () => {
  it('returns a good reference unchanged', () => {
    expect(checkRef('/atomo/acme/X', 'acme')).toBe('/atomo/acme/X');
  });

  it('throws SECRET_STORE naming the reference, the problem and the project', () => {
    const err = thrown(() => checkRef('/atomo/../X', 'acme'));
    expect({ code: err.code, message: err.message, project: err.project }).toEqual({
      code: 'SECRET_STORE', message: `secret reference "/atomo/../X" ${DOTS}`, project: 'acme',
    });
  });
});

describe('resolveRef', () => {
  it.each<[string, string, string]>([
    ['a name under the project path', 'JWT_SECRET', '/atomo/acme/JWT_SECRET'],
    ['a nested name', 'db/URL', '/atomo/acme/db/URL'],
    ['an absolute reference as it is', '/shared/stripe/KEY', '/shared/stripe/KEY'],
  ])('%s', (_name, ref, want) => {
    expect(resolveRef('/atomo/', 'acme', ref)).toBe(want);
  });

  it.each<[string, unknown]>([['empty', ''], ['missing', undefined], ['not a string', 7]])(
    'refuses an %s reference, saying what to name, for the project',
    (_name, ref) => {
      const err = thrown(() => resolveRef('/atomo', 'acme', ref as string));
      expect({ code: err.code, message: err.message, project: err.project }).toEqual({
        code: 'SECRET_STORE',
        message: 'project acme: an empty secret reference; name a secret such as JWT_SECRET',
        project: 'acme',
      });
    },
  );

  it.each<[string, string, string]>([
    ['a relative name that climbs out', '../other/X', DOTS],
    ['an absolute reference with //', '/atomo//X', EMPTY],
  ])('refuses %s', (_name, ref, problem) => {
    const err = thrown(() => resolveRef('/atomo', 'acme', ref));
    expect(err.message).toContain(problem);
    expect(err.project).toBe('acme');
  });
});

describe('prefix and paths', () => {
  it.each([
    ['/atomo', '/atomo'],
    ['atomo', '/atomo'],
    ['/atomo/', '/atomo'],
    ['/atomo///', '/atomo'],
    ['/a/b/', '/a/b'],
  ])('cleanPrefix(%j) → %j', (prefix, want) => {
    expect(cleanPrefix(prefix)).toBe(want);
  });

  it.each([
    ['/atomo', 'acme', '/atomo/acme'],
    ['atomo//', 'acme', '/atomo/acme'],
  ])('projectPath(%j, %j) → %j', (prefix, id, want) => {
    expect(projectPath(prefix, id)).toBe(want);
  });

  it('projectPath refuses an id that is not one path segment', () => {
    expect(thrown(() => projectPath('/atomo', '..')).project).toBe('..');
  });

  it('secretRef builds a checked reference', () => {
    expect(secretRef('atomo/', 'acme', 'JWT_SECRET')).toBe('/atomo/acme/JWT_SECRET');
    expect(thrown(() => secretRef('/atomo', 'acme', 'A B')).code).toBe('SECRET_STORE');
  });

  it.each<[string | undefined, string, string | undefined]>([
    ['/atomo', '/atomo/acme/JWT_SECRET', 'acme'],
    ['atomo/', '/atomo/acme/db/URL', 'acme'],
    [undefined, '/atomo/acme/JWT_SECRET', undefined],
    ['', '/atomo/acme/JWT_SECRET', undefined],
    ['/atomo', '/other/acme/JWT_SECRET', undefined],
    ['/atomo', '/atomo-old/acme/X', undefined],
    ['/atomo', '/atomo/acme', undefined],
    ['/atomo', '/atomo//X', undefined],
  ])('projectOf(%j, %j) → %j', (prefix, ref, want) => {
    expect(projectOf(prefix, ref)).toBe(want);
  });
});

describe('secretRefAllowed at its edges', () => {
  it.each<[string, string[], string, unknown, boolean]>([
    ['own secret', [], 'acme', '/atomo/acme/X', true],
    ['own path itself is not a secret under it', [], 'acme', '/atomo/acme', false],
    ['a sibling project whose id starts the same', [], 'acme', '/atomo/acme2/X', false],
    ['no project id: nothing is own', [], '', '/atomo/X', false],
    ['not a string', [], 'acme', 42, false],
    ['malformed even under its own path', [], 'acme', '/atomo/acme/../other/X', false],
    ['shared exactly', ['/shared/stripe/KEY'], 'acme', '/shared/stripe/KEY', true],
    ['an exact share does not share what lies under it', ['/shared/stripe'], 'acme', '/shared/stripe/KEY', false],
    ['shared folder', ['/shared/stripe/'], 'acme', '/shared/stripe/KEY', true],
    ['a shared folder does not share a sibling', ['/shared/stripe/'], 'acme', '/shared/stripe2/KEY', false],
    ['sharing "/" shares nothing (it is not a valid path)', ['/'], 'acme', '/other/X', false],
    ['the fleet path is never shared', ['/atomo/'], 'acme', '/atomo/fleet/GIT_TOKEN', false],
    ['the fleet path is not a project of its own', [], 'fleet', '/atomo/fleet/GIT_TOKEN', false],
    // fleet.yaml is edited by pull request too: a share can never open one project's path to another.
    ['another project shared by folder', ['/atomo/'], 'acme', '/atomo/other/X', false],
    ['another project shared by its own folder', ['/atomo/other/'], 'acme', '/atomo/other/JWT_SECRET', false],
    ['another project\'s secret shared exactly', ['/atomo/other/JWT_SECRET'], 'acme', '/atomo/other/JWT_SECRET', false],
    ['the shared folder under the prefix', ['/atomo/shared/'], 'acme', '/atomo/shared/SENTRY_DSN', true],
    ['an exact share under the shared folder', ['/atomo/shared/SENTRY_DSN'], 'acme', '/atomo/shared/SENTRY_DSN', true],
  ])('%s', (_name, shared, id, ref, allowed) => {
    expect(secretRefAllowed('/atomo', shared, id, ref as string)).toBe(allowed);
  });
});
