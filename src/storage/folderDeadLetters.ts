/**
 * Dead letters in a local folder, for the command line: `<stateDir>/deadletter/<name>`, the same documents
 * under the same relative names as the blob store (see `deadLetterEntry.ts`), so a folder can be uploaded
 * to the container as is, and a container downloaded into a folder.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DeadLetter, DeadLetterSink } from '../delivery/contracts.js';
import { deadLetterBlobName, encodeDeadLetter } from './deadLetterEntry.js';
import { folderStoreError, StoreError } from './storeError.js';

/** The dead letters' folder under the state folder. */
export const DEAD_LETTER_FOLDER = 'deadletter';

/** Keeps dead letters as JSON files under `<stateDir>/deadletter` (created as needed). */
export class FolderDeadLetterStore implements DeadLetterSink {
  /** The absolute path of the dead-letter folder, `<stateDir>/deadletter`. */
  readonly folder: string;

  /** @param stateDir - The CLI's state folder; relative paths resolve against the current directory. */
  constructor(stateDir: string) {
    this.folder = path.join(path.resolve(stateDir), DEAD_LETTER_FOLDER);
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
    const target = this.pathFor(letter);
    // Names are built from slugs, but a store must never write outside its folder whatever it is given.
    if (!target.startsWith(this.folder + path.sep)) {
      throw new StoreError(`dead letter name "${name}" leaves folder "${this.folder}"`, `folder "${this.folder}"`, name, false, undefined);
    }
    const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(temporary, encodeDeadLetter(letter), 'utf8');
      await rename(temporary, target);
    } catch (error: unknown) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw folderStoreError('dead-letter', this.folder, `cannot write "${name}"`, name, error);
    }
  }
}
