/**
 * How a quarantined record is laid out in a store: its name (shared by the blob and the folder stores, so a
 * quarantine can be copied from one to the other as is), the JSON document, and the blob metadata.
 *
 * Names: `<yyyy>/<mm>/<dd>/<stem>[-<index>].json`
 * - Event Hub records: the stem is `<partition>-<sequence>` and the day is the event's enqueued time in UTC.
 *   Both are properties of the event, so a re-run of the same batch (Functions retry policy, restart from a
 *   checkpoint) writes the same names and overwrites instead of duplicating.
 * - Records without a partition and sequence number (files, stdin): the stem is a slug of the input label
 *   plus a short hash of the full label (two labels that slug alike still get different names), and the day
 *   is the entry's `quarantinedAt` in UTC.
 * - `-<index>` is appended when the record came from a multi-record body (the index inside the body).
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import type { EventMetadata } from '../pipeline/decode.js';
import type { QuarantineEntry, SchemaError } from '../pipeline/quarantine.js';
import { parseUtc } from '../model/time.js';

/** Identifies the document layout, so a later version can still read older quarantines. */
export const QUARANTINE_DOCUMENT_FORMAT = 'defender-forwarder.quarantine/v1';

/** The MIME type of every quarantine document. */
export const QUARANTINE_CONTENT_TYPE = 'application/json';

/** The JSON document stored for one quarantined record. */
export interface QuarantineDocument {
  readonly format: typeof QUARANTINE_DOCUMENT_FORMAT;
  readonly input: string;
  readonly code: string;
  readonly reason: string;
  readonly kind: string | null;
  readonly errors: readonly SchemaError[];
  /** Index of the record inside a multi-record body, else null. */
  readonly index: number | null;
  /** Where the event came from on the Event Hub; null for files. */
  readonly metadata: EventMetadata | null;
  readonly quarantinedAt: string;
  /**
   * `text`: `raw` is the body exactly as received (a string), to be re-submitted verbatim.
   * `json`: `raw` is the parsed record (the body held several), to be re-submitted as its JSON.
   */
  readonly rawType: 'text' | 'json';
  readonly raw: unknown;
}

/** Longest slug kept from an input label (the hash keeps names unique, the slug keeps them readable). */
const MAX_SLUG_LENGTH = 60;
/** Hex digits of SHA-256 kept in file-based names. */
const LABEL_HASH_LENGTH = 10;

/** The store-relative name of an entry: `2025/01/31/0-1234.json`, `2025/01/31/bad.json-3f2a9c01de-2.json`. */
export function quarantineBlobName(entry: QuarantineEntry): string {
  const suffix = entry.index !== undefined ? `-${entry.index}` : '';
  return `${quarantineDay(entry)}/${eventStem(entry.metadata) ?? labelStem(entry)}${suffix}.json`;
}

/** The document written for an entry, as UTF-8 JSON text (indented: people read these). */
export function encodeQuarantineDocument(entry: QuarantineEntry): string {
  const base = {
    format: QUARANTINE_DOCUMENT_FORMAT,
    input: entry.input,
    code: entry.code,
    reason: entry.reason,
    kind: entry.kind,
    errors: entry.errors,
    index: entry.index ?? null,
    metadata: entry.metadata ?? null,
    quarantinedAt: entry.quarantinedAt,
  } as const;
  const raw = entry.raw;
  if (typeof raw === 'string') return stringify({ ...base, rawType: 'text', raw });
  if (raw instanceof Uint8Array) {
    return stringify({ ...base, rawType: 'text', raw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8') });
  }
  // JSON drops undefined, functions and symbols: keep the key, as null.
  const jsonable = raw === undefined || typeof raw === 'function' || typeof raw === 'symbol' ? null : raw;
  try {
    return stringify({ ...base, rawType: 'json', raw: jsonable });
  } catch {
    // A BigInt or a cycle: nothing a body decodes to, but the record must still be kept, readably.
    return stringify({ ...base, rawType: 'text', raw: inspect(raw, { depth: 20, breakLength: Infinity }) });
  }
}

function stringify(document: QuarantineDocument): string {
  return JSON.stringify(document, null, 2);
}

/**
 * Blob metadata for an entry, so a container listing can be filtered without downloading: `code`, `source`
 * (`eventhub` or `file`), and `partition`, `sequence`, `index`, `kind` when known. Keys are lower-case
 * (Azure returns them so) and values are ASCII (they travel as HTTP headers).
 */
export function quarantineBlobMetadata(entry: QuarantineEntry): Record<string, string> {
  const metadata: Record<string, string> = { code: entry.code };
  const partitionId = entry.metadata?.partitionId;
  const sequenceNumber = entry.metadata?.sequenceNumber;
  metadata['source'] = eventStem(entry.metadata) !== undefined ? 'eventhub' : 'file';
  if (partitionId !== undefined) metadata['partition'] = slug(partitionId) || 'unknown';
  if (sequenceNumber !== undefined && Number.isFinite(sequenceNumber)) metadata['sequence'] = String(sequenceNumber);
  if (entry.index !== undefined) metadata['index'] = String(entry.index);
  if (entry.kind !== null) metadata['kind'] = entry.kind;
  return metadata;
}

/** `<partition>-<sequence>` when the entry carries both, else undefined. */
function eventStem(metadata: EventMetadata | undefined): string | undefined {
  if (metadata?.partitionId === undefined || metadata.sequenceNumber === undefined) return undefined;
  if (!Number.isSafeInteger(metadata.sequenceNumber)) return undefined;
  // Partition ids are "0".."31" in practice; slug anyway, a name must never gain a "/" or "..".
  return `${slug(metadata.partitionId) || 'p'}-${metadata.sequenceNumber}`;
}

function labelStem(entry: QuarantineEntry): string {
  let label = entry.input;
  // decode labels records of a multi-record body `<input>#<index>`; the index goes at the end of the name.
  if (entry.index !== undefined && label.endsWith(`#${entry.index}`)) {
    label = label.slice(0, -`#${entry.index}`.length);
  }
  const hash = createHash('sha256').update(label, 'utf8').digest('hex').slice(0, LABEL_HASH_LENGTH);
  const readable = slug(label.slice(-MAX_SLUG_LENGTH * 2)).slice(-MAX_SLUG_LENGTH).replace(/^[-.]+/, '');
  return `${readable || 'input'}-${hash}`;
}

/** Letters, digits, `.`, `_` and `-` only; no leading or trailing `.`/`-` (no hidden files, no `..`). */
function slug(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
}

/** `yyyy/mm/dd` in UTC: the enqueued time for Event Hub records, else `quarantinedAt`. */
function quarantineDay(entry: QuarantineEntry): string {
  const enqueued = eventStem(entry.metadata) !== undefined ? parseUtc(entry.metadata?.enqueuedTimeUtc) : undefined;
  // quarantinedAt is written by the forwarder itself; the clock is only a last resort for a malformed entry.
  const date = enqueued ?? parseUtc(entry.quarantinedAt) ?? new Date();
  const yyyy = String(date.getUTCFullYear()).padStart(4, '0');
  const mm = String(date.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(date.getUTCDate()).padStart(2, '0');
  return `${yyyy}/${mm}/${dd}`;
}

