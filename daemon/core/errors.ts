// Typed errors: callers branch on `code`, never on the message.

export type ErrorCode =
  | 'INVALID_MANIFEST'
  | 'INVALID_CONFIG'
  | 'GIT'
  | 'POSTGRES_UNREACHABLE'
  | 'PROVISION'
  | 'SECRET_MISSING'
  | 'SECRET_STORE'
  | 'DRIVER'
  | 'DRIVER_UNREACHABLE'
  | 'IMAGE_MISSING'
  | 'GATEWAY'
  | 'HEALTH'
  | 'USAGE'
  | 'UNKNOWN_COMPONENT'
  | 'DELETE_GUARD'
  | 'DAEMON_UNREACHABLE'
  | 'API'
  | 'BACKUP'
  | 'RESTORE';

export class FleetError extends Error {
  readonly code: ErrorCode;
  readonly project?: string;

  constructor(code: ErrorCode, message: string, opts: { project?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FleetError';
    this.code = code;
    this.project = opts.project;
  }
}

export function isFleetError(err: unknown, code?: ErrorCode): err is FleetError {
  return err instanceof FleetError && (code === undefined || err.code === code);
}

/** A message safe to show a user: never a stack trace. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
