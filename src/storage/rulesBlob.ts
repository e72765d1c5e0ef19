/**
 * Reads the routing rules from a blob (`ROUTES_BLOB_URL`), for the rules source (src/routing/rulesSource.ts).
 *
 * How a change is noticed: ONE conditional GET (`If-None-Match: <the ETag last read>`) per check. An unchanged
 * blob answers 304 with no body; a changed one answers 200 with the new text and its ETag in the same
 * response. This was chosen over "Get Blob Properties, then download when the ETag differs" because it is one
 * request in both cases instead of two on a change, and the text and the ETag cannot disagree (with two
 * requests the blob may change between them, and the ETag kept would not be the text's).
 *
 * Authentication, in this order:
 * 1. a SAS in the URL's query string: the URL is used as it is, with no other credential;
 * 2. the forwarder's storage identity (`...__accountName` / `...__blobServiceUri` settings): the URL with
 *    `DefaultAzureCredential`; the blob may be in any account where the identity may read blobs;
 * 3. the forwarder's storage connection string: the blob must then be in that connection's account (a key or
 *    SAS signs for its own account only); its container and blob names are taken from the URL and reached
 *    through `BlobServiceClient.fromConnectionString(...)`.
 *
 * Nothing here ever puts the URL's query string (the SAS) in a message: the URL is shown through
 * {@link maskBlobUrl}, and SDK messages are scrubbed of it.
 */
import { createHash } from 'node:crypto';
import { AnonymousCredential, BlobClient, BlobServiceClient, type StorageRetryOptions } from '@azure/storage-blob';
import { redact, redactCredentials, REDACTED, Secret } from '../config/secret.js';
import type { RulesRead, RulesReader } from '../routing/rulesSource.js';
import type { BlobConnection } from './blobContainer.js';
import { failureFacts, withoutQuery } from './storeError.js';

/**
 * Largest rules blob read: rules files are a few kilobytes; a blob over this size is refused (as a rejected
 * update, or at start-up) before it is read into memory on every instance.
 */
export const RULES_BLOB_MAX_BYTES = 1024 * 1024;

/**
 * The SDK's retries inside one read: 2 tries, 0.5 s apart. `tryTimeoutInMs` is only passed to the service
 * (its `timeout` parameter): a front end or proxy that stalls is cut by {@link RULES_BLOB_READ_DEADLINE_MS}.
 */
/**
 * The whole of one read, answer and body, tries included. A check happens at the start of an invocation, which
 * waits for it: a storage outage or a stalled connection costs that invocation at most this long, once per
 * refresh interval (a failed check is not retried before the next interval), and the current rules stay.
 */
export const RULES_BLOB_READ_DEADLINE_MS = 25_000;

export const RULES_BLOB_RETRY_OPTIONS: Readonly<StorageRetryOptions> = Object.freeze({
  maxTries: 2,
  retryDelayInMs: 500,
  maxRetryDelayInMs: 2_000,
  tryTimeoutInMs: 10_000,
});

/** A blob URL's parts. `account` is set for path-style URLs (Azurite, IP addresses, localhost). */
export interface BlobUrlParts {
  readonly account?: string;
  readonly container: string;
  readonly blob: string;
}

/**
 * The container and blob a blob URL names, or undefined when it names none. Path-style URLs
 * (`http://127.0.0.1:10000/<account>/<container>/<blob>`, as Azurite serves them) are told apart from
 * host-style ones (`https://<account>.blob.core.windows.net/<container>/<blob>`) as the storage SDK does: by
 * an IP address or `localhost` as the host.
 */
export function parseBlobUrl(url: URL): BlobUrlParts | undefined {
  const segments = url.pathname.split('/').slice(1);
  const pathStyle = isPathStyleHost(url.hostname);
  const account = pathStyle ? segments.shift() : undefined;
  if (pathStyle && !account) return undefined;
  const [container, ...rest] = segments;
  const blob = rest.join('/');
  if (!container || blob === '' || blob.endsWith('/')) return undefined;
  let decoded: { container: string; blob: string };
  try {
    decoded = { container: decodeURIComponent(container), blob: decodeURIComponent(blob) };
  } catch {
    return undefined;
  }
  return account !== undefined ? { account: decodeURIComponent(account), ...decoded } : decoded;
}

function isPathStyleHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === 'host.docker.internal' || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith('[');
}

