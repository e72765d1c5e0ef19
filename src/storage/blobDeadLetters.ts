/**
 * Dead letters in Azure Blob Storage: one JSON blob per (record, destination, status), named and laid out as
 * `deadLetterEntry.ts` describes, in container `deadletter` by default.
 *
 * Writes overwrite: a batch that runs again writes the same names, so a re-run never duplicates letters
 * (and a letter written again starts its re-drive afresh: its metadata is replaced).
 * When the store cannot be written `put` rejects with a {@link StoreError} naming the container (never the
 * connection string or key), and the caller must not acknowledge the batch.
 *
 * Re-drive (see `deadLetterStore.ts`): the backlog is listed with metadata and no body; the re-drive state
 * lives in the blob's metadata, written with `ifMatch: <etag>`, so of two re-drivers that listed the same
 * letter exactly one takes it (the other's write fails with 412 and it leaves the letter). Expired letters
 * are uploaded to `expired/<name>` and the original deleted, again under its etag.
 */
import type { StorageRetryOptions } from '@azure/storage-blob';
import type { DeadLetter, DeadLetterSink } from '../delivery/contracts.js';
import { connectContainer, LazyContainer, type BlobConnection, type CreatableContainerLike } from './blobContainer.js';
import {
  DEAD_LETTER_CONTENT_TYPE,
  deadLetterBlobMetadata,
  deadLetterBlobName,
  deadLetteredAtOf,
  deadLetterNamePrefix,
  destinationMetadataValue,
  encodeDeadLetter,
  EXPIRED_PREFIX,
  isExpiredLetterName,
  isLiveLetterName,
  parseDeadLetter,
  readRedriveMetadata,
  withRedriveMetadata,
  type RedriveState,
} from './deadLetterEntry.js';
import type { DeadLetterListing, DeadLetterListOptions, DeadLetterRead, DeadLetterStore } from './deadLetterStore.js';
import { blobStoreError, failureFacts, StoreError } from './storeError.js';

/** Container used when none is configured. */
export const DEFAULT_DEAD_LETTER_CONTAINER = 'deadletter';

/** Options of one upload: the subset of the SDK's `BlockBlobUploadOptions` the store sets. */
export interface DeadLetterUploadOptions {
  readonly blobHTTPHeaders: { readonly blobContentType: string };
  readonly metadata: Record<string, string>;
}

/** A write or read that applies only while the blob is still the version the caller holds. */
export interface IfMatch {
  readonly conditions: { readonly ifMatch: string };
}

/** The part of a `BlockBlobClient` the store uses. */
export interface DeadLetterBlobLike {
  /** Creates or overwrites the blob with `body` (`contentLength` bytes). */
  upload(body: Buffer, contentLength: number, options: DeadLetterUploadOptions): Promise<unknown>;
  /** Replaces the blob's metadata; answers the new ETag. */
  setMetadata(metadata: Record<string, string>, options: IfMatch): Promise<{ etag?: string }>;
  downloadToBuffer(offset: number, count: undefined, options: IfMatch): Promise<Buffer>;
  delete(options: IfMatch): Promise<unknown>;
}

/** One blob of a listing, as the SDK's `BlobItem` has it. */
export interface DeadLetterBlobItemLike {
  readonly name: string;
  readonly properties: { readonly etag?: string; readonly createdOn?: Date; readonly lastModified: Date };
  readonly metadata?: Record<string, string>;
}

/** The part of a `ContainerClient` the store uses; a `ContainerClient` satisfies it. */
export interface DeadLetterContainerLike extends CreatableContainerLike {
  getBlockBlobClient(blobName: string): DeadLetterBlobLike;
  /** Pages through the container (the SDK asks for up to 5 000 names a request). */
  listBlobsFlat(options: { prefix?: string; includeMetadata: boolean }): AsyncIterable<DeadLetterBlobItemLike>;
}

export interface BlobDeadLetterStoreOptions {
  /** Create the container before the first write when it is missing (default true); see `LazyContainer`. */
  readonly createContainerIfMissing?: boolean;
}

/** Keeps dead letters as JSON blobs. See the module comment for names and failure behaviour. */
export class BlobDeadLetterStore implements DeadLetterSink, DeadLetterStore {
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

