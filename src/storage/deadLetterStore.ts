/**
 * What re-drive and `status` need from a dead-letter store, beyond writing letters (`DeadLetterSink`):
 * list the backlog from names and metadata alone, read one letter, record a re-drive attempt so that two
 * re-drivers never take the same letter, delete a delivered letter, and move one that ran out of time to
 * `expired/`. Implemented by the blob store (Function, CLI with FORWARDER_STORAGE_CONNECTION) and the folder
 * store (CLI state folder).
 *
 * Every write is conditional on the `version` the caller holds (the blob's ETag; for the folder, a hash of
 * the sidecar that holds the re-drive state): a caller whose version is no longer current gets `undefined`
 * or `false` back, never an error, and must leave the letter alone. A store that cannot be reached or
 * refuses makes the call reject with a `StoreError` naming the container or folder.
 */
import type { DeadLetter } from '../delivery/contracts.js';
import type { RedriveState } from './deadLetterEntry.js';

export type { RedriveState } from './deadLetterEntry.js';

/** One letter as a listing shows it: no body read (blob store), enough to decide and to report. */
export interface DeadLetterListing {
  /** Store-relative name: `teams-soc/2026/11/27/0-1234-0a1b2c3d4e5f.json`; expired: `expired/teams-soc/...`. */
  readonly name: string;
  /** The destination the letter is for, as its metadata says. */
  readonly destination: string;
  /** Why delivery failed when the letter was written (`http-503`, `claim-pending`...). */
  readonly reason: string;
  /** When the letter was written; undefined when the store cannot tell. */
  readonly deadLetteredAt: Date | undefined;
  readonly redrive: RedriveState;
  /** The letter's own metadata as written with it (see `deadLetterBlobMetadata`). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Opaque: the condition of the next write (see the module comment). */
  readonly version: string;
}

/** A letter read back: the letter, gone (deleted or changed since it was listed), or unreadable. */
export type DeadLetterRead =
  | { readonly status: 'ok'; readonly letter: DeadLetter }
  | { readonly status: 'gone' }
  | { readonly status: 'unreadable'; readonly problem: string };

export interface DeadLetterListOptions {
  /** Only this destination's letters. */
  readonly destination?: string;
  /** The expired letters (`expired/`) instead of the live backlog. */
  readonly expired?: boolean;
}

export interface DeadLetterStore {
  /** `container "deadletter"` or `folder "/path/deadletter"`, for messages and reports. */
  readonly location: string;
  /**
   * The letters, streamed in name order (a page at a time: the backlog may hold 100 000 letters). Live
   * letters by default; expired ones with `expired: true`. A store that does not exist yet lists nothing.
   */
  list(options?: DeadLetterListOptions): AsyncIterable<DeadLetterListing>;
  /** Reads and parses the letter; a document that does not parse is `unreadable` (and stays where it is). */
  read(entry: DeadLetterListing): Promise<DeadLetterRead>;
  /**
   * Replaces the letter's re-drive state if `entry.version` is still current. Resolves with the entry as
   * it now is (new version), or undefined when another writer changed or removed it first.
   */
  recordAttempt(entry: DeadLetterListing, state: RedriveState): Promise<DeadLetterListing | undefined>;
  /** Deletes the letter if `entry.version` is still current; false when it changed or is gone. */
  delete(entry: DeadLetterListing): Promise<boolean>;
  /**
   * Moves the letter to `expired/<its name>` with `state` (which should carry `expiredAt`), if
   * `entry.version` is still current; false when it changed or is gone. Expired letters are kept.
   */
  expire(entry: DeadLetterListing, state: RedriveState): Promise<boolean>;
}
