// The layout shows the architecture: the pure core (daemon/core), the executor (daemon/reconcile), the drivers and
// the CLI (scripts/) apart, with imports running one way only and no import cycles.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}

/** Relative imports of a file (static, dynamic and type-only), as repo-relative paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
  return specs.map((s) => normalize(join(dirname(file), s)));
}

const files = [...sources('daemon'), ...sources('scripts')];
const graph = new Map(files.map((f) => [f, importsOf(f)]));

/** Every import cycle, each as the list of files around it. */
export function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of g.get(f) ?? []) {
      if (state.get(to) === 'open') found.push(stack.slice(stack.indexOf(to)));
      else if (!state.has(to) && g.has(to)) visit(to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('layout', () => {
  it('finds a cycle when there is one (the check can fail)', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('has no import cycles in daemon/ and scripts/', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('daemon/ never imports the CLI', () => {
    const up = files.filter((f) => f.startsWith('daemon/')).flatMap((f) => graph.get(f)!.filter((to) => to.startsWith('scripts/')).map((to) => `${f} → ${to}`));
    expect(up).toEqual([]);
  });

  it('the pure core imports only the core (no I/O, no executor, no drivers)', () => {
    const core = files.filter((f) => f.startsWith('daemon/core/'));
    expect(core.map((f) => relative('daemon/core', f)).sort()).toEqual(
      ['backoff.ts', 'canonical.ts', 'concurrency.ts', 'errors.ts', 'instance-spec.ts', 'plan.ts', 'servers.ts', 'types.ts']);
    for (const f of core) {
      expect(graph.get(f)!.filter((to) => !to.startsWith('daemon/core/')), f).toEqual([]);
      expect(readFileSync(join(ROOT, f), 'utf8'), f).not.toMatch(/from ['"](node:(fs|child_process|net|http)|pg|dockerode|isomorphic-git)['"]/);
    }
  });

  it('drivers and the registry do not reach into the executor', () => {
    const wrong = files.filter((f) => /^daemon\/(drivers|registry|gateway|git|manifest|secrets)\//.test(f))
      .flatMap((f) => graph.get(f)!.filter((to) => to.startsWith('daemon/reconcile/')).map((to) => `${f} → ${to}`));
    expect(wrong).toEqual([]);
  });

  it('no branch on a driver name outside drivers/: each driver declares where its instances listen', () => {
    const leaks = files.filter((f) => !f.startsWith('daemon/drivers/') && !f.startsWith('daemon/manifest/'))
      .flatMap((f) => readFileSync(join(ROOT, f), 'utf8').split('\n').map((line, i) => ({ f, i, line })))
      .filter(({ line }) => /driverName|[!=]==\s*'(process|docker)'|'(process|docker)'\s*[!=]==/.test(line))
      .map(({ f, i, line }) => `${f}:${i + 1}: ${line.trim()}`);
    expect(leaks).toEqual([]);
  });
});
