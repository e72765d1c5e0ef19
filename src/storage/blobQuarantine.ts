/**
 * The quarantine in Azure Blob Storage: one JSON blob per quarantined record, named and laid out as
 * `quarantineDocument.ts` describes, in container `quarantine` by default.
 *
 * Writes overwrite: a batch that runs again writes the same names, so a re-run never duplicates entries.
 * When the store cannot be written `put` rejects with a {@link QuarantineStoreError} and the caller must not
 * acknowledge the batch. The SDK's own retries are kept short (see
 * {@link DEFAULT_QUARANTINE_RETRY_OPTIONS}): the Functions retry policy re-runs the whole batch later, which
 * beats holding a partition for minutes inside one invocation.
 */
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type StorageRetryOptions,
} from '@azure/storage-blob';
import type { QuarantineEntry, QuarantineSink } from '../pipeline/quarantine.js';
import {
  QUARANTINE_CONTENT_TYPE,
  encodeQuarantineDocument,
  quarantineBlobMetadata,
  quarantineBlobName,
} from './quarantineDocument.js';
import { QuarantineStoreError, failureFacts } from './quarantineStoreError.js';

/** Container used when none is configured (app setting `QUARANTINE_CONTAINER`). */
export const DEFAULT_QUARANTINE_CONTAINER = 'quarantine';

/**
 * Retries the SDK makes inside one `put` before it rejects: 3 tries of at most 15 s each. The SDK's
 * exponential policy waits (2^(n-1) - 1) x `retryDelayInMs` after try n (capped by `maxRetryDelayInMs`):
 * here 0 s, then 0.5 s. A refused connection thus fails in about 0.5 s (measured), a silent network in
 * about 45 s; both well inside a Functions invocation. The SDK's own default (4 tries, 4 s base delay, no
 * per-try timeout) would hold the partition for minutes before the Functions retry policy could take over.
 */
export const DEFAULT_QUARANTINE_RETRY_OPTIONS: Readonly<StorageRetryOptions> = Object.freeze({
  maxTries: 3,
  retryDelayInMs: 500,
  maxRetryDelayInMs: 4_000,
  tryTimeoutInMs: 15_000,
});

/** Options of one upload: the subset of the SDK's `BlockBlobUploadOptions` the store sets. */
export interface QuarantineUploadOptions {
  readonly blobHTTPHeaders: { readonly blobContentType: string };
  readonly metadata: Record<string, string>;
}

/** The part of a `BlockBlobClient` the store uses. */
export interface QuarantineBlobLike {
  /** Creates or overwrites the blob with `body` (`contentLength` bytes). */
  upload(body: Buffer, contentLength: number, options: QuarantineUploadOptions): Promise<unknown>;
}

/** One blob of a listing, as the SDK's `BlobItem` has it. */
export interface QuarantineBlobItemLike {
  readonly name: string;
  readonly properties: { readonly createdOn?: Date; readonly lastModified: Date };
  readonly metadata?: Record<string, string>;
}

/** The part of a `ContainerClient` the store uses; a `ContainerClient` satisfies it. */
export interface QuarantineContainerLike {
  readonly containerName: string;
  /** The container's URL, shown (without its query string: it may hold a SAS) in error messages. */
  readonly url?: string;
  getBlockBlobClient(blobName: string): QuarantineBlobLike;
  /** When present, called once before the first write (see {@link BlobQuarantineStoreOptions}). */
  createIfNotExists?(): Promise<unknown>;
  /** Needed by {@link BlobQuarantineStore.list} only. */
  listBlobsFlat?(options: { includeMetadata: boolean }): AsyncIterable<QuarantineBlobItemLike>;
}

/** One quarantined record as a listing shows it, without its document. */
export interface QuarantineListing {
  /** Store-relative name (`2025/01/31/0-1234.json`). */
  readonly name: string;
  /** The reason code (`not-json`, `schema`...); `unknown` when the store cannot tell. */
  readonly code: string;
  /** When it was quarantined, as near as the store can tell without reading the document. */
  readonly quarantinedAt: Date | undefined;
}

/** A quarantine that can be listed (for `status`). */
export interface QuarantineBacklog {
  /** `container "quarantine"` or `folder "/path"`. */
  readonly location: string;
  /** Every quarantined record; a store that does not exist yet lists nothing. */
  list(): AsyncIterable<QuarantineListing>;
}

export interface BlobQuarantineStoreOptions {
  /**
   * Create the container before the first write when it is missing (default true). One call per store;
   * a failed call is tried again on the next `put`. A 403 answer (a SAS or a role that may write blobs but
   * not create containers) is not an error: the write itself then says whether the container exists.
   */
  readonly createContainerIfMissing?: boolean;
}

/** Keeps quarantined records as JSON blobs. See the module comment for names and failure behaviour. */
export class BlobQuarantineStore implements QuarantineSink, QuarantineBacklog {
  readonly #container: QuarantineContainerLike;
  readonly #createContainer: boolean;
  #containerReady: Promise<void> | undefined;

  constructor(container: QuarantineContainerLike, options: BlobQuarantineStoreOptions = {}) {
    this.#container = container;
    this.#createContainer = options.createContainerIfMissing ?? true;
  }

  /** The container's name. */
  get containerName(): string {
    return this.#container.containerName;
  }

  /** `container "<name>"`. */
  get location(): string {
    return `container "${this.#container.containerName}"`;
  }

