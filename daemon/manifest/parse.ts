// YAML parsing that remembers where every value came from, so any error can name a line and column.
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { ValidationIssue } from '../types.ts';

export interface ParsedYaml {
  file: string;
  /** Plain JS value of the document; undefined when it had syntax errors. */
  value: unknown;
  doc: Document;
  lines: LineCounter;
  /** Syntax errors, each with a line and column. */
  issues: ValidationIssue[];
}

export interface Position {
  line: number;
  column: number;
}

export function parseYaml(file: string, text: string): ParsedYaml {
  const lines = new LineCounter();
  // uniqueKeys: a key written twice is an error, not a silent "last one wins".
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
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
  const value = issues.length ? undefined : doc.toJS();
  return { file, value, doc, lines, issues };
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

export function toPointer(segments: (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
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

function child(node: unknown, segment: string, wantKey: boolean): unknown {
  if (isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === segment);
    if (!pair) return undefined;
    // A key with an empty value (`env:`) has no value node: point at the key.
    return wantKey || pair.value == null ? pair.key : pair.value;
  }
  if (isSeq(node)) return node.items[Number(segment)];
  return undefined;
}

function position(parsed: ParsedYaml, node: unknown): Position {
  const range = (node as Node | null | undefined)?.range;
  if (!range) return { line: 1, column: 1 };
  const pos = parsed.lines.linePos(range[0]);
  return { line: pos.line, column: pos.col };
}

/** `projects/acme/project.yaml:3:1: /hostname: must match format "hostname"` */
export function formatIssue(issue: ValidationIssue): string {
  const where = issue.line ? `${issue.file}:${issue.line}:${issue.column ?? 1}` : issue.file;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** GitHub Actions annotation: shows the message on the line in a pull request's diff. */
export function formatIssueGithub(issue: ValidationIssue): string {
  const props = [`file=${issue.file}`];
  if (issue.line) props.push(`line=${issue.line}`, `col=${issue.column ?? 1}`);
  const text = issue.path ? `${issue.path}: ${issue.message}` : issue.message;
  // Workflow commands need %, CR and LF escaped in the message.
  const escaped = text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  return `::error ${props.join(',')}::${escaped}`;
}
