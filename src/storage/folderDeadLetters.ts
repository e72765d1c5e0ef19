/**
 * Dead letters in a local folder, for the command line: `<stateDir>/deadletter/<name>`, the same documents
 * under the same relative names as the blob store (see `deadLetterEntry.ts`), so a folder can be uploaded
 * to the container as is, and a container downloaded into a folder.
 *
 * Re-drive (see `deadLetterStore.ts`) keeps a letter's re-drive state in a sidecar, `<name>.redrive`, next
 * to it (expired letters: under `expired/`, with theirs). A file system has no conditional write, so the
 * state is replaced by a compare-and-swap of two atomic steps, as the folder ledger does: the writer first
 * creates, exclusively, a lock named after the version it read (`<name>.redrive.<version>.lock`, the
 * version being a hash of the sidecar's text, or `none`); only the lock's holder re-reads the sidecar and,
 * if it is still that version, writes the new state to a temporary file and renames it over the sidecar
 * (or deletes or moves the letter), then removes the lock. Two re-drivers that listed the same version
 * compete for the same lock, so exactly one wins; one that listed an older version finds another once it
 * holds its lock, and leaves the letter.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DeadLetter, DeadLetterSink } from '../delivery/contracts.js';
import {
  deadLetterBlobMetadata,
  deadLetterBlobName,
  deadLetteredAtOf,
  deadLetterNamePrefix,
  destinationMetadataValue,
  encodeDeadLetter,
  encodeRedriveState,
  EXPIRED_PREFIX,
  FRESH_REDRIVE_STATE,
  isExpiredLetterName,
  isLiveLetterName,
  parseDeadLetter,
  parseRedriveState,
  type RedriveState,
} from './deadLetterEntry.js';
import type { DeadLetterListing, DeadLetterListOptions, DeadLetterRead, DeadLetterStore } from './deadLetterStore.js';
import { failureFacts, folderStoreError, StoreError } from './storeError.js';

/** The dead letters' folder under the state folder. */
export const DEAD_LETTER_FOLDER = 'deadletter';

/** The suffix of a letter's re-drive sidecar. */
export const REDRIVE_SIDECAR_SUFFIX = '.redrive';

/** The version of a letter that has no sidecar yet (never re-driven). */
const NO_SIDECAR = 'none';

/**
 * A lock is held for the few milliseconds of one swap; one older than this was left by a process that died
 * holding it, and is removed by the next writer that finds it (which still leaves the letter this time).
 */
const STALE_LOCK_MS = 60_000;

/** Keeps dead letters as JSON files under `<stateDir>/deadletter` (created as needed). */
export class FolderDeadLetterStore implements DeadLetterSink, DeadLetterStore {
  /** The absolute path of the dead-letter folder, `<stateDir>/deadletter`. */
  readonly folder: string;

  /** @param stateDir - The CLI's state folder; relative paths resolve against the current directory. */
  constructor(stateDir: string) {
    this.folder = path.join(path.resolve(stateDir), DEAD_LETTER_FOLDER);
  }

  /** `folder "<stateDir>/deadletter"`. */
  get location(): string {
    return `folder "${this.folder}"`;
  }

  /** The absolute path a letter is (or would be) written to. */
  pathFor(letter: DeadLetter): string {
    return path.join(this.folder, ...deadLetterBlobName(letter).split('/'));
  }

