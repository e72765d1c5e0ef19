/**
 * The error every store (quarantine, notification ledger, dead letters) rejects with, how its message is
 * built, and what is worth reading from a storage or file-system failure. The quarantine's
 * `QuarantineStoreError` is a StoreError with its own name.
 */

/** Which store failed, as its messages name it. */
export type StorePurpose = 'ledger' | 'dead-letter';

/**
 * Whatever the cause, the operation did NOT take effect: a claim is not made, a dead letter is not stored.
 * The caller must not acknowledge the batch (the Functions handler throws so its retry policy re-runs it).
 */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';

  /**
   * @param message - Names the store (container or folder) and the entry, says what went wrong. Never holds
   *   a connection string, an account key or a SAS.
   * @param store - `container "ledger"` or `folder "/path"`.
   * @param entryName - The store-relative name of the entry (`v1/ab/ab12....json`, `teams-soc/2025/...`).
   * @param unreachable - True when the store could not be reached at all (network, DNS, timeout), false
   *   when it answered and refused (HTTP status, file-system error) or held something unexpected.
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

/** Where a blob store lives, for messages: the container's name and URL (the query string is dropped). */
export interface ContainerIdentity {
  readonly containerName: string;
  readonly url?: string;
}

/**
 * A {@link StoreError} for a failed call to a blob container:
 * `ledger store unreachable: container "ledger" at http://host/account/ledger: cannot claim "v1/...": ECONNREFUSED`
 * or `... store refused the request: ...: HTTP 403 AuthorizationFailure: ...`.
 */
export function blobStoreError(
  purpose: StorePurpose,
  container: ContainerIdentity,
  what: string,
  entryName: string,
  error: unknown,
): StoreError {
  const facts = failureFacts(error);
  const store = `container "${container.containerName}"`;
  const where = container.url !== undefined ? ` at ${withoutQuery(container.url)}` : '';
  const unreachable = facts.statusCode === undefined;
  const message = unreachable
    ? `${purpose} store unreachable: ${store}${where}: ${what}: ${facts.message}`
    : `${purpose} store refused the request: ${store}${where}: ${what}: HTTP ${facts.statusCode}` +
      `${facts.code !== undefined ? ` ${facts.code}` : ''}: ${facts.message}`;
  return new StoreError(message, store, entryName, unreachable, error);
}

/**
 * A {@link StoreError} for a failed file-system call:
 * `ledger store refused the request: folder "/state/ledger": cannot claim "ab/ab12....json": EACCES: ...`.
 */
export function folderStoreError(purpose: StorePurpose, folder: string, what: string, entryName: string, error: unknown): StoreError {
  const store = `folder "${folder}"`;
  return new StoreError(`${purpose} store refused the request: ${store}: ${what}: ${failureFacts(error).message}`, store, entryName, false, error);
}

/** A URL without its query string and fragment (a SAS token travels in the query). */
export function withoutQuery(url: string): string {
  const at = url.search(/[?#]/);
  return at === -1 ? url : url.slice(0, at);
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
