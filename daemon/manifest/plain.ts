// What is refused before the YAML parser and before toJS, so only plain, bounded data reaches them: bytes that
// are not text (too large, NUL, not UTF-8), nesting deep enough to overflow a recursive parser, and, on the parsed
// document, anchors and aliases, tags, odd keys, duplicate keys, non-finite numbers, control characters.
// Every step is one linear pass.
import { isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { ValidationIssue } from '../core/types.ts';

export interface Position {
  line: number;
  column: number;
}

export interface PlainOptions {
  /** Where a newline may appear in a string value, by path segments; tab is allowed everywhere. */
  allowNewline?: (path: (string | number)[]) => boolean;
  /** Entries one map or list may hold (default 1000): keeps every later step small whatever the input. */
  maxEntries?: number;
}

/** Nesting a manifest never needs; deeper is refused before any recursive step sees it. */
export const MAX_DEPTH = 32;
const MAX_ENTRIES = 1000;
// The plain-data tags of the YAML 1.2 core schema; anything else (`!foo`, `!!js/function`, `!!binary`) is refused.
const PLAIN_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const CONTROL_BUT_NEWLINE = /[\x00-\x08\x0b-\x1f\x7f]/;
const CONTROL_ANY = /[\x00-\x1f\x7f]/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Refusals before any parsing: too large, a NUL byte, not UTF-8. */
export interface TextLimit {
  /** Largest size in bytes. */
  maxBytes: number;
  /** How the limit reads in a message ("64 KiB"). */
  label: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Bytes (or a string) → text, or the one issue that says why the file cannot be read as text. `file` names it in
 * the issue. A source may hand over only the first maxBytes + 1 bytes of a larger file.
 */
export function decodeText(file: string, content: string | Uint8Array, limit: TextLimit): { text: string } | { issue: ValidationIssue } {
  const size = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  if (size > limit.maxBytes) {
    return { issue: { file, path: '', message: `is larger than ${limit.label} (${limit.maxBytes} bytes); make it smaller` } };
  }
  let text: string;
  if (typeof content === 'string') {
    text = content;
  } else {
    try {
      text = utf8.decode(content);
    } catch {
      return { issue: { file, path: '', message: 'is not valid UTF-8 text; save it as UTF-8' } };
    }
  }
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    const before = text.slice(0, nul);
    const line = before.split('\n').length;
    const column = nul - before.lastIndexOf('\n');
    return { issue: { file, line, column, path: '', message: 'contains a NUL byte; save it as plain UTF-8 text' } };
  }
  return { text };
}

/** Levels the text scan lets through; the walker then refuses anything deeper than MAX_DEPTH with its path. */
const SCAN_DEPTH = 2 * MAX_DEPTH;
const SPACE = /[ \t\r\n]/;

/**
 * An estimate, from the text alone and in one pass, of how deep the YAML nests: open block levels (by indentation,
 * plus compact `- ` and `? ` indicators) and open flow collections (`[`, `{` outside quotes, comments, plain text and
 * block scalars). Where it first exceeds SCAN_DEPTH, or null. Never too low for what the parser recurses on.
 */
export function deepNesting(text: string): Position | null {
  const indents: number[] = [];
  let flow = 0;
  let line = 1;
  let i = 0;
  let blockParent = -1; // indentation of the line that opened a | or > block scalar
  const n = text.length;
  const tooDeep = (at: number) => (indents.length + flow > SCAN_DEPTH ? { line, column: at - lineStart + 1 } : null);
  let lineStart = 0;
  while (i < n) {
    lineStart = i;
    while (i < n && text[i] === ' ') i++;
    const col = i - lineStart;
    let end = text.indexOf('\n', i);
    if (end < 0) end = n;
    const blank = i >= end || text[i] === '#' || text[i] === '\r';
    if (blockParent >= 0 && (blank || col > blockParent)) {
      i = end + 1;
      line++;
      continue;
    }
    blockParent = -1;
    if (!blank && flow === 0) {
      while (indents.length && indents[indents.length - 1] >= col) indents.pop();
      indents.push(col);
      const deep = tooDeep(i);
      if (deep) return deep;
    }
    let start = true; // where a node may begin: a quote or bracket here opens one
    while (i < end) {
      const c = text[i];
      if (SPACE.test(c)) {
        i++;
        continue;
      }
      if (c === '#' && (i === lineStart || SPACE.test(text[i - 1]))) break;
      if (start && (c === '"' || c === "'")) {
        const after = skipQuoted(text, i);
        line += after.newlines;
        if (after.newlines) lineStart = after.lineStart;
        i = after.end;
        end = text.indexOf('\n', i);
        if (end < 0) end = n;
        start = false;
        continue;
      }
      const next = text[i + 1];
      const indicator = next === undefined || SPACE.test(next);
      if (start && flow === 0 && (c === '-' || c === '?') && indicator) {
        indents.push(i - lineStart + 1);
        const deep = tooDeep(i);
        if (deep) return deep;
        i++;
        continue;
      }
      if (start && flow === 0 && (c === '|' || c === '>')) {
        let j = i + 1;
        while (j < end && /[-+0-9]/.test(text[j])) j++;
        const rest = text.slice(j, end).trim();
        if (rest === '' || rest.startsWith('#')) blockParent = col;
        break;
      }
      if ((start || flow > 0) && (c === '[' || c === '{')) {
        flow++;
        const deep = tooDeep(i);
        if (deep) return deep;
        i++;
        start = true;
        continue;
      }
      if (flow > 0 && (c === ']' || c === '}')) {
        flow--;
        start = false;
      } else if ((c === ':' && (indicator || flow > 0)) || (flow > 0 && c === ',')) {
        start = true;
      } else if (start && (c === '&' || c === '!')) {
        while (i < end && !SPACE.test(text[i])) i++; // an anchor or tag: the node comes after it
        continue;
      } else {
        start = false;
      }
      i++;
    }
    i = end + 1;
    line++;
  }
  return null;
}

/** The end of the quoted scalar opening at `i` (possibly over several lines), and the lines it spans. */
function skipQuoted(text: string, i: number): { end: number; newlines: number; lineStart: number } {
  const quote = text[i];
  let newlines = 0;
  let lineStart = 0;
  for (i++; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      newlines++;
      lineStart = i + 1;
    } else if (quote === '"' && c === '\\') {
      i++; // an escaped character, or an escaped line break
      if (text[i] === '\n') {
        newlines++;
        lineStart = i + 1;
      }
    } else if (c === quote) {
      if (quote === "'" && text[i + 1] === "'") i++;
      else break;
    }
  }
  return { end: i + 1, newlines, lineStart };
}

