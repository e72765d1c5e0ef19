/**
 * How a dead letter is laid out in a store: its name (shared by the blob and the folder stores, so letters
 * can be copied from one to the other as they are), the JSON document, and the blob metadata.
 *
 * Names: `<destination>/<yyyy>/<mm>/<dd>/<stem>-<hash>.json`
 * - The destination first: a re-drive or a person looks at one destination's letters at a time.
 * - The day is the event's enqueued time in UTC when the record came from an Event Hub, else the letter's
 *   `deadLetteredAt` in UTC.
 * - The stem is `<partition>-<sequence>[-<index>]` for Event Hub records (`-<index>` for a record of a
 *   multi-record body, read off the input label's `#<index>`), else a readable slug of the input label.
 * - The hash is 12 hex digits of SHA-256 over (destination, kind, id, status, input label): one record's
 *   letters for different destinations or statuses never share a name, two labels that slug alike do not
 *   either, and a re-run (same record, same label) writes the same name again, overwriting its letter.
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import type { DeadLetter } from '../delivery/contracts.js';
import { parseUtc } from '../model/time.js';

/** The MIME type of every dead letter. */
export const DEAD_LETTER_CONTENT_TYPE = 'application/json';

/** Hex digits of SHA-256 kept in names. */
const NAME_HASH_LENGTH = 12;
/** Longest slug kept from an input label or a destination name. */
const MAX_SLUG_LENGTH = 60;
/** Longest metadata value kept (metadata travels in HTTP headers; a reason can be a long message). */
const MAX_METADATA_VALUE_LENGTH = 256;

/** The store-relative name of a letter: `teams-soc/2025/03/04/3-1234-2-0a1b2c3d4e5f.json`. */
export function deadLetterBlobName(letter: DeadLetter): string {
  const destination = slug(letter.destination).slice(0, MAX_SLUG_LENGTH) || 'destination';
  const hash = createHash('sha256')
    .update(
      JSON.stringify([letter.destination, letter.finding.kind, letter.finding.id.toLowerCase(), letter.finding.status.toLowerCase(), letter.input]),
      'utf8',
    )
    .digest('hex')
    .slice(0, NAME_HASH_LENGTH);
  return `${destination}/${letterDay(letter)}/${eventStem(letter) ?? labelStem(letter.input)}-${hash}.json`;
}

/**
 * The document written for a letter: the letter itself as indented JSON (people read these). A record JSON
 * cannot carry (a BigInt, a cycle: nothing a body decodes to) is kept as readable text instead.
 */
export function encodeDeadLetter(letter: DeadLetter): string {
  const record = letter.record === undefined || typeof letter.record === 'function' || typeof letter.record === 'symbol' ? null : letter.record;
  try {
    return JSON.stringify({ ...letter, record }, null, 2);
  } catch {
    return JSON.stringify({ ...letter, record: inspect(letter.record, { depth: 20, breakLength: Infinity }) }, null, 2);
  }
}

/**
 * Blob metadata of a letter, so a listing can be filtered and reported without downloading:
 * `destination`, `reason`, `attempts` (delivery attempts before it was dead-lettered), `kind` and
 * `deadletteredat`. Re-drive adds its own state (see {@link withRedriveMetadata}). Keys are lower-case (Azure returns them so); values are printable ASCII (they travel
 * as HTTP headers), other characters replaced by `?`, at most 256 characters.
 */
export function deadLetterBlobMetadata(letter: DeadLetter): Record<string, string> {
  return {
    destination: headerSafe(letter.destination),
    reason: headerSafe(letter.error.reason),
    attempts: String(letter.attempts),
    kind: headerSafe(letter.finding.kind),
    deadletteredat: headerSafe(letter.deadLetteredAt),
  };
}

/** What a letter's `destination` metadata holds for `destination` (a listing per destination compares it). */
export function destinationMetadataValue(destination: string): string {
  return headerSafe(destination);
}

function headerSafe(value: string): string {
  const safe = value.replace(/[^\x20-\x7E]/g, '?').trim().slice(0, MAX_METADATA_VALUE_LENGTH).trim();
  return safe === '' ? 'unknown' : safe;
}

