// Small regular-expression builders for Caddy matchers (Go RE2 syntax, which JavaScript also reads).

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A regex matching the decimal integers strictly greater than `n` (leading zeros allowed), used on
 * Content-Length: Caddy has no numeric header matcher, and a declared oversize body must get 413 before proxying.
 */
export function greaterThanRegex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`greaterThanRegex needs a non-negative integer, got ${n}`);
  const digits = String(n);
  const k = digits.length;
  // Any number with more significant digits than n.
  const options = [`[1-9]\\d{${k},}`];
  // Same length: equal up to position i, then a larger digit, then anything.
  for (let i = 0; i < k; i++) {
    const d = Number(digits[i]);
    if (d === 9) continue;
    const rest = k - i - 1;
    const larger = d === 8 ? '9' : `[${d + 1}-9]`;
    options.push(`${digits.slice(0, i)}${larger}${rest > 0 ? `\\d{${rest}}` : ''}`);
  }
  return `^0*(?:${options.join('|')})$`;
}
