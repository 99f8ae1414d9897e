// JSON Schema validation of parsed YAML: every ajv error becomes a ValidationIssue with a line and column.
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Manifest, ValidationIssue } from '../core/types.ts';
import { locate, parseYaml, type ParseOptions, type ParsedYaml } from './parse.ts';

const schemaDir = fileURLToPath(new URL('../../schemas/', import.meta.url));
// ajv-formats ships CommonJS; under NodeNext its default import is the module object or the function.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;

function loadSchema(name: string): object {
  return JSON.parse(readFileSync(schemaDir + name, 'utf8')) as object;
}

/** An IP address or CIDR range (v4 or v6). */
function isCidr(value: string): boolean {
  const [addr, bits, extra] = value.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (!family) return false;
  if (bits === undefined) return true;
  if (!/^[0-9]{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(name: 'project.schema.json' | 'fleet.schema.json'): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
    addFormats(ajv);
    ajv.addFormat('cidr', { type: 'string', validate: isCidr });
    // Our own annotation: a plain-words message for a pattern error instead of the raw regex.
    ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
  }
  let fn = compiled.get(name);
  if (!fn) {
    fn = ajv.compile(loadSchema(name));
    compiled.set(name, fn);
  }
  return fn;
}

function messageFor(err: ErrorObject): string {
  const hint = (err.parentSchema as Record<string, unknown> | undefined)?.['x-message'];
  switch (err.keyword) {
    case 'additionalProperties':
      return `unknown key "${String(err.params.additionalProperty)}"; remove it or check its spelling`;
    case 'required':
      return `missing required key "${String(err.params.missingProperty)}"`;
    case 'enum':
      return `must be one of: ${(err.params.allowedValues as unknown[]).join(', ')}`;
    case 'pattern':
      return typeof hint === 'string' ? hint : err.message ?? 'invalid value';
    case 'propertyNames':
      return `invalid key "${String(err.params.propertyName)}"`;
    case 'format':
      return err.params.format === 'cidr'
        ? 'must be an IP address or CIDR range such as 10.0.0.0/8'
        : `must match format "${String(err.params.format)}"`;
    case 'type':
      return `must be ${String(err.params.type)}${err.params.type === 'string' ? ' (quote the value)' : ''}`;
    default:
      return err.message ?? `invalid (${err.keyword})`;
  }
}

/** Errors that only restate another error: the `if` wrapper of if/then, the propertyNames wrapper of a pattern. */
function isEcho(err: ErrorObject): boolean {
  return err.keyword === 'if' || err.keyword === 'propertyNames';
}

function toIssues(parsed: ParsedYaml, errors: ErrorObject[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  // A bad hostname fails both `format` and our clearer `pattern`: say it once.
  const patterned = new Set(errors.filter((e) => e.keyword === 'pattern').map((e) => e.instancePath));
  for (const err of errors) {
    if (isEcho(err)) continue;
    if (err.keyword === 'format' && patterned.has(err.instancePath)) continue;
    let path = err.instancePath;
    let at = locate(parsed, path);
    if (err.keyword === 'additionalProperties') {
      const key = String(err.params.additionalProperty);
      at = locate(parsed, path, { key });
      path = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    } else if (err.propertyName !== undefined) {
      // An invalid key (propertyNames): point at the key itself.
      at = locate(parsed, path, { key: err.propertyName });
      path = `${path}/${err.propertyName}`;
    }
    const message = err.propertyName !== undefined && err.keyword === 'pattern'
      ? `invalid key: ${messageFor(err)}`
      : messageFor(err);
    const issue = { file: parsed.file, line: at.line, column: at.column, path: path || '', message };
    const key = `${issue.path}\0${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

export interface SchemaResult<T> {
  value: T | null;
  issues: ValidationIssue[];
  parsed: ParsedYaml;
}

/** Parse YAML text and validate it against one of the repository schemas, applying its defaults. */
export function validateYaml<T>(
  schema: 'project.schema.json' | 'fleet.schema.json',
  file: string,
  text: string,
  opts: ParseOptions = {},
): SchemaResult<T> {
  const parsed = parseYaml(file, text, opts);
  if (parsed.issues.length) return { value: null, issues: parsed.issues, parsed };
  let value = parsed.value;
  // An empty file parses to null: validate it as an empty map so the message lists what is required.
  if (value === null || value === undefined) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    const issue = { file, line: 1, column: 1, path: '', message: 'must be a map of keys (key: value)' };
    return { value: null, issues: [issue], parsed };
  }
  const validate = validator(schema);
  if (validate(value)) return { value: value as T, issues: [], parsed };
  return { value: null, issues: toIssues(parsed, validate.errors ?? []), parsed };
}

/** Validate one project.yaml against the schema only (no rules); defaults applied, displayName = id if absent. */
export function validateManifestText(file: string, text: string, opts: Pick<ParseOptions, 'maxEntries'> = {}): SchemaResult<Manifest> {
  // A newline is sensible in an env value (a certificate, a multi-line setting), nowhere else.
  const allowNewline = (path: (string | number)[]) => path.length === 2 && path[0] === 'env';
  const result = validateYaml<Manifest>('project.schema.json', file, text, { ...opts, allowNewline });
  if (result.value && !result.value.displayName) result.value.displayName = result.value.id;
  return result;
}
