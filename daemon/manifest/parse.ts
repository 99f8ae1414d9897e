// YAML parsing that remembers where every value came from, so any error can name a line and column.
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Pair, type YAMLMap } from 'yaml';
import type { ValidationIssue } from '../core/types.ts';
import { MAX_DEPTH, deepNesting, inspect, startOf, toPointer, type PlainOptions, type Position } from './plain.ts';

export { MAX_DEPTH, decodeText, toPointer, type Position, type TextLimit } from './plain.ts';
export type ParseOptions = PlainOptions;

export interface ParsedYaml {
  file: string;
  /** Plain JS value of the document; undefined when it had syntax errors or was refused as not plain data. */
  value: unknown;
  doc: Document;
  lines: LineCounter;
  /** Syntax errors and refusals (aliases, tags, duplicate keys...), each with a line and column. */
  issues: ValidationIssue[];
}

export function parseYaml(file: string, text: string, opts: ParseOptions = {}): ParsedYaml {
  const lines = new LineCounter();
  // The yaml parser recurses once per level: thousands of levels overflow the stack at a depth that depends on
  // the caller, so the outcome (and the message) would differ between `fleet validate` and the daemon.
  const deep = deepNesting(text);
  if (deep) {
    const issue = { file, ...deep, path: '', message: `is nested deeper than ${MAX_DEPTH} levels; a manifest needs only a few` };
    return { file, value: undefined, doc: parseDocument(''), lines, issues: [issue] };
  }
  // uniqueKeys off: the yaml package compares every key with every other (quadratic); `inspect` uses a Set.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const issues: ValidationIssue[] = doc.errors.map((err) => {
    const pos = lines.linePos(err.pos[0]);
    return {
      file,
      line: pos.line,
      column: pos.col,
      path: '',
      message: `invalid YAML: ${firstLine(err.message)}`,
    };
  });
  const parsed: ParsedYaml = { file, value: undefined, doc, lines, issues };
  if (issues.length) return parsed;
  issues.push(...inspect(file, doc.contents, lines, opts));
  // Only plain data reaches toJS: no aliases to expand, no tags to construct, bounded size and depth.
  if (!issues.length) parsed.value = doc.toJS({ maxAliasCount: 0 });
  return parsed;
}

function firstLine(message: string): string {
  // The yaml package appends a code excerpt after the first line; the position already says where.
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/** JSON pointer segments, unescaped (`~1` → `/`, `~0` → `~`). */
export function pointerSegments(pointer: string): string[] {
  if (!pointer) return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Where the value at `pointer` starts. With `key`, where that key of the map at `pointer` is written
 * (for "unknown key" errors). Falls back to the closest enclosing node that exists, then to 1:1.
 */
export function locate(parsed: ParsedYaml, pointer: string, opts: { key?: string } = {}): Position {
  let node: unknown = parsed.doc.contents;
  let best: unknown = node;
  const segments = pointerSegments(pointer);
  if (opts.key !== undefined) segments.push(opts.key);
  for (const [i, segment] of segments.entries()) {
    const wantKey = opts.key !== undefined && i === segments.length - 1;
    const next = child(node, segment, wantKey);
    if (!next) break;
    node = next;
    best = next;
  }
  return position(parsed, best);
}

// Keys of each map, indexed on first use: locating thousands of issues stays linear in the size of the map.
const keyIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  let index = keyIndex.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) {
      if (isPair(p) && isScalar(p.key) && !index.has(String(p.key.value))) index.set(String(p.key.value), p);
    }
    keyIndex.set(map, index);
  }
  return index.get(key);
}

function child(node: unknown, segment: string, wantKey: boolean): unknown {
  if (isMap(node)) {
    const pair = pairOf(node, segment);
    if (!pair) return undefined;
    // A key with an empty value (`env:`) has no value node: point at the key.
    return wantKey || pair.value == null ? pair.key : pair.value;
  }
  if (isSeq(node)) return node.items[Number(segment)];
  return undefined;
}

function position(parsed: ParsedYaml, node: unknown): Position {
  return startOf(parsed.lines, node);
}

/** `projects/acme/project.yaml:3:1: /hostname: must match format "hostname"` */
export function formatIssue(issue: ValidationIssue): string {
  const file = printable(issue.file);
  const where = issue.line ? `${file}:${issue.line}:${issue.column ?? 1}` : file;
  const text = printable(issue.message);
  return issue.path ? `${where}: ${printable(issue.path)}: ${text}` : `${where}: ${text}`;
}

/** Control characters from a hostile file or folder name shown as escapes: one issue stays one line. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Issues kept per file: the first ones are what to fix; thousands would only bury them (and cost time). */
export const MAX_ISSUES_PER_FILE = 20;

// The "and N more" issues capIssues made, with N: capping again (a project's own issues, then with the
// cross-project ones) adds to that count instead of counting the summary as one more issue.
const summaries = new WeakMap<ValidationIssue, number>();

/** At most MAX_ISSUES_PER_FILE issues per file, in order, then one saying how many more there are. */
export function capIssues(issues: ValidationIssue[], max = MAX_ISSUES_PER_FILE): ValidationIssue[] {
  const kept = new Map<string, number>();
  const dropped = new Map<string, number>();
  const out: ValidationIssue[] = [];
  for (const issue of issues) {
    const more = summaries.get(issue);
    if (more !== undefined) {
      dropped.set(issue.file, (dropped.get(issue.file) ?? 0) + more);
      continue;
    }
    const n = (kept.get(issue.file) ?? 0) + 1;
    kept.set(issue.file, n);
    if (n <= max) out.push(issue);
    else dropped.set(issue.file, (dropped.get(issue.file) ?? 0) + 1);
  }
  for (const [file, n] of dropped) {
    const summary = { file, path: '', message: `and ${n} more issues in this file; fix the ones above first` };
    summaries.set(summary, n);
    out.push(summary);
  }
  return out;
}
/** GitHub Actions annotation: shows the message on the line in a pull request's diff. */
export function formatIssueGithub(issue: ValidationIssue): string {
  // Workflow commands need %, CR and LF escaped in the message, and also : and , in properties.
  const escape = (text: string) => text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const props = [`file=${escape(issue.file).replace(/:/g, '%3A').replace(/,/g, '%2C')}`];
  if (issue.line) props.push(`line=${issue.line}`, `col=${issue.column ?? 1}`);
  const text = issue.path ? `${issue.path}: ${issue.message}` : issue.message;
  return `::error ${props.join(',')}::${escape(text)}`;
}