  /** `container "<name>"`. */
  get location(): string {
    return `container "${this.#container.containerName}"`;
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

  /**
   * Lists letters with their metadata, no body downloaded, in name order. A container that does not exist
   * yet lists nothing; any other failure rejects with a {@link StoreError}.
   */
  async *list(options: DeadLetterListOptions = {}): AsyncGenerator<DeadLetterListing> {
    const destinationPrefix = options.destination !== undefined ? deadLetterNamePrefix(options.destination) : '';
    const prefix = options.expired === true ? `${EXPIRED_PREFIX}${destinationPrefix}` : destinationPrefix;
    const keep = options.expired === true ? isExpiredLetterName : isLiveLetterName;
    // Two destinations may slug to the same prefix: the metadata tells them apart.
    const destination = options.destination !== undefined ? destinationMetadataValue(options.destination) : undefined;
    const pages = this.#container.listBlobsFlat({ ...(prefix !== '' ? { prefix } : {}), includeMetadata: true })[Symbol.asyncIterator]();
    for (;;) {
      let step: IteratorResult<DeadLetterBlobItemLike>;
      try {
        step = await pages.next();
      } catch (error: unknown) {
        // No container yet: nothing was ever dead-lettered.
        if (failureFacts(error).statusCode === 404) return;
        throw blobStoreError('dead-letter', this.#container, `cannot list${prefix !== '' ? ` "${prefix}"` : ''}`, prefix, error);
      }
      if (step.done === true) return;
      const item = step.value;
      if (!keep(item.name)) continue;
      const metadata = item.metadata ?? {};
      if (destination !== undefined && metadata['destination'] !== destination) continue;
      yield this.#listing(item.name, metadata, this.#etag(item.properties.etag, item.name, 'list'), item.properties.createdOn);
    }
  }

  /** Downloads and parses the letter, if it is still the version listed. */
  async read(entry: DeadLetterListing): Promise<DeadLetterRead> {
    const body = await this.#download(entry, 'read');
    if (body === undefined) return { status: 'gone' };
    const parsed = parseDeadLetter(body.toString('utf8'));
    return parsed.ok ? { status: 'ok', letter: parsed.letter } : { status: 'unreadable', problem: parsed.problem };
  }

  /** Writes the re-drive state into the blob's metadata under `ifMatch: <etag>`; undefined on 404 or 412. */
  async recordAttempt(entry: DeadLetterListing, state: RedriveState): Promise<DeadLetterListing | undefined> {
    const blob = this.#container.getBlockBlobClient(entry.name);
    const metadata = withRedriveMetadata(entry.metadata, state);
    let etag: string | undefined;
    try {
      etag = (await blob.setMetadata(metadata, { conditions: { ifMatch: entry.version } })).etag;
    } catch (error: unknown) {
      if (lostTheRace(error)) return undefined;
      throw blobStoreError('dead-letter', this.#container, `cannot record a re-drive attempt of "${entry.name}"`, entry.name, error);
    }
    return this.#listing(entry.name, metadata, this.#etag(etag, entry.name, 'record a re-drive attempt of'), entry.deadLetteredAt);
  }

  /** Deletes the blob under `ifMatch: <etag>`; false on 404 or 412. */
  async delete(entry: DeadLetterListing): Promise<boolean> {
    try {
      await this.#container.getBlockBlobClient(entry.name).delete({ conditions: { ifMatch: entry.version } });
      return true;
    } catch (error: unknown) {
      if (lostTheRace(error)) return false;
      throw blobStoreError('dead-letter', this.#container, `cannot delete "${entry.name}"`, entry.name, error);
    }
  }

  /**
   * Uploads the letter to `expired/<name>` with `state` in its metadata, then deletes the original under its
   * etag. Should the original have changed in between, the copy is removed again and the letter stays live.
   */
  async expire(entry: DeadLetterListing, state: RedriveState): Promise<boolean> {
    const body = await this.#download(entry, 'expire');
    if (body === undefined) return false;
    const target = `${EXPIRED_PREFIX}${entry.name}`;
    const copy = this.#container.getBlockBlobClient(target);
    try {
      await copy.upload(body, body.byteLength, {
        blobHTTPHeaders: { blobContentType: DEAD_LETTER_CONTENT_TYPE },
        metadata: withRedriveMetadata(entry.metadata, state),
      });
    } catch (error: unknown) {
      throw blobStoreError('dead-letter', this.#container, `cannot expire "${entry.name}": cannot write "${target}"`, target, error);
    }
    if (await this.delete(entry)) return true;
    await copy.delete({ conditions: { ifMatch: '*' } }).catch(() => undefined);
    return false;
  }

  /** The body, if the blob is still the version listed; undefined on 404 or 412. */
  async #download(entry: DeadLetterListing, verb: string): Promise<Buffer | undefined> {
    try {
      return await this.#container.getBlockBlobClient(entry.name).downloadToBuffer(0, undefined, { conditions: { ifMatch: entry.version } });
    } catch (error: unknown) {
      if (lostTheRace(error)) return undefined;
      throw blobStoreError('dead-letter', this.#container, `cannot ${verb} "${entry.name}": cannot read it`, entry.name, error);
    }
  }

  #listing(name: string, metadata: Readonly<Record<string, string>>, version: string, createdOn: Date | undefined): DeadLetterListing {
    return {
      name,
      destination: metadata['destination'] ?? (name.startsWith(EXPIRED_PREFIX) ? name.slice(EXPIRED_PREFIX.length) : name).split('/')[0] ?? 'unknown',
      reason: metadata['reason'] ?? 'unknown',
      deadLetteredAt: deadLetteredAtOf(metadata) ?? createdOn,
      redrive: readRedriveMetadata(metadata),
      metadata,
      version,
    };
  }

  /** Conditional writes need the ETag; a store that answers without one is refused, not guessed at. */
  #etag(etag: string | undefined, name: string, verb: string): string {
    if (etag !== undefined && etag !== '') return etag;
    throw new StoreError(
      `dead-letter store refused the request: ${this.location}: cannot ${verb} "${name}": the store answered without an ETag`,
      this.location,
      name,
      false,
      undefined,
    );
  }
}

/** 404: the letter is gone; 412: it changed since it was listed (another re-driver, or a re-run wrote it). */
function lostTheRace(error: unknown): boolean {
  const status = failureFacts(error).statusCode;
  return status === 404 || status === 412;
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
