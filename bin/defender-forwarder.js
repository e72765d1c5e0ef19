#!/usr/bin/env node
// Entry point of the `defender-forwarder` command. The TypeScript sources are compiled to dist/ by
// `npm ci` (the `prepare` script) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('defender-forwarder: dist/ is missing; run `npm run build` (npm ci does it for you)\n');
  process.exit(2);
}
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