/**
 * One linear, non-recursive pass over the document before anything converts or validates it: refuses anchors and
 * aliases (a manifest has no need for them, and they are how alias bombs work), tags other than plain data, keys
 * that are not scalars, duplicate keys, non-finite numbers, control characters, lone surrogates, and maps or lists
 * too large or too deep.
 */
export function inspect(
  file: string, contents: unknown, lines: LineCounter, opts: PlainOptions = {},
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const maxEntries = opts.maxEntries ?? MAX_ENTRIES;
  const add = (node: unknown, path: (string | number)[], message: string) =>
    issues.push({ file, ...startOf(lines, node), path: toPointer(path), message });
  const stack: { node: unknown; path: (string | number)[]; key?: boolean }[] = [{ node: contents, path: [] }];
  while (stack.length && issues.length < 1000) {
    const { node, path, key: isKey } = stack.pop()!;
    if (node == null) continue;
    if (isAlias(node)) {
      add(node, path, `uses the alias *${node.source}; aliases are not supported in a manifest: write the value out`);
      continue;
    }
    const n = node as Node;
    if (n.anchor) add(node, path, `sets the anchor &${n.anchor}; anchors are not supported in a manifest: remove it`);
    if (n.tag && !PLAIN_TAGS.has(n.tag)) {
      add(node, path, `has the tag "${tagName(n.tag)}"; only plain values are supported: remove the tag`);
      continue;
    }
    if (path.length > MAX_DEPTH) {
      add(node, path, `is nested deeper than ${MAX_DEPTH} levels; a manifest needs only a few`);
      continue;
    }
    if (isKey) continue; // a key's own text was checked with its map
    if (isScalar(node)) {
      checkScalar(node.value, path, opts, (message) => add(node, path, message));
    } else if (isMap(node) || isSeq(node)) {
      if (node.items.length > maxEntries) {
        add(node, path, `has ${node.items.length} entries; at most ${maxEntries} are allowed in one map or list`);
        continue;
      }
      if (isSeq(node)) {
        node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i] }));
        continue;
      }
      const keys = new Set<string>();
      for (const pair of node.items) {
        const key = keyOf(pair.key);
        if (key === undefined) {
          add(pair.key ?? node, path, 'has a key that is not a plain string; a key must be a plain name');
          continue;
        }
        const at = [...path, key];
        if (keys.has(key)) add(pair.key, at, `duplicate key "${key}"; a key may appear only once in a map: remove one`);
        keys.add(key);
        if (CONTROL_ANY.test(key) || LONE_SURROGATE.test(key)) {
          add(pair.key, at, 'key contains a control character or invalid Unicode; use letters, digits and _');
        }
        stack.push({ node: pair.key, path: at, key: true }, { node: pair.value, path: at });
      }
    } else {
      add(node, path, 'is not plain data; write a value, a map or a list');
    }
  }
  // Keep document order: the stack visits the last entries first.
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function checkScalar(value: unknown, path: (string | number)[], opts: PlainOptions, add: (message: string) => void) {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    add('must be a finite number (not .nan or .inf)');
  } else if (typeof value === 'string') {
    const control = opts.allowNewline?.(path) ? CONTROL_BUT_NEWLINE : CONTROL;
    if (control.test(value)) add('contains a control character; remove it (only tab, and newline in env values, are allowed)');
    else if (LONE_SURROGATE.test(value)) add('contains invalid Unicode (a lone surrogate); remove it');
  } else if (value !== null && typeof value !== 'boolean' && typeof value !== 'number') {
    add('is not plain data; write a string, number, boolean or null');
  }
}

/** The JS property name toJS gives a scalar key; undefined for keys that are not scalars. */
function keyOf(key: unknown): string | undefined {
  if (key == null) return '';
  if (!isScalar(key)) return undefined;
  const v = key.value;
  if (v === null) return '';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function tagName(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag;
}

export function toPointer(segments: (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** Where a node starts (1:1 when it has no range). */
export function startOf(lines: LineCounter, node: unknown): Position {
  const range = (node as Node | null | undefined)?.range;
  if (!range) return { line: 1, column: 1 };
  const pos = lines.linePos(range[0]);
  return { line: pos.line, column: pos.col };
}
