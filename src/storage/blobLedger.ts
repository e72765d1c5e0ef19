/**
 * The notification ledger in Azure Blob Storage, shared by every Function instance and run: one small JSON
 * blob per dedupe key (named as `ledgerEntry.ts` describes) in container `ledger` by default.
 *
 * Every write is conditional, so two writers never both win:
 * - `claim` creates the entry with `ifNoneMatch: "*"`. When it exists (409, or 412) the entry is read:
 *   `sent` or a pending claim within its lease means no; a pending claim past its lease (a crashed run)
 *   is taken over with `ifMatch: <the etag read>`, and a 412 there means another instance took it first.
 * - `confirm` rewrites this ledger's own claim as `sent` with `ifMatch: <the etag of the claim>`; a 412
 *   means the claim was taken over after its lease ran out, and the entry is the new claimer's to settle.
 * - `release` deletes this ledger's own claim with `ifMatch: <its etag>`; 404 and 412 mean it is gone or
 *   no longer ours, which is what release wants.
 * The etags of the claims this object made are kept in memory (bounded), so confirm and release must be
 * called on the ledger object that claimed: without a claim of its own, `confirm` overwrites the entry as
 * sent and `release` does nothing (the entry may be another run's claim).
 *
 * A store that cannot be reached or refuses makes the call reject with a {@link StoreError} naming the
 * container (never the connection string or key): the caller must not acknowledge the batch.
 */
import type { StorageRetryOptions } from '@azure/storage-blob';
import type { ClaimOutcome, DeliveryLedger } from '../delivery/contracts.js';
import { connectContainer, LazyContainer, type BlobConnection, type CreatableContainerLike } from './blobContainer.js';
import {
  encodeLedgerDocument,
  judgeEntry,
  leaseOf,
  ledgerBlobName,
  newClaim,
  OwnClaims,
  parseLedgerDocument,
  sentEntry,
  type LedgerDocument,
  type LedgerOptions,
} from './ledgerEntry.js';
import { failureFacts } from './quarantineStoreError.js';
import { blobStoreError, StoreError } from './storeError.js';

/** Container used when none is configured. */
export const DEFAULT_LEDGER_CONTAINER = 'ledger';

/**
 * Create-or-read rounds one `claim` makes before giving up: an entry released between our failed create
 * and our read sends us back to the create. Three rounds in a row means the key is being claimed and
 * released as fast as we look; that is reported, not guessed at.
 */
const MAX_CLAIM_ROUNDS = 3;

/** Options of one upload: the subset of the SDK's `BlockBlobUploadOptions` the ledger sets. */
export interface LedgerUploadOptions {
  readonly conditions?: { readonly ifNoneMatch?: string; readonly ifMatch?: string };
  readonly blobHTTPHeaders: { readonly blobContentType: string };
  readonly metadata: Record<string, string>;
}

/** The part of a `BlockBlobClient` the ledger uses. */
export interface LedgerBlobLike {
  upload(body: Buffer, contentLength: number, options: LedgerUploadOptions): Promise<{ etag?: string }>;
  download(): Promise<{ etag?: string; lastModified?: Date; readableStreamBody?: NodeJS.ReadableStream }>;
  delete(options: { readonly conditions: { readonly ifMatch: string } }): Promise<unknown>;
}

/** The part of a `ContainerClient` the ledger uses; a `ContainerClient` satisfies it. */
export interface LedgerContainerLike extends CreatableContainerLike {
  getBlockBlobClient(blobName: string): LedgerBlobLike;
}

export interface BlobLedgerOptions extends LedgerOptions {
  /** Create the container before the first call when it is missing (default true); see `LazyContainer`. */
  readonly createContainerIfMissing?: boolean;
}

/** A claim this ledger made: what it wrote and the etag the store gave it. */
interface OwnClaim {
  readonly document: LedgerDocument;
  readonly etag: string;
}

/** An entry as read: its document (undefined when unreadable), etag and last-modified time. */
interface ReadEntry {
  readonly document: LedgerDocument | undefined;
  readonly etag: string;
  readonly lastModified: Date | undefined;
}

