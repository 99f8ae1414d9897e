// Case-insensitive host lookup for Caddy 2.6, whose map and host matchers compare a large list case-sensitively.
// Pure: the renderer calls it with the host table and runs what it returns only for a host that is not lower
// case (real clients send lower case). Cost per request: two regex runs and one short exact scan, however many
// hosts there are.
//
// Go's regexp cannot lower-case, so a regex answers with a capture instead. Its source is the request host, '#',
// and a fixed string of labels; each host is one alternative that steps over as many labels as its answer says,
// and the one capture group after all alternatives takes the next label. Sorted, the alternatives share their
// prefixes, which Go's regexp factors into a tree, so a lookup walks one branch instead of trying every host.
// Hosts are cut into runs of about √n: the first regex gives the host's run, the second its place in the run
// (so no alternative steps over more than about √n labels), and an exact map turns "run place" into the project.
// The renderer sends a host holding '#' nowhere near here, so the '#' after a host is always the source's own.
import type { HostEntry } from './hosts.ts';
import { escapeRegex } from './regex.ts';

type Json = Record<string, unknown>;

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_';

/**
 * Handlers that leave in `{atomo.folded}` the project id of `{http.request.host}` compared without case and
 * without one trailing dot, or '' when it is no known host.
 */
export function foldHandlers(table: HostEntry[]): Json[] {
  const sorted = [...table].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const size = Math.max(1, Math.ceil(Math.sqrt(sorted.length)));
  const runs = Math.ceil(sorted.length / size);
  const runLabels = labels(runs);
  const placeLabels = labels(size);
  const runOf = (j: number) => Math.floor(j / size);
  const placeOf = (j: number) => j % size;
  return [
    labelMap('{atomo.run}', sorted, runLabels, runOf),
    labelMap('{atomo.place}', sorted, placeLabels, placeOf),
    {
      handler: 'map',
      source: '{atomo.run}{atomo.place}',
      destinations: ['{atomo.folded}'],
      mappings: sorted.map((e, j) => ({ input: `${runLabels[runOf(j)]}${placeLabels[placeOf(j)]}`, outputs: [e.projectId] })),
      defaults: [''],
    },
  ];
}

/** `count` distinct labels of one width, from ALPHABET. */
function labels(count: number): string[] {
  let width = 1;
  while (ALPHABET.length ** width < count) width++;
  return Array.from({ length: count }, (_, i) => {
    let s = '';
    for (let k = 0, n = i; k < width; k++, n = Math.floor(n / ALPHABET.length)) s = ALPHABET[n % ALPHABET.length] + s;
    return s;
  });
}

/** A map whose one regex captures `names[answer(j)]` for sorted host j, matched without case. */
function labelMap(destination: string, hosts: HostEntry[], names: string[], answer: (j: number) => number): Json {
  const suffix = names.join('');
  const width = names[0]?.length ?? 1;
  const alternatives = hosts.map((e, j) => `(?i:${escapeRegex(e.host)})\\.?#${escapeRegex(suffix.slice(0, answer(j) * width))}`);
  return {
    handler: 'map',
    source: `{http.request.host}#${suffix}`,
    destinations: [destination],
    mappings: hosts.length ? [{ input_regexp: `^(?:${alternatives.join('|')})(.{${width}})`, outputs: ['${1}'] }] : [],
    defaults: [''],
  };
}