/** The URL as it may be shown: its query string (a SAS) replaced by `<redacted>`, its fragment dropped. */
export function maskBlobUrl(text: string): string {
  const at = text.search(/[?#]/);
  if (at === -1) return text;
  return text[at] === '?' && text.length > at + 1 ? `${text.slice(0, at)}?${REDACTED}` : text.slice(0, at);
}

/** The part of the SDK's `BlobClient` the reader uses. */
export interface RulesBlobLike {
  download(
    offset: number,
    count: undefined,
    options: { conditions?: { ifNoneMatch: string }; abortSignal?: AbortSignal },
  ): Promise<{ etag?: string; contentLength?: number; readableStreamBody?: NodeJS.ReadableStream }>;
}

/**
 * The rules blob could not be read. The message names the blob (masked) and the cause, never a SAS or key.
 */
export class RulesBlobError extends Error {
  override readonly name = 'RulesBlobError';
  /**
   * Worth trying again soon: by default no answer (network, a stall), 408, 429 or a 5xx; a request that was
   * never sent because the settings cannot work says `transient: false`.
   */
  readonly transient: boolean;

  /**
   * @param statusCode - The service's answer (404: the blob is gone, 403: refused); undefined when none
   *   came (network, DNS, timeout) or nothing was sent (the URL is on another account than the connection).
   */
  constructor(
    message: string,
    readonly statusCode: number | undefined,
    options: ErrorOptions & { readonly transient?: boolean } = {},
  ) {
    const { transient, ...errorOptions } = options;
    super(message, errorOptions);
    this.transient = transient ?? (statusCode === undefined || statusCode === 408 || statusCode === 429 || statusCode >= 500);
  }
}

export interface RulesBlobOptions {
  /** `ROUTES_BLOB_URL`, with its SAS if it has one. */
  readonly url: Secret;
  /** The forwarder's storage, used when the URL has no SAS (see the module comment). */
  readonly connection: BlobConnection;
  /** The setting the connection came from, for messages (`AzureWebJobsStorage__accountName`). */
  readonly storageSetting: string;
  /** Default {@link RULES_BLOB_RETRY_OPTIONS}. */
  readonly retryOptions?: StorageRetryOptions;
  /** Default {@link RULES_BLOB_MAX_BYTES}. */
  readonly maxBytes?: number;
  /** Default {@link RULES_BLOB_READ_DEADLINE_MS}. */
  readonly readDeadlineMs?: number;
  /** Replaces the SDK client (tests). */
  readonly blob?: RulesBlobLike;
}

/** A {@link RulesReader} over the blob. Sends nothing until the first `read`. */
export function connectRulesBlob(options: RulesBlobOptions): RulesReader {
  const rawUrl = options.url.reveal();
  const origin = maskBlobUrl(rawUrl);
  const url = new URL(rawUrl);
  const hasSas = url.searchParams.has('sig');
  const maxBytes = options.maxBytes ?? RULES_BLOB_MAX_BYTES;
  // Scrubs what the SDK says: it may quote the request URL, SAS included, or a connection string's key.
  const scrubbed = (text: string): string => redactCredentials(redact(text, url.search.length > 1 ? [new Secret(url.search.slice(1), 'ROUTES_BLOB_URL')] : []));
  // The SDK's error is kept as the cause, except with a SAS: its `request.url` holds the signature, and a
  // cause is printed by whoever logs the error whole.
  const cannotRead = (detail: string, statusCode: number | undefined, cause?: unknown, transient?: boolean): RulesBlobError =>
    new RulesBlobError(`cannot read the rules blob ${origin}: ${detail}`, statusCode, {
      ...(cause !== undefined && !hasSas ? { cause } : {}),
      ...(transient !== undefined ? { transient } : {}),
    });

  let client: RulesBlobLike | undefined = options.blob;
  const connect = (): RulesBlobLike => {
    if (client) return client;
    const clientOptions = { retryOptions: { ...RULES_BLOB_RETRY_OPTIONS, ...options.retryOptions } };
    if (hasSas) {
      client = new BlobClient(rawUrl, new AnonymousCredential(), clientOptions);
    } else if ('connectionString' in options.connection) {
      const service = BlobServiceClient.fromConnectionString(options.connection.connectionString, clientOptions);
      const parts = parseBlobUrl(url);
      const account = withoutQuery(service.url).replace(/\/+$/, '');
      if (!parts || !`${withoutQuery(rawUrl)}`.startsWith(`${account}/`)) {
        // A connection string signs for its own account only: reading another account's blob with it would
        // fail with a 403 that hides the real mistake.
        throw cannotRead(
          `it is not in the storage account of ${options.storageSetting} (${account}): give the URL a read SAS, use an identity (...__accountName) with "Storage Blob Data Reader" on the blob's account, or keep the rules in the forwarder's account`,
          undefined,
          undefined,
          false,
        );
      }
      client = service.getContainerClient(parts.container).getBlobClient(parts.blob);
    } else {
      client = new BlobClient(withoutQuery(rawUrl), options.connection.credential, clientOptions);
    }
    return client;
  };

  const describeFailure = (error: unknown): RulesBlobError => {
    if (error instanceof RulesBlobError) return error;
    const facts = failureFacts(error);
    const status = facts.statusCode;
    const code = facts.code !== undefined ? ` ${facts.code}` : '';
    const message = scrubbed(facts.message);
    if (status === undefined) return cannotRead(`storage unreachable: ${message}`, undefined, error);
    let hint = message;
    if (status === 404) hint = 'the container or the blob does not exist';
    else if (status === 403 || status === 401) {
      hint = hasSas
        ? 'the SAS was refused (expired, revoked, or not allowing read)'
        : 'connectionString' in options.connection
          ? `the credentials of ${options.storageSetting} were refused`
          : `the app's identity may not read it: it needs "Storage Blob Data Reader" (or Owner/Contributor) on the blob's account or container`;
    }
    return cannotRead(`HTTP ${status}${code}: ${hint}`, status, error);
  };

  return {
    kind: 'blob',
    setting: 'ROUTES_BLOB_URL',
    origin,
    refreshes: true,
    async read(knownEtag?: string): Promise<RulesRead> {
      const deadlineMs = options.readDeadlineMs ?? RULES_BLOB_READ_DEADLINE_MS;
      const abortSignal = AbortSignal.timeout(deadlineMs);
      const stalled = (): RulesBlobError => cannotRead(`no complete answer within ${Math.round(deadlineMs / 1000)} s (storage or a proxy on the way stalled)`, undefined);
      let response: Awaited<ReturnType<RulesBlobLike['download']>>;
      try {
        response = await connect().download(0, undefined, { abortSignal, ...(knownEtag !== undefined ? { conditions: { ifNoneMatch: knownEtag } } : {}) });
      } catch (error) {
        if (failureFacts(error).statusCode === 304) return { changed: false };
        throw abortSignal.aborted ? stalled() : describeFailure(error);
      }
      let text: string;
      let bytes: Buffer;
      try {
        const body = await readBody(response, maxBytes, abortSignal);
        if (body === undefined) {
          const etag = response.etag ?? `size-${response.contentLength ?? 'unknown'}`;
          return { changed: true, etag, version: displayEtag(etag), refused: `the rules blob is larger than ${maxBytes} bytes` };
        }
        bytes = body;
        text = bytes.toString('utf8');
      } catch (error) {
        throw abortSignal.aborted ? stalled() : describeFailure(error);
      }
      // Blob storage always sends an ETag; the content hash stands in should a proxy strip it.
      const etag = response.etag ?? `"${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}"`;
      return { changed: true, etag, version: displayEtag(etag), text };
    },
  };
}

/** An ETag as people see it (the portal, `az storage blob show`): without its quotes. */
function displayEtag(etag: string): string {
  return etag.replace(/^(W\/)?"(.*)"$/, '$2');
}

/**
 * The body, or undefined when it is larger than `maxBytes` (then the rest is not read). A body that stops
 * arriving is cut when `signal` aborts: the stream is destroyed and the read rejects.
 */
async function readBody(response: { contentLength?: number; readableStreamBody?: NodeJS.ReadableStream }, maxBytes: number, signal: AbortSignal): Promise<Buffer | undefined> {
  if (response.contentLength !== undefined && response.contentLength > maxBytes) {
    destroy(response.readableStreamBody);
    return undefined;
  }
  const stream = response.readableStreamBody;
  if (!stream) return Buffer.alloc(0);
  const onAbort = (): void => destroy(stream, new Error('read deadline passed'));
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
      total += buffer.length;
      if (total > maxBytes) {
        destroy(stream);
        return undefined;
      }
      chunks.push(buffer);
    }
    if (signal.aborted) throw new Error('read deadline passed');
    return Buffer.concat(chunks);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function destroy(stream: NodeJS.ReadableStream | undefined, error?: Error): void {
  const destroyable = stream as { destroy?: (error?: Error) => void } | undefined;
  destroyable?.destroy?.(error);
}