/** The notification ledger as blobs. See the module comment for the protocol. */
export class BlobLedger implements DeliveryLedger {
  readonly #container: LedgerContainerLike;
  readonly #lazy: LazyContainer;
  readonly #leaseMs: number;
  readonly #now: () => Date;
  readonly #own = new OwnClaims<OwnClaim>();

  /** @throws RangeError when `leaseMs` is not a positive number. */
  constructor(container: LedgerContainerLike, options: BlobLedgerOptions = {}) {
    this.#container = container;
    this.#lazy = new LazyContainer('ledger', container, options.createContainerIfMissing ?? true);
    this.#leaseMs = leaseOf(options);
    this.#now = options.now ?? (() => new Date());
  }

  /** The container's name. */
  get containerName(): string {
    return this.#container.containerName;
  }

  /**
   * True when this caller may notify: the entry was created, or a stale pending claim was taken over.
   * False when the key was sent, is being sent (a pending claim within its lease), or another caller won
   * the race. Rejects with a {@link StoreError} when the store fails.
   */
  async claim(key: string): Promise<boolean> {
    return (await this.claimOutcome(key)) === 'claimed';
  }

  /**
   * `claim`, saying why not: `sent` (a duplicate) or `held` (another run's claim within its lease: it may
   * be sending now, or may have crashed).
   */
  async claimOutcome(key: string): Promise<ClaimOutcome> {
    const name = ledgerBlobName(key);
    await this.#lazy.ensure(name);
    const blob = this.#container.getBlockBlobClient(name);
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round += 1) {
      const created = await this.#write(blob, newClaim(key, this.#now()), { ifNoneMatch: '*' }, name, 'claim');
      if (created !== undefined) return 'claimed';

      const existing = await this.#read(blob, key, name, 'claim');
      if (existing === undefined) continue; // released in between: try the create again
      const verdict = judgeEntry(existing.document, existing.lastModified, this.#now(), this.#leaseMs);
      if (verdict === 'sent') return 'sent';
      // Held, even when this object made the claim: it may be in flight in another batch of this process.
      if (verdict === 'held') return 'held';

      // A crashed run's claim: take it over only if it is still exactly what we read.
      const takenOver = await this.#write(blob, newClaim(key, this.#now()), { ifMatch: existing.etag }, name, 'claim');
      // A 412: another instance took it over, or its owner settled it after all. Either way, not ours.
      return takenOver !== undefined ? 'claimed' : 'held';
    }
    throw new StoreError(
      `ledger store kept changing: container "${this.#container.containerName}": cannot claim "${name}": ` +
        `the entry was created and removed ${MAX_CLAIM_ROUNDS} times while it was read`,
      `container "${this.#container.containerName}"`,
      name,
      false,
      undefined,
    );
  }

  /**
   * Marks the key `sent`. For a claim this object made, only if the entry is still that claim (after a
   * takeover it is the new claimer's); otherwise the entry is overwritten as sent. Rejects with a
   * {@link StoreError} when the store fails.
   */
  async confirm(key: string): Promise<void> {
    const name = ledgerBlobName(key);
    const own = this.#own.get(key);
    await this.#lazy.ensure(name);
    const blob = this.#container.getBlockBlobClient(name);
    if (own === undefined) {
      await this.#upload(blob, sentEntry(newClaim(key, this.#now()), this.#now()), undefined, name, 'confirm');
      return;
    }
    await this.#write(blob, sentEntry(own.document, this.#now()), { ifMatch: own.etag }, name, 'confirm');
    this.#own.forget(key); // written, or no longer ours: settled either way
  }

