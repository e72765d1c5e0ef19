/**
 * What the ledger and the dead-letter store share about reaching a blob container: the connection options,
 * the SDK retry settings, and creating the container once, lazily.
 */
import { BlobServiceClient, type ContainerClient, type StorageRetryOptions } from '@azure/storage-blob';
import {
  DEFAULT_QUARANTINE_RETRY_OPTIONS,
  containerNameProblem,
  type BlobQuarantineConnection,
} from './blobQuarantine.js';
import { failureFacts } from './quarantineStoreError.js';
import type { ForwarderStorage } from '../config/appSettings.js';
import { blobStoreError, type ContainerIdentity, type StorePurpose } from './storeError.js';

/** How to reach the storage account: a connection string, or an account URL and a credential. */
export type BlobConnection = BlobQuarantineConnection;

/**
 * Retries the SDK makes inside one call before it rejects: the quarantine's table (3 tries of at most 15 s,
 * 0 s then 0.5 s apart), for the same reason: a refused connection fails in about half a second and the
 * Functions retry policy re-runs the batch, instead of one invocation holding its partition for minutes.
 */
export const DEFAULT_STORE_RETRY_OPTIONS: Readonly<StorageRetryOptions> = DEFAULT_QUARANTINE_RETRY_OPTIONS;

/**
 * A `ContainerClient` for `containerName`, with {@link DEFAULT_STORE_RETRY_OPTIONS} under `retryOptions`.
 * Sends nothing.
 *
 * @throws RangeError when `containerName` is not a valid container name (the message names the store).
 */
export function connectContainer(
  purpose: StorePurpose,
  connection: BlobConnection,
  containerName: string,
  retryOptions: StorageRetryOptions | undefined,
): ContainerClient {
  const problem = containerNameProblem(containerName);
  if (problem !== undefined) throw new RangeError(`${purpose} container name "${containerName}" ${problem}`);
  const clientOptions = { retryOptions: { ...DEFAULT_STORE_RETRY_OPTIONS, ...retryOptions } };
  const service =
    'connectionString' in connection
      ? BlobServiceClient.fromConnectionString(connection.connectionString, clientOptions)
      : new BlobServiceClient(connection.accountUrl, connection.credential, clientOptions);
  return service.getContainerClient(containerName);
}

/**
 * How to reach the account the settings name: the connection string, or the account URL with an Entra ID
 * credential (`DefaultAzureCredential`; `clientId` picks a user-assigned managed identity).
 */
export async function blobConnectionOf(storage: ForwarderStorage): Promise<BlobConnection> {
  if (storage.kind === 'connectionString') return { connectionString: storage.connectionString };
  // Loaded only for identity-based storage: the identity library is large.
  const { DefaultAzureCredential } = await import('@azure/identity');
  const credential = new DefaultAzureCredential(storage.clientId !== undefined ? { managedIdentityClientId: storage.clientId } : {});
  return { accountUrl: storage.accountUrl, credential };
}

/** A container that may be created on first use; a `ContainerClient` satisfies it. */
export interface CreatableContainerLike extends ContainerIdentity {
  createIfNotExists?(): Promise<unknown>;
}

/**
 * Creates the container once, before the first call that needs it. Concurrent first calls share one
 * request; a failed request is tried again by the next call. A 403 answer (a SAS or a role that may write
 * blobs but not create containers) is not an error: the next blob call says whether the container exists.
 */
export class LazyContainer {
  #ready: Promise<void> | undefined;

  constructor(
    private readonly purpose: StorePurpose,
    private readonly container: CreatableContainerLike,
    private readonly enabled: boolean,
  ) {}

  /** Resolves once the container exists (or creation is off); rejects with a `StoreError` naming `entryName`. */
  ensure(entryName: string): Promise<void> {
    const create = this.container.createIfNotExists;
    if (!this.enabled || create === undefined) return Promise.resolve();
    this.#ready ??= create.call(this.container).then(
      () => undefined,
      (error: unknown) => {
        if (failureFacts(error).statusCode === 403) return;
        this.#ready = undefined;
        throw blobStoreError(this.purpose, this.container, 'cannot create the container', entryName, error);
      },
    );
    return this.#ready;
  }
}