/** `<partition>-<sequence>[-<index>]` when the letter's event carries both, else undefined. */
function eventStem(letter: DeadLetter): string | undefined {
  const partitionId = letter.metadata?.partitionId;
  const sequenceNumber = letter.metadata?.sequenceNumber;
  if (partitionId === undefined || sequenceNumber === undefined || !Number.isSafeInteger(sequenceNumber)) return undefined;
  const index = /#(\d{1,9})$/.exec(letter.input)?.[1];
  // Partition ids are "0".."31" in practice; slug anyway, a name must never gain a "/" or "..".
  return `${slug(partitionId) || 'p'}-${sequenceNumber}${index !== undefined ? `-${index}` : ''}`;
}

/** The end of the label (the file name is the telling part), slugged. */
function labelStem(label: string): string {
  return slug(label.slice(-MAX_SLUG_LENGTH * 2)).slice(-MAX_SLUG_LENGTH).replace(/^[-.]+/, '') || 'input';
}

/** Letters, digits, `.`, `_` and `-` only; no leading or trailing `.`/`-` (no hidden files, no `..`). */
function slug(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
}

/** `yyyy/mm/dd` in UTC: the enqueued time when known, else `deadLetteredAt`. */
function letterDay(letter: DeadLetter): string {
  // deadLetteredAt is written by the forwarder itself; the clock is only a last resort for a malformed letter.
  const date = parseUtc(letter.metadata?.enqueuedTimeUtc) ?? parseUtc(letter.deadLetteredAt) ?? new Date();
  const yyyy = String(date.getUTCFullYear()).padStart(4, '0');
  const mm = String(date.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(date.getUTCDate()).padStart(2, '0');
  return `${yyyy}/${mm}/${dd}`;
}

/** The `format` of every dead letter; a document with another format is not read as a letter. */
export const DEAD_LETTER_FORMAT: DeadLetter['format'] = 'defender-forwarder.deadletter/v1';

/**
 * Where expired letters are kept: `expired/<the letter's name>`. A live name has exactly five segments
 * (`<destination>/<yyyy>/<mm>/<dd>/<file>`), an expired one six, so a destination that happens to be named
 * `expired` is still told apart.
 */
export const EXPIRED_PREFIX = 'expired/';

/** Segments of a live letter's name. */
const LIVE_NAME_SEGMENTS = 5;

/** True for the name of a letter in the live backlog (not expired, not a sidecar or a temporary file). */
export function isLiveLetterName(name: string): boolean {
  return name.endsWith('.json') && name.split('/').length === LIVE_NAME_SEGMENTS;
}

/** True for the name of an expired letter. */
export function isExpiredLetterName(name: string): boolean {
  return name.startsWith(EXPIRED_PREFIX) && name.endsWith('.json') && name.split('/').length === LIVE_NAME_SEGMENTS + 1;
}

/** The name prefix of one destination's letters (`teams-soc/`): what a listing per destination asks for. */
export function deadLetterNamePrefix(destination: string): string {
  return `${slug(destination).slice(0, MAX_SLUG_LENGTH) || 'destination'}/`;
}

/**
 * What re-drive keeps with a letter between runs (blob metadata, or a folder's sidecar file). Times are
 * ISO 8601 UTC.
 */
export interface RedriveState {
  /** Re-drive attempts made so far (claims included: a claim is an attempt). */
  readonly attempts: number;
  /** Not re-driven before this time; absent: due now. */
  readonly nextAttemptAt?: string;
  readonly lastAttemptAt?: string;
  /** Why the last re-drive attempt did not deliver (`http-503`, `claim-pending`, `unreadable`...). */
  readonly lastReason?: string;
  /** When the letter was moved to `expired/`. */
  readonly expiredAt?: string;
}

/** A letter never re-driven. */
export const FRESH_REDRIVE_STATE: RedriveState = Object.freeze({ attempts: 0 });

/** Blob metadata keys of the re-drive state (lower-case: Azure returns them so). */
const REDRIVE_KEYS = {
  attempts: 'redriveattempts',
  nextAttemptAt: 'nextattemptat',
  lastAttemptAt: 'lastattemptat',
  lastReason: 'lastreason',
  expiredAt: 'expiredat',
} as const;

/** The re-drive state as blob metadata, merged over the letter's own metadata `base`. */
export function withRedriveMetadata(base: Readonly<Record<string, string>>, state: RedriveState): Record<string, string> {
  const metadata: Record<string, string> = {};
  // Keys of an earlier state are dropped first: a field the new state lacks must not survive.
  const stateKeys = new Set<string>(Object.values(REDRIVE_KEYS));
  for (const [key, value] of Object.entries(base)) if (!stateKeys.has(key)) metadata[key] = value;
  metadata[REDRIVE_KEYS.attempts] = String(state.attempts);
  for (const field of ['nextAttemptAt', 'lastAttemptAt', 'lastReason', 'expiredAt'] as const) {
    const value = state[field];
    if (value !== undefined) metadata[REDRIVE_KEYS[field]] = headerSafe(value);
  }
  return metadata;
}

/** Reads the re-drive state off blob metadata; missing or malformed fields read as absent. */
export function readRedriveMetadata(metadata: Readonly<Record<string, string>> | undefined): RedriveState {
  return readRedriveFields((key) => metadata?.[REDRIVE_KEYS[key]]);
}

/** The re-drive state as the folder store's sidecar document. */
export function encodeRedriveState(state: RedriveState): string {
  return JSON.stringify({ format: 'defender-forwarder.redrive/v1', ...state });
}

/** Reads a sidecar document; a document that does not parse reads as a fresh state. */
export function parseRedriveState(text: string): RedriveState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return FRESH_REDRIVE_STATE;
  }
  if (typeof value !== 'object' || value === null) return FRESH_REDRIVE_STATE;
  const record = value as Record<string, unknown>;
  return readRedriveFields((key) => {
    const field = record[key];
    return typeof field === 'number' ? String(field) : typeof field === 'string' ? field : undefined;
  });
}

