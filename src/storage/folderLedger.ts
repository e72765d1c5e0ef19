/**
 * The notification ledger in a local folder, for the command line: `<stateDir>/ledger/<aa>/<hash>.json`,
 * the same documents as the blob ledger (see `ledgerEntry.ts`), with the same semantics across processes
 * that share the folder:
 * - `claim` creates the entry exclusively (`open(path, 'wx')`): of two processes, exactly one creates it.
 * - Replacing an entry (taking over a stale claim, confirming or releasing one's own) is a compare-and-swap
 *   built from two atomic steps, because a file system has no conditional write: the replacer first
 *   creates, exclusively, a lock file named after the SHA-256 of the entry's text as it read it
 *   (`<hash>.json.<text hash>.lock`); only the holder re-reads the entry and, if the text is still the
 *   same, writes a temporary file and renames it over the entry (or unlinks the entry), then removes the
 *   lock. Two processes that read the same text compete for the same lock, so they never both win; one that
 *   read an older text finds a different text once it holds its lock, and gives up.
 * - A lock left by a process that died while holding it (within milliseconds of taking it) is removed by
 *   the first claimer that finds it older than the lease; that claimer answers false, the next one may
 *   take the entry over.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ClaimOutcome, DeliveryLedger } from '../delivery/contracts.js';
import {
  encodeLedgerDocument,
  judgeEntry,
  leaseOf,
  ledgerKeyHash,
  newClaim,
  OwnClaims,
  parseLedgerDocument,
  sentEntry,
  type LedgerDocument,
  type LedgerOptions,
} from './ledgerEntry.js';
import { failureFacts } from './quarantineStoreError.js';
import { folderStoreError, StoreError } from './storeError.js';

/** The ledger's folder under the state folder. */
export const LEDGER_FOLDER = 'ledger';

/** See `MAX_CLAIM_ROUNDS` of the blob ledger: an entry released between our create and our read. */
const MAX_CLAIM_ROUNDS = 3;

/** An entry as read: its exact text, its document (undefined when unreadable), and its modification time. */
interface ReadEntry {
  readonly text: string;
  readonly document: LedgerDocument | undefined;
  readonly modifiedAt: Date;
}

/** The notification ledger as files. See the module comment for the protocol. */
export class FolderLedger implements DeliveryLedger {
  /** The absolute path of the ledger folder, `<stateDir>/ledger`. */
  readonly folder: string;
  readonly #leaseMs: number;
  readonly #now: () => Date;
  /** The text of each claim this object made, as written: what confirm and release expect to find. */
  readonly #own = new OwnClaims<string>();

  /**
   * @param stateDir - The CLI's state folder; relative paths resolve against the current directory.
   * @throws RangeError when `leaseMs` is not a positive number.
   */
  constructor(stateDir: string, options: LedgerOptions = {}) {
    this.folder = path.join(path.resolve(stateDir), LEDGER_FOLDER);
    this.#leaseMs = leaseOf(options);
    this.#now = options.now ?? (() => new Date());
  }

  /** The absolute path of a key's entry. */
  pathFor(key: string): string {
    const hash = ledgerKeyHash(key);
    return path.join(this.folder, hash.slice(0, 2), `${hash}.json`);
  }

  /**
   * True when this caller may notify: the entry was created, or a stale pending claim was taken over.
   * False when the key was sent, is being sent, or another process won. Rejects with a {@link StoreError}
   * when the folder cannot be used.
   */
  async claim(key: string): Promise<boolean> {
    return (await this.claimOutcome(key)) === 'claimed';
  }