  /**
   * Writes the letter, replacing an earlier write of the same letter. The write is atomic (a temporary file
   * renamed over the target): a crash never leaves half a letter. Rejects with a {@link StoreError} when the
   * folder cannot be written.
   */
  async put(letter: DeadLetter): Promise<void> {
    const name = deadLetterBlobName(letter);
    const target = this.#pathOf(name);
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await writeAtomically(target, encodeDeadLetter(letter));
    } catch (error: unknown) {
      throw folderStoreError('dead-letter', this.folder, `cannot write "${name}"`, name, error);
    }
  }

  /**
   * Lists letters in name order, reading each (a folder has no metadata; the documents are local). A folder
   * that does not exist yet lists nothing.
   */
  async *list(options: DeadLetterListOptions = {}): AsyncGenerator<DeadLetterListing> {
    const expired = options.expired === true;
    const keep = expired ? isExpiredLetterName : isLiveLetterName;
    const prefix = `${expired ? EXPIRED_PREFIX : ''}${options.destination !== undefined ? deadLetterNamePrefix(options.destination) : ''}`;
    const destination = options.destination !== undefined ? destinationMetadataValue(options.destination) : undefined;
    for await (const name of this.#walk(prefix.replace(/\/$/, ''))) {
      if (!keep(name)) continue;
      const entry = await this.#entry(name);
      if (entry === undefined) continue; // deleted while listed
      if (destination !== undefined && entry.metadata['destination'] !== destination) continue;
      yield entry;
    }
  }

  /** Reads and parses the letter. */
  async read(entry: DeadLetterListing): Promise<DeadLetterRead> {
    const text = await this.#readText(entry.name, 'read');
    if (text === undefined) return { status: 'gone' };
    const parsed = parseDeadLetter(text);
    return parsed.ok ? { status: 'ok', letter: parsed.letter } : { status: 'unreadable', problem: parsed.problem };
  }

  /** Replaces the sidecar if it is still `entry.version` (see the module comment). */
  async recordAttempt(entry: DeadLetterListing, state: RedriveState): Promise<DeadLetterListing | undefined> {
    return this.#ifCurrent(entry, 'record a re-drive attempt of', async (file) => {
      const text = encodeRedriveState(state);
      await writeAtomically(`${file}${REDRIVE_SIDECAR_SUFFIX}`, text);
      return { ...entry, redrive: state, version: versionOf(text) };
    });
  }

  /** Deletes the letter and its sidecar if the sidecar is still `entry.version`. */
  async delete(entry: DeadLetterListing): Promise<boolean> {
    const done = await this.#ifCurrent(entry, 'delete', async (file) => {
      await rm(file);
      await rm(`${file}${REDRIVE_SIDECAR_SUFFIX}`, { force: true });
      return true;
    });
    return done === true;
  }

  /** Moves the letter to `expired/<name>` with `state` as its sidecar, if the sidecar is still `entry.version`. */
  async expire(entry: DeadLetterListing, state: RedriveState): Promise<boolean> {
    const target = this.#pathOf(`${EXPIRED_PREFIX}${entry.name}`);
    const done = await this.#ifCurrent(entry, 'expire', async (file) => {
      await mkdir(path.dirname(target), { recursive: true });
      // The state first: a crash after it leaves a live letter and a stray sidecar, never a letter without it.
      await writeAtomically(`${target}${REDRIVE_SIDECAR_SUFFIX}`, encodeRedriveState(state));
      await rename(file, target);
      await rm(`${file}${REDRIVE_SIDECAR_SUFFIX}`, { force: true });
      return true;
    });
    return done === true;
  }

  /**
   * Runs `change` on the letter's file while holding the lock of `entry.version`, if that is still the
   * sidecar's version and the letter exists; undefined otherwise.
   */
  async #ifCurrent<T>(entry: DeadLetterListing, verb: string, change: (file: string) => Promise<T>): Promise<T | undefined> {
    const file = this.#pathOf(entry.name);
    const lock = `${file}${REDRIVE_SIDECAR_SUFFIX}.${entry.version}.lock`;
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx' });
    } catch (error: unknown) {
      const code = failureFacts(error).code;
      if (code === 'ENOENT') return undefined; // the letter's folder is gone: so is the letter
      if (code !== 'EEXIST') throw folderStoreError('dead-letter', this.folder, `cannot ${verb} "${entry.name}"`, entry.name, error);
      await removeIfStale(lock);
      return undefined;
    }
    try {
      const current = await this.#sidecar(file, entry.name, verb);
      if (current.version !== entry.version) return undefined;
      if ((await this.#readText(entry.name, verb)) === undefined) return undefined;
      return await change(file);
    } catch (error: unknown) {
      if (error instanceof StoreError) throw error;
      throw folderStoreError('dead-letter', this.folder, `cannot ${verb} "${entry.name}"`, entry.name, error);
    } finally {
      await rm(lock, { force: true });
    }
  }

  /** The listing of one name: read, parsed for its metadata, with its sidecar; undefined when it is gone. */
  async #entry(name: string): Promise<DeadLetterListing | undefined> {
    const text = await this.#readText(name, 'list');
    if (text === undefined) return undefined;
    const file = this.#pathOf(name);
    const parsed = parseDeadLetter(text);
    const live = name.startsWith(EXPIRED_PREFIX) && isExpiredLetterName(name) ? name.slice(EXPIRED_PREFIX.length) : name;
    const destination = live.split('/')[0] ?? 'unknown';
    const metadata: Record<string, string> = parsed.ok ? deadLetterBlobMetadata(parsed.letter) : { destination, reason: 'unreadable' };
    const sidecar = await this.#sidecar(file, name, 'list');
    return {
      name,
      destination: metadata['destination'] ?? destination,
      reason: metadata['reason'] ?? 'unknown',
      deadLetteredAt: deadLetteredAtOf(metadata) ?? (await modifiedAt(file)),
      redrive: sidecar.state,
      metadata,
      version: sidecar.version,
    };
  }

  async #sidecar(file: string, name: string, verb: string): Promise<{ state: RedriveState; version: string }> {
    const text = await this.#readFile(`${file}${REDRIVE_SIDECAR_SUFFIX}`, name, verb);
    return text === undefined ? { state: FRESH_REDRIVE_STATE, version: NO_SIDECAR } : { state: parseRedriveState(text), version: versionOf(text) };
  }

  async #readText(name: string, verb: string): Promise<string | undefined> {
    return this.#readFile(this.#pathOf(name), name, verb);
  }

  /** The file's text; undefined when it does not exist. */
  async #readFile(file: string, name: string, verb: string): Promise<string | undefined> {
    try {
      return await readFile(file, 'utf8');
    } catch (error: unknown) {
      if (failureFacts(error).code === 'ENOENT') return undefined;
      throw folderStoreError('dead-letter', this.folder, `cannot ${verb} "${name}"`, name, error);
    }
  }

  /** Store-relative names of the files under `relative` (a folder below the store's), in name order. */
  async *#walk(relative: string): AsyncGenerator<string> {
    let entries;
    try {
      entries = await readdir(this.#pathOf(relative, true), { withFileTypes: true });
    } catch (error: unknown) {
      const code = failureFacts(error).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw folderStoreError('dead-letter', this.folder, `cannot list "${relative}"`, relative, error);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) yield* this.#walk(name);
      else if (entry.isFile()) yield name;
    }
  }

  /** The absolute path of a store-relative name; never outside the folder, whatever the name. */
  #pathOf(name: string, allowRoot = false): string {
    const target = path.join(this.folder, ...name.split('/'));
    if (target.startsWith(this.folder + path.sep) || (allowRoot && target === this.folder)) return target;
    throw new StoreError(`dead letter name "${name}" leaves folder "${this.folder}"`, this.location, name, false, undefined);
  }
}

/** Writes a temporary file and renames it over `target`: readers see the old text or the new, never half. */
async function writeAtomically(target: string, text: string): Promise<void> {
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, text, 'utf8');
    await rename(temporary, target);
  } catch (error: unknown) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
}

function versionOf(sidecarText: string): string {
  return createHash('sha256').update(sidecarText, 'utf8').digest('hex').slice(0, 32);
}

async function modifiedAt(file: string): Promise<Date | undefined> {
  try {
    return (await stat(file)).mtime;
  } catch {
    return undefined;
  }
}

async function removeIfStale(lock: string): Promise<void> {
  try {
    if (Date.now() - (await stat(lock)).mtimeMs > STALE_LOCK_MS) await rm(lock, { force: true });
  } catch {
    // Gone already: its holder finished.
  }
}
