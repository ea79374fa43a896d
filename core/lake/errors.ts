/**
 * Failures of the lake's ports. Commit failures are the ones callers act on:
 * a conflict means "reload and retry", an unknown state means "the commit may
 * or may not have happened: never delete the files it referenced".
 */
export type LakeErrorCode =
  | 'COMMIT_CONFLICT'
  | 'COMMIT_STATE_UNKNOWN'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'CATALOG_ERROR'
  | 'STORE_ERROR'
  | 'CORRUPT_METADATA'
  /** The lake holds seqs the buffer never handed out: the buffer was replaced (see Lake.flush). */
  | 'BUFFER_BEHIND_LAKE';

export class LakeError extends Error {
  readonly code: LakeErrorCode;
  constructor(code: LakeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LakeError';
    this.code = code;
  }
}

export function isLakeError(e: unknown, code?: LakeErrorCode): e is LakeError {
  return e instanceof LakeError && (code === undefined || e.code === code);
}
