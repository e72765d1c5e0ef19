/**
 * The one error a quarantine store rejects with. Whatever the cause, the record is NOT stored: the caller must
 * not acknowledge the batch (the Functions handler throws so its retry policy re-runs the batch).
 */
export class QuarantineStoreError extends Error {
  override readonly name = 'QuarantineStoreError';

  /**
   * @param message - Names the store (container or folder) and the entry, says what went wrong.
   * @param store - `container "quarantine"` or `folder "/path"`: where the entry should have gone.
   * @param entryName - The store-relative name of the entry (`2025/01/31/0-1234.json`).
   * @param unreachable - True when the store could not be reached at all (network, DNS, timeout), false
   *   when it answered and refused (HTTP status, file system error).
   * @param cause - The SDK or file-system error, kept as is.
   */
  constructor(
    message: string,
    readonly store: string,
    readonly entryName: string,
    readonly unreachable: boolean,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/** What is worth saying about a failure from the storage SDK or the file system, read without trusting it. */
export interface FailureFacts {
  /** HTTP status when the service answered; undefined when no answer came. */
  readonly statusCode: number | undefined;
  /** The SDK's or the system's error code (`ContainerNotFound`, `ECONNREFUSED`, `EACCES`), when given. */
  readonly code: string | undefined;
  readonly message: string;
}

/** Reads `statusCode`, `code` and `message` off any thrown value (RestError, SystemError, anything). */
export function failureFacts(error: unknown): FailureFacts {
  const record: Record<string, unknown> = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
  const statusCode = typeof record['statusCode'] === 'number' ? record['statusCode'] : undefined;
  const code = typeof record['code'] === 'string' && record['code'] !== '' ? record['code'] : undefined;
  const message = error instanceof Error ? error.message : String(error);
  // Storage errors carry the whole XML answer in the message; the first line is what people need.
  const firstLine = message.split('\n', 1)[0]?.trim() ?? '';
  return { statusCode, code, message: firstLine === '' ? (code ?? 'unknown error') : firstLine };
}
