// Fresh secret material for new projects: JWT secrets and database passwords.
import { randomBytes, randomInt } from 'node:crypto';

/** `bytes` random bytes as base64url (32 bytes → 43 characters, 256 bits). */
export function generateSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 16) throw new RangeError(`generateSecret needs at least 16 bytes, got ${bytes}`);
  return randomBytes(bytes).toString('base64url');
}

// Letters and digits only: nothing to escape in a postgres:// URL, a libpq key=value string or a shell.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A password of `length` letters and digits (default 32 → about 190 bits), chosen without modulo bias. */
export function generatePassword(length = 32): string {
  if (!Number.isInteger(length) || length < 16) throw new RangeError(`generatePassword needs at least 16 characters, got ${length}`);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}
