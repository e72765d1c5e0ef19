/**
 * What delivery needs from storage: the notification ledger with claim / confirm / release, and the
 * dead-letter store. Implementations live in `src/storage/` (blob storage for the Function, a local state
 * folder for the CLI, memory for dry runs).
 */
import type { EventMetadata } from '../pipeline/decode.js';
import type { Kind, Severity } from '../model/finding.js';
import type { DestinationType, NotificationLedger } from '../routing/types.js';
import type { PreviewFile } from '../sinks/sink.js';

/**
 * The notification ledger as delivery uses it, keyed by `dedupeKey(destination, finding)`:
 * - `claim` before sending: true when this caller may notify (no entry yet, or a `pending` claim older than
 *   the lease, left by a crashed run), false when someone sent it already or is sending it now. Atomic
 *   across processes (blob: conditional create `ifNoneMatch: "*"`; folder: exclusive create).
 * - `confirm` once the notification was delivered: the entry becomes `sent`, a duplicate forever after.
 * - `release` when delivery failed for good (the record is dead-lettered): the entry is removed, so that a
 *   re-drive or a re-run may notify.
 */
/** Why a claim was or was not granted. */
export type ClaimOutcome = 'claimed' | 'sent' | 'held';

export interface DeliveryLedger extends NotificationLedger {
  /**
   * `claim`, saying why not: `sent` (a duplicate: never notify again) or `held` (another run's claim within
   * its lease: it may be sending now, or it may have crashed; the record is dead-lettered as
   * `claim-pending` so that a re-drive notifies once the claim is settled or expired, never lost).
   */
  claimOutcome(key: string): Promise<ClaimOutcome>;
  confirm(key: string): Promise<void>;
  release(key: string): Promise<void>;
}

/** Everything needed to look at a failed delivery and re-drive it. Never holds a secret. */
export interface DeadLetter {
  readonly format: 'defender-forwarder.deadletter/v1';
  readonly destination: string;
  readonly destinationType: DestinationType;
  readonly input: string;
  readonly finding: {
    readonly kind: Kind;
    readonly id: string;
    readonly severity: Severity;
    readonly status: string;
    readonly title: string;
  };
  readonly error: {
    readonly message: string;
    readonly reason: string;
    readonly retryable: boolean;
    readonly configuration: boolean;
  };
  /** Attempts made before giving up. */
  readonly attempts: number;
  readonly firstAttemptAt: string;
  readonly lastAttemptAt: string;
  readonly deadLetteredAt: string;
  /** The ledger key, for notification destinations (re-drive claims it again). */
  readonly dedupeKey?: string;
  /** What was (to be) sent, as rendered for this record, with secrets redacted. */
  readonly payload: readonly { readonly name: string; readonly content: string }[];
  /** The original record, untouched. */
  readonly record: unknown;
  readonly metadata?: EventMetadata;
}

/**
 * Keeps dead letters durably. `put` resolves once stored and rejects (with a message naming the store and
 * no secret) when the store is unreachable: the caller must then not acknowledge the batch. Writing the same
 * letter twice (a re-run) overwrites it under the same name.
 */
export interface DeadLetterSink {
  put(letter: DeadLetter): Promise<void>;
}

export function previewToPayload(files: readonly PreviewFile[]): DeadLetter['payload'] {
  return files.map((file) => ({ name: file.name, content: typeof file.content === 'string' ? file.content : file.content.toString('base64') }));
}
