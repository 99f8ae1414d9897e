// "12s ago": how old a timestamp is, in the largest unit that fits, as `fleet status` and the dashboard print it.

/** `at` relative to `now`: `12s ago`, `5m ago`, `3h ago`, `2d ago`; `-` when there is no (valid) time. */
export function ago(at: string | null | undefined, now: Date): string {
  const t = at ? Date.parse(at) : NaN;
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
