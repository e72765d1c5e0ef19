/**
 * Dead letters in Azure Blob Storage: one JSON blob per (record, destination, status), named and laid out as
 * `deadLetterEntry.ts` describes, in container `deadletter` by default.
 *
 * Writes overwrite: a batch that runs again writes the same names, so a re-run never duplicates letters.
 * When the store cannot be written `put` rejects with a {@link StoreError} naming the container (never the
 * connection string or key), and the caller must not acknowledge the batch.
 */
import type { StorageRetryOptions } from '@azure/storage-blob';
import type { DeadLetter, DeadLetterSink } from '../delivery/contracts.js';
import { connectContainer, LazyContainer, type BlobConnection, type CreatableContainerLike } from './blobContainer.js';
import { DEAD_LETTER_CONTENT_TYPE, deadLetterBlobMetadata, deadLetterBlobName, encodeDeadLetter } from './deadLetterEntry.js';
import { blobStoreError, type StoreError } from './storeError.js';

/** Container used when none is configured. */
export const DEFAULT_DEAD_LETTER_CONTAINER = 'deadletter';

/** Options of one upload: the subset of the SDK's `BlockBlobUploadOptions` the store sets. */
export interface DeadLetterUploadOptions {
  readonly blobHTTPHeaders: { readonly blobContentType: string };
  readonly metadata: Record<string, string>;
}

/** The part of a `BlockBlobClient` the store uses. */
export interface DeadLetterBlobLike {
  /** Creates or overwrites the blob with `body` (`contentLength` bytes). */
  upload(body: Buffer, contentLength: number, options: DeadLetterUploadOptions): Promise<unknown>;
}

/** The part of a `ContainerClient` the store uses; a `ContainerClient` satisfies it. */
export interface DeadLetterContainerLike extends CreatableContainerLike {
  getBlockBlobClient(blobName: string): DeadLetterBlobLike;
}

export interface BlobDeadLetterStoreOptions {
  /** Create the container before the first write when it is missing (default true); see `LazyContainer`. */
  readonly createContainerIfMissing?: boolean;
}

/** Keeps dead letters as JSON blobs. See the module comment for names and failure behaviour. */
export class BlobDeadLetterStore implements DeadLetterSink {
  readonly #container: DeadLetterContainerLike;
  readonly #lazy: LazyContainer;

  constructor(container: DeadLetterContainerLike, options: BlobDeadLetterStoreOptions = {}) {
    this.#container = container;
    this.#lazy = new LazyContainer('dead-letter', container, options.createContainerIfMissing ?? true);
  }

  /** The container's name. */
  get containerName(): string {
    return this.#container.containerName;
  }

  /**
   * Stores the letter under {@link deadLetterBlobName}, overwriting an earlier write of the same letter.
   * Resolves once the blob is stored; rejects with a {@link StoreError} otherwise.
   */
  async put(letter: DeadLetter): Promise<void> {
    const blobName = deadLetterBlobName(letter);
    await this.#lazy.ensure(blobName);
    const body = Buffer.from(encodeDeadLetter(letter), 'utf8');
    try {
      await this.#container.getBlockBlobClient(blobName).upload(body, body.byteLength, {
        blobHTTPHeaders: { blobContentType: DEAD_LETTER_CONTENT_TYPE },
        metadata: deadLetterBlobMetadata(letter),
      });
    } catch (error: unknown) {
      throw blobStoreError('dead-letter', this.#container, `cannot write "${blobName}"`, blobName, error);
    }
  }
}

export type CreateBlobDeadLetterStoreOptions = BlobConnection &
  BlobDeadLetterStoreOptions & {
    /** Default {@link DEFAULT_DEAD_LETTER_CONTAINER}. Must be a valid container name (checked here). */
    readonly containerName?: string;
    /** Merged over `DEFAULT_STORE_RETRY_OPTIONS` (3 tries, 15 s each). */
    readonly retryOptions?: StorageRetryOptions;
  };

/**
 * Creates a {@link BlobDeadLetterStore} over a real `ContainerClient`. Nothing is sent until the first `put`,
 * which creates the container when it is missing.
 *
 * @throws RangeError when `containerName` is not a valid container name.
 */
export function createBlobDeadLetterStore(options: CreateBlobDeadLetterStoreOptions): BlobDeadLetterStore {
  const container = connectContainer(
    'dead-letter',
    options,
    options.containerName ?? DEFAULT_DEAD_LETTER_CONTAINER,
    options.retryOptions,
  );
  return new BlobDeadLetterStore(container, { createContainerIfMissing: options.createContainerIfMissing ?? true });
}