  /**
   * Lists the quarantine from names and metadata (`code`), no document downloaded; the time is the blob's
   * creation time. A container that does not exist yet lists nothing; any other failure rejects with a
   * {@link QuarantineStoreError}.
   */
  async *list(): AsyncGenerator<QuarantineListing> {
    const listBlobsFlat = this.#container.listBlobsFlat;
    if (listBlobsFlat === undefined) throw new TypeError('this quarantine container cannot be listed (no listBlobsFlat)');
    const items = listBlobsFlat.call(this.#container, { includeMetadata: true })[Symbol.asyncIterator]();
    for (;;) {
      let step: IteratorResult<QuarantineBlobItemLike>;
      try {
        step = await items.next();
      } catch (error: unknown) {
        if (failureFacts(error).statusCode === 404) return; // no container yet: nothing was quarantined
        throw this.#storeError('cannot list the container', '', error, 'request');
      }
      if (step.done === true) return;
      const { name, properties, metadata } = step.value;
      if (!name.endsWith('.json')) continue;
      yield { name, code: metadata?.['code'] ?? 'unknown', quarantinedAt: properties.createdOn ?? properties.lastModified };
    }
  }

  /**
   * Stores the entry under {@link quarantineBlobName}, overwriting an earlier write of the same entry.
   * Resolves once the blob is stored; rejects with a {@link QuarantineStoreError} otherwise.
   */
  async put(entry: QuarantineEntry): Promise<void> {
    const blobName = quarantineBlobName(entry);
    await this.#ensureContainer(blobName);
    const body = Buffer.from(encodeQuarantineDocument(entry), 'utf8');
    try {
      await this.#container.getBlockBlobClient(blobName).upload(body, body.byteLength, {
        blobHTTPHeaders: { blobContentType: QUARANTINE_CONTENT_TYPE },
        metadata: quarantineBlobMetadata(entry),
      });
    } catch (error: unknown) {
      throw this.#storeError(`cannot write "${blobName}"`, blobName, error);
    }
  }

  #ensureContainer(blobName: string): Promise<void> {
    const create = this.#container.createIfNotExists;
    if (!this.#createContainer || create === undefined) return Promise.resolve();
    this.#containerReady ??= create.call(this.#container).then(
      () => undefined,
      (error: unknown) => {
        if (failureFacts(error).statusCode === 403) return; // may write blobs without creating containers
        this.#containerReady = undefined; // try again on the next put
        throw this.#storeError('cannot create the container', blobName, error);
      },
    );
    return this.#containerReady;
  }

  #storeError(what: string, blobName: string, error: unknown, refused: 'write' | 'request' = 'write'): QuarantineStoreError {
    const facts = failureFacts(error);
    const store = `container "${this.#container.containerName}"`;
    const where = this.#container.url !== undefined ? ` at ${withoutQuery(this.#container.url)}` : '';
    const unreachable = facts.statusCode === undefined;
    const message = unreachable
      ? `quarantine store unreachable: ${store}${where}: ${what}: ${facts.message}`
      : `quarantine store refused the ${refused}: ${store}${where}: ${what}: HTTP ${facts.statusCode}` +
        `${facts.code !== undefined ? ` ${facts.code}` : ''}: ${facts.message}`;
    return new QuarantineStoreError(message, store, blobName, unreachable, error);
  }
}

/**
 * What `@azure/identity` credentials look like to the SDK (`TokenCredential` of `@azure/core-auth`), declared
 * here so the project does not import a package it does not depend on.
 */
export interface TokenCredentialLike {
  getToken(
    scopes: string | string[],
    options?: unknown,
  ): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

/** How to reach the storage account: a connection string, or an account URL and a credential. */
export type BlobQuarantineConnection =
  | { readonly connectionString: string }
  | {
      /** `https://<account>.blob.core.windows.net` (a SAS may follow, with an `AnonymousCredential`). */
      readonly accountUrl: string;
      readonly credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredentialLike;
    };

export type CreateBlobQuarantineStoreOptions = BlobQuarantineConnection & {
  /** Default {@link DEFAULT_QUARANTINE_CONTAINER}. Must be a valid container name (checked here). */
  readonly containerName?: string;
  /** Merged over {@link DEFAULT_QUARANTINE_RETRY_OPTIONS}. */
  readonly retryOptions?: StorageRetryOptions;
  /** Default true; see {@link BlobQuarantineStoreOptions.createContainerIfMissing}. */
  readonly createContainerIfMissing?: boolean;
};

/**
 * Creates a {@link BlobQuarantineStore} over a real `ContainerClient`. Nothing is sent until the first `put`,
 * which creates the container when it is missing.
 *
 * @throws RangeError when `containerName` is not a valid container name.
 */
export function createBlobQuarantineStore(options: CreateBlobQuarantineStoreOptions): BlobQuarantineStore {
  const containerName = options.containerName ?? DEFAULT_QUARANTINE_CONTAINER;
  const problem = containerNameProblem(containerName);
  if (problem !== undefined) throw new RangeError(`quarantine container name "${containerName}" ${problem}`);
  const clientOptions = { retryOptions: { ...DEFAULT_QUARANTINE_RETRY_OPTIONS, ...options.retryOptions } };
  const service =
    'connectionString' in options
      ? BlobServiceClient.fromConnectionString(options.connectionString, clientOptions)
      : new BlobServiceClient(options.accountUrl, options.credential, clientOptions);
  return new BlobQuarantineStore(service.getContainerClient(containerName), {
    createContainerIfMissing: options.createContainerIfMissing ?? true,
  });
}

/** Why `name` is not a valid blob container name (Azure's rules), or undefined when it is. */
export function containerNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `must be 3 to 63 characters long (it has ${name.length})`;
  if (!/^[a-z0-9-]+$/.test(name)) return 'may hold only lower-case letters, digits and hyphens';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must start and end with a letter or a digit';
  if (name.includes('--')) return 'must not hold two hyphens in a row';
  return undefined;
}

function withoutQuery(url: string): string {
  const at = url.search(/[?#]/);
  return at === -1 ? url : url.slice(0, at);
}
