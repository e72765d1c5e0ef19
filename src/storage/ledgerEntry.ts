/**
 * The notification ledger's entries, shared by the blob and the folder ledgers: names, the JSON document,
 * and the rule that decides whether an existing entry may be taken over.
 *
 * Names: a dedupe key is a JSON array that can be hundreds of characters long (ARM ids), too long and too
 * free for a blob or file name, so entries are named by the key's SHA-256 in hex, fanned out by its first
 * two digits: `v1/ab/ab12...ef.json` in a container, `<stateDir>/ledger/ab/ab12...ef.json` in a folder.
 * The document holds the key itself, so an entry explains itself when read.
 */
import { createHash, randomUUID } from 'node:crypto';
import { parseUtc } from '../model/time.js';
import { DEFAULT_MEMORY_LEDGER_KEYS } from '../routing/dedupe.js';

/** How long a `pending` claim holds before another run may take it over (a crashed run's claim). */
export const DEFAULT_LEDGER_LEASE_MS = 10 * 60_000;

/** `pending`: someone is notifying now; `sent`: delivered, a duplicate forever after. */
export type LedgerState = 'pending' | 'sent';

/** The JSON document of one entry. */
export interface LedgerDocument {
  /** The dedupe key, as given to `claim`. */
  readonly key: string;
  readonly state: LedgerState;
  /** Random, new for every claim: tells two claims of the same key apart even within one millisecond. */
  readonly claimId: string;
  /** When the claim was made (ISO 8601, UTC), by the claimer's clock. */
  readonly claimedAt: string;
  /** When the notification was confirmed delivered; only when `state` is `sent`. */
  readonly sentAt?: string;
}

/** What an existing entry means to a new claimer. */
export type EntryVerdict =
  /** Sent already: a duplicate. */
  | 'sent'
  /** A pending claim within its lease: someone is notifying now. */
  | 'held'
  /** A pending claim past its lease, or an entry that cannot be read and is as old: may be taken over. */
  | 'stale';

/** Options both ledgers take. */
export interface LedgerOptions {
  /** How long a pending claim holds, in milliseconds (default {@link DEFAULT_LEDGER_LEASE_MS}). */
  readonly leaseMs?: number;
  /** The clock (default: the system clock). Claims are dated and aged by it. */
  readonly now?: () => Date;
}

/** Hex SHA-256 of a dedupe key. */
export function ledgerKeyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The blob name of a key's entry: `v1/<first 2 hex>/<hash>.json`. */
export function ledgerBlobName(key: string): string {
  const hash = ledgerKeyHash(key);
  return `v1/${hash.slice(0, 2)}/${hash}.json`;
}

/** A new pending claim of `key`. */
export function newClaim(key: string, now: Date): LedgerDocument {
  return { key, state: 'pending', claimId: randomUUID(), claimedAt: now.toISOString() };
}

/** The claim, delivered. */
export function sentEntry(claim: LedgerDocument, now: Date): LedgerDocument {
  return { key: claim.key, state: 'sent', claimId: claim.claimId, claimedAt: claim.claimedAt, sentAt: now.toISOString() };
}

export function encodeLedgerDocument(document: LedgerDocument): string {
  return JSON.stringify(document);
}

/**
 * Reads an entry's text; undefined when it is not a ledger document for `key` (empty, cut short, hand-edited,
 * or another key's: the names are hashes, so that would be a corrupted store, not a collision).
 */
export function parseLedgerDocument(text: string, key: string): LedgerDocument | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  const { state, claimId, claimedAt, sentAt } = record;
  if (record['key'] !== key) return undefined;
  if (state !== 'pending' && state !== 'sent') return undefined;
  if (typeof claimId !== 'string' || typeof claimedAt !== 'string' || parseUtc(claimedAt) === undefined) return undefined;
  const base = { key, state, claimId, claimedAt } as const;
  return typeof sentAt === 'string' ? { ...base, sentAt } : base;
}

/**
 * Judges an existing entry. A document that cannot be read is aged by `lastModified` (the store's time of
 * the last write): a claimer that crashed between creating the entry and writing it leaves such an entry,
 * and it must not block the key forever, nor be taken over while its writer may still be busy.
 */
export function judgeEntry(document: LedgerDocument | undefined, lastModified: Date | undefined, now: Date, leaseMs: number): EntryVerdict {
  if (document?.state === 'sent') return 'sent';
  const since = document !== undefined ? parseUtc(document.claimedAt) : lastModified;
  if (since === undefined) return 'stale';
  return now.getTime() - since.getTime() >= leaseMs ? 'stale' : 'held';
}

/** Checks `leaseMs`; returns it or the default. */
export function leaseOf(options: LedgerOptions): number {
  const leaseMs = options.leaseMs ?? DEFAULT_LEDGER_LEASE_MS;
  if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new RangeError(`leaseMs must be a positive number of milliseconds, not ${leaseMs}`);
  return leaseMs;
}

/**
 * The claims this ledger made and has not yet confirmed or released, by key, so that `confirm` and
 * `release` act on this claim only and never on a claim another run took over. Bounded like the memory
 * ledger (100 000 outstanding claims): a claim forgotten here is confirmed unconditionally, and its release
 * does nothing (the pending entry then expires with its lease).
 */
export class OwnClaims<T> {
  readonly #claims = new Map<string, T>();

  constructor(private readonly maxKeys: number = DEFAULT_MEMORY_LEDGER_KEYS) {}

  remember(key: string, claim: T): void {
    this.#claims.delete(key); // re-inserted at the end: the newest
    this.#claims.set(key, claim);
    if (this.#claims.size > this.maxKeys) {
      const oldest = this.#claims.keys().next().value;
      if (oldest !== undefined) this.#claims.delete(oldest);
    }
  }

  get(key: string): T | undefined {
    return this.#claims.get(key);
  }

  forget(key: string): void {
    this.#claims.delete(key);
  }
}
