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
 * Blob metadata of a letter, so a listing can be filtered without downloading: `destination`, `reason`,
 * `attempts`, `kind`. Keys are lower-case (Azure returns them so); values are printable ASCII (they travel
 * as HTTP headers), other characters replaced by `?`, at most 256 characters.
 */
export function deadLetterBlobMetadata(letter: DeadLetter): Record<string, string> {
  return {
    destination: headerSafe(letter.destination),
    reason: headerSafe(letter.error.reason),
    attempts: String(letter.attempts),
    kind: headerSafe(letter.finding.kind),
  };
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
