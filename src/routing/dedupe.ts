/**
 * Dedupe keys and the in-memory notification ledger. People are notified once per (destination, kind, id,
 * status): the same alert re-exported with the same status is a duplicate; with a new status it is news.
 */
import type { Finding, NotificationLedger } from './types.js';

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

/** A ledger for one process (dry runs, `routes test`, tests): forgets everything when the process ends. */
export class MemoryLedger implements NotificationLedger {
  private readonly claimed = new Set<string>();

  /** True the first time `key` is claimed, false ever after. */
  claim(key: string): Promise<boolean> {
    if (this.claimed.has(key)) return Promise.resolve(false);
    this.claimed.add(key);
    return Promise.resolve(true);
  }

  /** How many keys were claimed. */
  get size(): number {
    return this.claimed.size;
  }
}
