/**
 * The quarantine in a local folder, for the command line: the same JSON documents as the blob store, under
 * the same relative names (`<folder>/2025/01/31/0-1234.json`), so a folder can be uploaded to the container
 * as is, and a container downloaded into a folder.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { QuarantineEntry, QuarantineSink } from '../pipeline/quarantine.js';
import { encodeQuarantineDocument, quarantineBlobName } from './quarantineDocument.js';
import { QuarantineStoreError, failureFacts } from './quarantineStoreError.js';

/** Keeps quarantined records as JSON files under one folder (created as needed). */
export class FolderQuarantineStore implements QuarantineSink {
  /** The absolute path of the folder. */
  readonly folder: string;

  /** @param folder - Where the documents go; relative paths resolve against the current directory. */
  constructor(folder: string) {
    this.folder = path.resolve(folder);
  }

  /** The absolute path an entry is (or would be) written to. */
  pathFor(entry: QuarantineEntry): string {
    return path.join(this.folder, ...quarantineBlobName(entry).split('/'));
  }

  /**
   * Writes the entry's document, replacing an earlier write of the same entry. The write is atomic (a
   * temporary file renamed over the target): a crash never leaves half a document. Rejects with a
   * {@link QuarantineStoreError} when the folder cannot be written.
   */
  async put(entry: QuarantineEntry): Promise<void> {
    const name = quarantineBlobName(entry);
    const target = this.pathFor(entry);
    // Names are built from slugs, but a store must never write outside its folder whatever it is given.
    if (!target.startsWith(this.folder + path.sep)) {
      throw new QuarantineStoreError(`quarantine entry name "${name}" leaves folder "${this.folder}"`, this.#store(), name, false, undefined);
    }
    const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(temporary, encodeQuarantineDocument(entry), 'utf8');
      await rename(temporary, target);
    } catch (error: unknown) {
      await rm(temporary, { force: true }).catch(() => undefined);
      const facts = failureFacts(error);
      throw new QuarantineStoreError(
        `quarantine store refused the write: ${this.#store()}: cannot write "${name}": ${facts.message}`,
        this.#store(),
        name,
        false,
        error,
      );
    }
  }

  #store(): string {
    return `folder "${this.folder}"`;
  }
}