  /** `claim`, saying why not (see `BlobLedger.claimOutcome`). */
  async claimOutcome(key: string): Promise<ClaimOutcome> {
    const target = this.pathFor(key);
    const name = this.#nameOf(target);
    try {
      await mkdir(path.dirname(target), { recursive: true });
    } catch (error: unknown) {
      throw folderStoreError('ledger', this.folder, `cannot claim "${name}"`, name, error);
    }
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round += 1) {
      const claim = encodeLedgerDocument(newClaim(key, this.#now()));
      if (await this.#createExclusive(target, claim, name)) {
        this.#own.remember(key, claim);
        return 'claimed';
      }
      const existing = await this.#read(target, key, name, 'claim');
      if (existing === undefined) continue; // released in between: try the create again
      const verdict = judgeEntry(existing.document, existing.modifiedAt, this.#now(), this.#leaseMs);
      if (verdict === 'sent') return 'sent';
      if (verdict === 'held') return 'held';

      // A crashed run's claim: take it over only if it is still exactly what we read.
      const takeover = encodeLedgerDocument(newClaim(key, this.#now()));
      const won = await this.#replaceIfUnchanged(target, key, existing.text, takeover, name, 'claim', true);
      if (won) this.#own.remember(key, takeover);
      return won ? 'claimed' : 'held';
    }
    throw new StoreError(
      `ledger store kept changing: folder "${this.folder}": cannot claim "${name}": ` +
        `the entry was created and removed ${MAX_CLAIM_ROUNDS} times while it was read`,
      `folder "${this.folder}"`,
      name,
      false,
      undefined,
    );
  }

  /**
   * Marks the key `sent`: this object's claim if the entry still is that claim (after a takeover it is the
   * new claimer's); without a claim of its own, the entry is overwritten as sent.
   */
  async confirm(key: string): Promise<void> {
    const target = this.pathFor(key);
    const name = this.#nameOf(target);
    const own = this.#own.get(key);
    const ownDocument = own !== undefined ? parseLedgerDocument(own, key) : undefined;
    if (own === undefined || ownDocument === undefined) {
      const sent = encodeLedgerDocument(sentEntry(newClaim(key, this.#now()), this.#now()));
      try {
        await mkdir(path.dirname(target), { recursive: true });
        await this.#replace(target, sent);
      } catch (error: unknown) {
        throw folderStoreError('ledger', this.folder, `cannot confirm "${name}"`, name, error);
      }
      return;
    }
    await this.#replaceIfUnchanged(target, key, own, encodeLedgerDocument(sentEntry(ownDocument, this.#now())), name, 'confirm', false);
    this.#own.forget(key); // written, or no longer ours: settled either way
  }

  /**
   * Removes this object's claim of the key so that a later run may notify. Without a claim of its own (never
   * claimed here, released already, or forgotten) it does nothing: the entry may be another run's claim, and
   * a pending claim left behind expires with its lease.
   */
  async release(key: string): Promise<void> {
    const own = this.#own.get(key);
    if (own === undefined) return;
    const target = this.pathFor(key);
    await this.#replaceIfUnchanged(target, key, own, undefined, this.#nameOf(target), 'release', false);
    this.#own.forget(key);
  }

  /** Creates `target` holding `text` unless it exists; false when it exists. */
  async #createExclusive(target: string, text: string, name: string): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(target, 'wx');
    } catch (error: unknown) {
      if (failureFacts(error).code === 'EEXIST') return false;
      throw folderStoreError('ledger', this.folder, `cannot claim "${name}"`, name, error);
    }
    try {
      await handle.writeFile(text, 'utf8');
      await handle.close();
    } catch (error: unknown) {
      // Half a claim would hold the key for a whole lease: remove it, the caller may try again.
      await handle.close().catch(() => undefined);
      await rm(target, { force: true }).catch(() => undefined);
      throw folderStoreError('ledger', this.folder, `cannot claim "${name}"`, name, error);
    }
    return true;
  }

  /**
   * Replaces the entry with `next` (or removes it when `next` is undefined) if its text is still
   * `expected`, under the lock of `expected`. True when this call made the change.
   *
   * @param clearStaleLock - When the lock is held and older than the lease (its holder died), remove it so
   *   that a later call may proceed; this call still answers false.
   */
  async #replaceIfUnchanged(
    target: string,
    key: string,
    expected: string,
    next: string | undefined,
    name: string,
    verb: string,
    clearStaleLock: boolean,
  ): Promise<boolean> {
    const lock = `${target}.${createHash('sha256').update(expected, 'utf8').digest('hex').slice(0, 32)}.lock`;
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx' });
    } catch (error: unknown) {
      if (failureFacts(error).code !== 'EEXIST') throw folderStoreError('ledger', this.folder, `cannot ${verb} "${name}"`, name, error);
      if (clearStaleLock) await this.#clearIfStale(lock);
      return false;
    }
    try {
      const current = await this.#read(target, key, name, verb);
      if (current === undefined || current.text !== expected) return false;
      try {
        if (next === undefined) await unlink(target);
        else await this.#replace(target, next);
      } catch (error: unknown) {
        throw folderStoreError('ledger', this.folder, `cannot ${verb} "${name}"`, name, error);
      }
      return true;
    } finally {
      await rm(lock, { force: true }).catch(() => undefined);
    }
  }

  async #clearIfStale(lock: string): Promise<void> {
    try {
      const { mtime } = await stat(lock);
      if (this.#now().getTime() - mtime.getTime() >= this.#leaseMs) await rm(lock, { force: true });
    } catch {
      // Gone already, or unreadable: nothing to clear, and the claim answers false either way.
    }
  }

  /** Writes `text` to a temporary file and renames it over `target`: readers see the old or the new text. */
  async #replace(target: string, text: string): Promise<void> {
    const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, text, 'utf8');
      await rename(temporary, target);
    } catch (error: unknown) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  /** Reads the entry; undefined when there is none. */
  async #read(target: string, key: string, name: string, verb: string): Promise<ReadEntry | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(target, 'r');
    } catch (error: unknown) {
      if (failureFacts(error).code === 'ENOENT') return undefined;
      throw folderStoreError('ledger', this.folder, `cannot ${verb} "${name}": cannot read the entry`, name, error);
    }
    try {
      // One handle for both: a rename over the entry meanwhile does not mix two versions.
      const text = await handle.readFile('utf8');
      const { mtime } = await handle.stat();
      return { text, document: parseLedgerDocument(text, key), modifiedAt: mtime };
    } catch (error: unknown) {
      throw folderStoreError('ledger', this.folder, `cannot ${verb} "${name}": cannot read the entry`, name, error);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  #nameOf(target: string): string {
    return path.relative(this.folder, target).split(path.sep).join('/');
  }
}
