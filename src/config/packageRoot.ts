/**
 * Finds the package's own folder (the one holding `package.json`), so that files shipped with the package
 * (`schemas/`, `config/`, `samples/`) can be read whether the code runs from `src/` (vitest, tsx) or from
 * `dist/src/` after `tsc`: the depth differs, the walk up does not care.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let ownRoot: string | undefined;

/**
 * The absolute path of the nearest folder that contains a `package.json`, starting at the folder of the file
 * `from` (a `file:` URL such as `import.meta.url`, or a file path; default: this module) and walking up. The
 * default answer is computed once and cached.
 *
 * @throws Error when no folder up to the file system root has a `package.json` (a broken install).
 */
export function packageRoot(from?: string | URL): string {
  if (from === undefined) {
    ownRoot ??= findPackageRoot(import.meta.url);
    return ownRoot;
  }
  return findPackageRoot(from);
}

function findPackageRoot(from: string | URL): string {
  const start = from instanceof URL || from.startsWith('file:') ? fileURLToPath(from) : from;
  let dir = dirname(start);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json in any folder above ${start}`);
    dir = parent;
  }
}
