/**
 * The quarantine contract: where records that cannot go through the pipeline are kept, with everything
 * needed to look at them again or re-submit them. Stores live in `src/storage/`.
 */
import type { Kind } from '../model/finding.js';
import type { EventMetadata, QuarantineCode } from './decode.js';

/** One schema violation, precise enough to fix the record: where, what was expected, what was there. */
export interface SchemaError {
  /** JSON path in the original casing where possible, e.g. `properties.status.code` or `(root)`. */
  readonly path: string;
  readonly message: string;
  readonly expected: string;
  readonly got: string;
}

export interface QuarantineEntry {
  /** The input label (`file.json#2`, `eh:0/1234`). */
  readonly input: string;
  readonly code: QuarantineCode;
  readonly reason: string;
  /** The kind when classification succeeded (schema failures), else null. */
  readonly kind: Kind | null;
  readonly errors: readonly SchemaError[];
  /** The original body text, or the original record when the body held several. */
  readonly raw: unknown;
  readonly metadata?: EventMetadata;
  /** Index of the record inside a multi-record body. */
  readonly index?: number;
  /** When the forwarder quarantined it (ISO 8601). */
  readonly quarantinedAt: string;
}

/**
 * Keeps quarantined records durably. `put` resolves once the entry is stored and rejects when the store is
 * unreachable: the caller must then not acknowledge the batch.
 */
export interface QuarantineSink {
  put(entry: QuarantineEntry): Promise<void>;
}
