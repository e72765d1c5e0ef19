/**
 * A ledger write that failed must be finished, not worked around, when the same notification comes up
 * again in this process (the host or the consumer runs the batch again once the store is back):
 * - a delivered notification whose `confirm` failed is not sent again: its confirmation is written first
 *   and the claim answers `sent`;
 * - an undelivered one whose `release` failed (it was dead-lettered) is released first and then claimed
 *   afresh, instead of being held by this process's own stale claim until the lease ends.
 * While the store is still unreachable those writes fail and the caller's batch fails with them (and runs
 * again later), never re-notifying and never losing the notification.
 *
 * Across processes nothing can be remembered: a run that dies between a destination's answer and the
 * ledger write leaves a pending claim, and once its lease has passed a re-drive notifies again. Delivery
 * writes each confirmation as soon as the destination answers, to keep that window to one write.
 */
import type { ClaimOutcome, DeliveryLedger } from './contracts.js';

/** Most keys remembered; the oldest are forgotten beyond it (a forgotten key falls back to the lease). */
const MAX_REMEMBERED = 100_000;

/** Wraps a ledger so that a failed `confirm` or `release` is completed when the key is claimed again. */
export function rememberUnconfirmed(ledger: DeliveryLedger): DeliveryLedger {
  const unconfirmed = new BoundedSet(MAX_REMEMBERED);
  const unreleased = new BoundedSet(MAX_REMEMBERED);
  const claimOutcome = async (key: string): Promise<ClaimOutcome> => {
    if (unconfirmed.has(key)) {
      await ledger.confirm(key); // rejects while the store is down: the caller's batch fails and runs again
      unconfirmed.delete(key);
      return 'sent';
    }
    if (unreleased.has(key)) {
      await ledger.release(key);
      unreleased.delete(key);
    }
    return ledger.claimOutcome(key);
  };
  return {
    claimOutcome,
    claim: async (key) => (await claimOutcome(key)) === 'claimed',
    async confirm(key) {
      try {
        await ledger.confirm(key);
        unconfirmed.delete(key);
      } catch (error) {
        unconfirmed.add(key);
        throw error;
      }
    },
    async release(key) {
      try {
        await ledger.release(key);
        unreleased.delete(key);
      } catch (error) {
        unreleased.add(key);
        throw error;
      }
    },
  };
}

/** A set that forgets its oldest entries beyond `max`. */
class BoundedSet {
  readonly #keys = new Set<string>();

  constructor(private readonly max: number) {}

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  add(key: string): void {
    this.#keys.delete(key); // re-inserted last: the newest
    this.#keys.add(key);
    if (this.#keys.size > this.max) {
      const oldest = this.#keys.values().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#keys.delete(key);
  }
}