  /**
   * Removes this object's claim of the key so that a later run may notify. Without a claim of its own (never
   * claimed here, released already, or forgotten) it does nothing: the entry may be another run's claim, and
   * a pending claim left behind expires with its lease. Resolves when the entry is gone or is not this claim;
   * rejects with a {@link StoreError} when the store fails.
   */
  async release(key: string): Promise<void> {
    const own = this.#own.get(key);
    if (own === undefined) return;
    const name = ledgerBlobName(key);
    const blob = this.#container.getBlockBlobClient(name);
    try {
      await blob.delete({ conditions: { ifMatch: own.etag } });
    } catch (error: unknown) {
      const status = failureFacts(error).statusCode;
      if (status !== 404 && status !== 412) throw blobStoreError('ledger', this.#container, `cannot release "${name}"`, name, error);
    }
    this.#own.forget(key);
  }

  /**
   * A conditional write: resolves with the new etag, or undefined when the condition failed (409 or 412:
   * another writer won). Remembers a pending document written as this object's claim.
   */
  async #write(
    blob: LedgerBlobLike,
    document: LedgerDocument,
    conditions: NonNullable<LedgerUploadOptions['conditions']>,
    name: string,
    verb: string,
  ): Promise<string | undefined> {
    try {
      return await this.#upload(blob, document, conditions, name, verb);
    } catch (error: unknown) {
      if (error instanceof StoreError && !error.unreachable) {
        const status = failureFacts(error.cause).statusCode;
        if (status === 409 || status === 412) return undefined;
      }
      throw error;
    }
  }

  async #upload(
    blob: LedgerBlobLike,
    document: LedgerDocument,
    conditions: LedgerUploadOptions['conditions'],
    name: string,
    verb: string,
  ): Promise<string> {
    const body = Buffer.from(encodeLedgerDocument(document), 'utf8');
    let etag: string | undefined;
    try {
      const response = await blob.upload(body, body.byteLength, {
        ...(conditions !== undefined ? { conditions } : {}),
        blobHTTPHeaders: { blobContentType: 'application/json' },
        metadata: { state: document.state },
      });
      etag = response.etag;
    } catch (error: unknown) {
      throw blobStoreError('ledger', this.#container, `cannot ${verb} "${name}"`, name, error);
    }
    if (etag === undefined) {
      throw new StoreError(
        `ledger store refused the request: container "${this.#container.containerName}": cannot ${verb} "${name}": the store answered without an ETag`,
        `container "${this.#container.containerName}"`,
        name,
        false,
        undefined,
      );
    }
    if (document.state === 'pending') this.#own.remember(document.key, { document, etag });
    return etag;
  }

  /** Reads the entry; undefined when there is none (404). */
  async #read(blob: LedgerBlobLike, key: string, name: string, verb: string): Promise<ReadEntry | undefined> {
    let text: string;
    let etag: string | undefined;
    let lastModified: Date | undefined;
    try {
      const response = await blob.download();
      etag = response.etag;
      lastModified = response.lastModified;
      text = response.readableStreamBody !== undefined ? await readText(response.readableStreamBody) : '';
    } catch (error: unknown) {
      if (failureFacts(error).statusCode === 404) return undefined;
      throw blobStoreError('ledger', this.#container, `cannot ${verb} "${name}": cannot read the entry`, name, error);
    }
    if (etag === undefined) {
      throw new StoreError(
        `ledger store refused the request: container "${this.#container.containerName}": cannot ${verb} "${name}": the entry was read without an ETag`,
        `container "${this.#container.containerName}"`,
        name,
        false,
        undefined,
      );
    }
    return { document: parseLedgerDocument(text, key), etag, lastModified };
  }
}

async function readText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export type CreateBlobLedgerOptions = BlobConnection &
  BlobLedgerOptions & {
    /** Default {@link DEFAULT_LEDGER_CONTAINER}. Must be a valid container name (checked here). */
    readonly containerName?: string;
    /** Merged over `DEFAULT_STORE_RETRY_OPTIONS` (3 tries, 15 s each). */
    readonly retryOptions?: StorageRetryOptions;
  };

/**
 * Creates a {@link BlobLedger} over a real `ContainerClient`. Nothing is sent until the first call, which
 * creates the container when it is missing.
 *
 * @throws RangeError when `containerName` is not a valid container name or `leaseMs` is not positive.
 */
export function createBlobLedger(options: CreateBlobLedgerOptions): BlobLedger {
  const container = connectContainer('ledger', options, options.containerName ?? DEFAULT_LEDGER_CONTAINER, options.retryOptions);
  return new BlobLedger(container, {
    createContainerIfMissing: options.createContainerIfMissing ?? true,
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
}
