/**
 * The one contract every destination implements (Alertmanager's Notifier, Vector's sink): a sink makes ONE
 * attempt to deliver a batch and says, per record, whether it was delivered or why not, and whether trying
 * again could help. Retrying, backoff, concurrency limits, dead letters and the notification ledger live in
 * `src/delivery/`, never in a sink.
 */
import type { EventMetadata } from '../pipeline/decode.js';
import type { Finding } from '../model/finding.js';
import type { DestinationType } from '../routing/types.js';

/** One record on its way to one destination. */
export interface DeliveryItem {
  /** The run report's input label (`eh:0/42`, `file.json#3`), for dead letters and logs. */
  readonly input: string;
  readonly finding: Finding;
  readonly metadata?: EventMetadata;
}

/**
 * Why an attempt failed. `retryable` says whether the same request may succeed later (throttling, a 5xx,
 * a dropped connection); `retryAfterMs` carries the server's `Retry-After`. Messages never hold secrets.
 */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** A stable, short classification: `http-503`, `hec-9`, `smtp-421`, `timeout`, `connection`, `config`... */
  readonly reason: string;
  /** True when the failure means the destination is misconfigured (401/403, HEC 1-4/7): logged loudly. */
  readonly configuration: boolean;

  constructor(
    message: string,
    options: { reason: string; retryable: boolean; retryAfterMs?: number; configuration?: boolean; cause?: unknown },
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.reason = options.reason;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.configuration = options.configuration ?? false;
  }
}

/** The outcome of one attempt for one item: delivered, or the error. */
export type AttemptResult = { readonly ok: true } | { readonly ok: false; readonly error: DeliveryError };

/** A file of `--preview`: exactly what would be sent. */
export interface PreviewFile {
  /** Relative file name, e.g. `splunk/batch-0001.json`, `oncall-teams/<id>.json`, `oncall-email/<id>.eml`. */
  readonly name: string;
  readonly content: string | Buffer;
}

export interface Sink {
  /** The destination's name in the rules file. */
  readonly name: string;
  readonly type: DestinationType;
  /** Notification sinks (teams, email, webhook) are muted and deduplicated. */
  readonly notify: boolean;
  /** Most items one `send` call takes (HEC batches many; a Teams card is one record). */
  readonly maxBatchItems: number;
  /** Most `send` calls in flight at once for this destination (Teams: 1, to keep order and its limits). */
  readonly maxConcurrency: number;
  /**
   * One attempt for `items`, in order. Resolves with one result per item (same order); rejects only for
   * an abort. Must not retry.
   */
  send(items: readonly DeliveryItem[], signal: AbortSignal): Promise<AttemptResult[]>;
  /**
   * What `send` would put on the wire for `items`, for previews and dead letters, with secrets redacted.
   * Pure: no I/O.
   */
  render(items: readonly DeliveryItem[]): PreviewFile[];
  /** Releases connections (keep-alive agents, SMTP pools). */
  close(): Promise<void>;
}
