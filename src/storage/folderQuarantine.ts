/**
 * The quarantine in a local folder, for the command line: the same JSON documents as the blob store, under
 * the same relative names (`<folder>/2025/01/31/0-1234.json`), so a folder can be uploaded to the container
 * as is, and a container downloaded into a folder.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseUtc } from '../model/time.js';
import type { QuarantineEntry, QuarantineSink } from '../pipeline/quarantine.js';
import type { QuarantineBacklog, QuarantineListing } from './blobQuarantine.js';
import { encodeQuarantineDocument, quarantineBlobName } from './quarantineDocument.js';
import { QuarantineStoreError, failureFacts } from './quarantineStoreError.js';

/** Keeps quarantined records as JSON files under one folder (created as needed). */
export class FolderQuarantineStore implements QuarantineSink, QuarantineBacklog {
  /** The absolute path of the folder. */
  readonly folder: string;

  /** @param folder - Where the documents go; relative paths resolve against the current directory. */
  constructor(folder: string) {
    this.folder = path.resolve(folder);
  }

  /** `folder "<path>"`. */
  get location(): string {
    return this.#store();
  }

  /**
   * Lists the quarantine: every document's `code` and `quarantinedAt` (a folder has no metadata; the
   * documents are local). A document that does not parse is listed with code `unknown` and the file's
   * time. A folder that does not exist yet lists nothing.
   */
  async *list(): AsyncGenerator<QuarantineListing> {
    let names: string[];
    try {
      names = (await readdir(this.folder, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile() && entry.name.endsWith('.json'))
        .map((entry) => path.relative(this.folder, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
        .sort();
    } catch (error: unknown) {
      if (failureFacts(error).code === 'ENOENT') return;
      throw this.#listError(error);
    }
    for (const name of names) {
      const file = path.join(this.folder, ...name.split('/'));
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error: unknown) {
        if (failureFacts(error).code === 'ENOENT') continue; // removed while listed
        throw this.#listError(error);
      }
      const document = readListingFields(text);
      yield { name, code: document.code ?? 'unknown', quarantinedAt: document.quarantinedAt ?? (await stat(file).then((info) => info.mtime, () => undefined)) };
    }
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

  #listError(error: unknown): QuarantineStoreError {
    return new QuarantineStoreError(`quarantine store refused the request: ${this.#store()}: cannot list: ${failureFacts(error).message}`, this.#store(), '', false, error);
  }
}

/** `code` and `quarantinedAt` of a document, where it has them. */
function readListingFields(text: string): { code?: string; quarantinedAt?: Date } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof value !== 'object' || value === null) return {};
  const { code, quarantinedAt } = value as Record<string, unknown>;
  const at = typeof quarantinedAt === 'string' ? parseUtc(quarantinedAt) : undefined;
  return { ...(typeof code === 'string' ? { code } : {}), ...(at !== undefined ? { quarantinedAt: at } : {}) };
}
