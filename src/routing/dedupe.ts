/**
 * Dedupe keys and the in-memory notification ledger. People are notified once per (destination, kind, id,
 * status): the same alert re-exported with the same status is a duplicate; with a new status it is news.
 */
import type { Finding } from './types.js';
import type { ClaimOutcome, DeliveryLedger } from '../delivery/contracts.js';

/**
 * The ledger key for notifying `destination` of `finding`: a JSON array, so no id (ARM ids hold `/`, alert ids
 * `_`) can be confused with a separator. The id and status are lower-cased: ARM ids and alert GUIDs are
 * case-insensitive (Defender sometimes upper-cases `AzureResourceId`) and `New`/`new` is the same status.
 * Destination names are compared as written (they are the rules file's keys). Keys can be long (ARM ids):
 * a store with a name limit should hash them.
 */
export function dedupeKey(destination: string, finding: Finding): string {
  return JSON.stringify([destination, finding.kind, finding.id.toLowerCase(), finding.status.toLowerCase()]);
}

/** Keys a MemoryLedger keeps by default: about 20 MB of keys, far more than a run notifies anyone about. */
export const DEFAULT_MEMORY_LEDGER_KEYS = 100_000;

/**
 * A ledger for one process (dry runs, `routes test`, a Function instance until the blob ledger lands). It
 * forgets everything when the process ends, and keeps at most `maxKeys`, forgetting the oldest first, so a
 * long-lived process does not grow without bound.
 */
export class MemoryLedger implements DeliveryLedger {
  private readonly claimed = new Set<string>();

  constructor(private readonly maxKeys: number = DEFAULT_MEMORY_LEDGER_KEYS) {
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be a positive integer, not ${maxKeys}`);
  }

  /** True the first time `key` is claimed (or once it has been forgotten), false otherwise. */
  claim(key: string): Promise<boolean> {
    if (this.claimed.has(key)) return Promise.resolve(false);
    this.claimed.add(key);
    if (this.claimed.size > this.maxKeys) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = this.claimed.values().next().value;
      if (oldest !== undefined) this.claimed.delete(oldest);
    }
    return Promise.resolve(true);
  }

  /** In memory a claim is granted or it was sent: nothing is ever held by another run. */
  async claimOutcome(key: string): Promise<ClaimOutcome> {
    return (await this.claim(key)) ? 'claimed' : 'sent';
  }

  /** Delivered: the claim stays (it already does in memory). */
  confirm(_key: string): Promise<void> {
    return Promise.resolve();
  }

  /** Delivery failed for good: forget the claim so a later run may notify. */
  release(key: string): Promise<void> {
    this.claimed.delete(key);
    return Promise.resolve();
  }

  /** How many keys were claimed. */
  get size(): number {
    return this.claimed.size;
  }
}