function readRedriveFields(read: (key: keyof RedriveState) => string | undefined): RedriveState {
  const attempts = Number(read('attempts'));
  const state: { -readonly [K in keyof RedriveState]: RedriveState[K] } = {
    attempts: Number.isSafeInteger(attempts) && attempts >= 0 ? attempts : 0,
  };
  for (const key of ['nextAttemptAt', 'lastAttemptAt', 'expiredAt'] as const) {
    const time = parseUtc(read(key));
    if (time !== undefined) state[key] = time.toISOString();
  }
  const lastReason = read('lastReason');
  if (lastReason !== undefined && lastReason !== '') state.lastReason = lastReason;
  return state;
}

/** A letter as read back from a store: the letter, or why it cannot be used. */
export type ParsedDeadLetter = { readonly ok: true; readonly letter: DeadLetter } | { readonly ok: false; readonly problem: string };

/**
 * Reads a letter's document. Checks what re-drive relies on (the format, the destination, the input label,
 * the finding's identity, the record); the rest is kept as written.
 */
export function parseDeadLetter(text: string): ParsedDeadLetter {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error: unknown) {
    return { ok: false, problem: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, problem: 'not a JSON object' };
  const record = value as Record<string, unknown>;
  if (record['format'] !== DEAD_LETTER_FORMAT) {
    return { ok: false, problem: `format is ${JSON.stringify(record['format'] ?? null)}, expected "${DEAD_LETTER_FORMAT}"` };
  }
  const finding = record['finding'];
  const findingRecord = typeof finding === 'object' && finding !== null ? (finding as Record<string, unknown>) : undefined;
  const missing = [
    ...['destination', 'destinationType', 'input', 'deadLetteredAt'].filter((key) => typeof record[key] !== 'string'),
    ...['kind', 'id', 'status'].filter((key) => typeof findingRecord?.[key] !== 'string').map((key) => `finding.${key}`),
    ...(record['dedupeKey'] !== undefined && typeof record['dedupeKey'] !== 'string' ? ['dedupeKey'] : []),
    ...(!('record' in record) ? ['record'] : []),
  ];
  if (missing.length > 0) return { ok: false, problem: `missing or malformed: ${missing.join(', ')}` };
  // Checked above as far as re-drive reads it; written by encodeDeadLetter.
  return { ok: true, letter: record as unknown as DeadLetter };
}

/** When the letter was written, from its metadata (`deadletteredat`); undefined for letters written before it was kept. */
export function deadLetteredAtOf(metadata: Readonly<Record<string, string>> | undefined): Date | undefined {
  return parseUtc(metadata?.['deadletteredat']);
}
