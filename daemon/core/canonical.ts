// JSON with object keys sorted, so two values compare equal whatever their key order (Postgres jsonb, YAML and
// Caddy each order keys their own way); `undefined` reads as `null`.
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }) ?? 'null';
}
