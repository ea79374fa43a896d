/**
 * Every failure LakeSync reports carries a stable string `code`. The same code
 * appears on the wire (error envelope), in logs and in metrics, so clients can
 * branch on it and dashboards can count it.
 */
export const ErrorCodes = {
  // 400: the request itself is malformed
  MALFORMED_BODY: 400,
  UNSUPPORTED_CONTENT_TYPE: 415,
  BODY_TOO_LARGE: 413,
  TOO_MANY_DELTAS: 413,
  INVALID_REQUEST: 400,
  INVALID_CURSOR: 400,
  UNKNOWN_TABLE: 400,
  UNKNOWN_COLUMN: 400,
  INVALID_VALUE: 400,
  DELTA_ID_MISMATCH: 400,
  CLOCK_DRIFT: 400,
  SCHEMA_VERSION_MISMATCH: 409,
  STAMP_REUSED: 409,
  // 401/403: who is asking
  UNAUTHENTICATED: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_INVALID: 401,
  CLIENT_ID_MISMATCH: 403,
  FORBIDDEN: 403,
  RULE_VIOLATION: 403,
  NOT_FOUND: 404,
  ROW_NOT_FOUND: 404,
  /** No checkpoint has been built yet: pull from the start instead. */
  NO_CHECKPOINT: 404,
  /** The pull cursor is older than the buffer keeps: load the checkpoint, then pull from its cursor. */
  CURSOR_EXPIRED: 410,
  /** The checkpoint being loaded was replaced and collected: start again from the newest one. */
  CHECKPOINT_EXPIRED: 410,
  METHOD_NOT_ALLOWED: 405,
  RATE_LIMITED: 429,
  // 5xx: our side
  CONFLICT_RETRY_EXHAUSTED: 503,
  AUTH_UNAVAILABLE: 503,
  /** The server holds as many live-updates connections as it allows: retry later (or sync by polling). */
  TOO_MANY_CONNECTIONS: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class LakeSyncError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Index of the offending delta in a push batch, when there is one. */
  readonly deltaIndex: number;

  constructor(code: ErrorCode, message: string, options: { deltaIndex?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LakeSyncError';
    this.code = code;
    this.status = ErrorCodes[code];
    this.deltaIndex = options.deltaIndex ?? -1;
  }
}

export function isLakeSyncError(e: unknown): e is LakeSyncError {
  return e instanceof LakeSyncError;
}

/** A push with more deltas than the limit: one error for the gateway and both decoders, which check early. */
export function tooManyDeltas(max: number): LakeSyncError {
  return new LakeSyncError('TOO_MANY_DELTAS', `at most ${max} deltas per push`);
}
