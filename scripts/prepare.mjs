// `prepare` (run by `npm ci` / `npm install`): compile the TypeScript sources to dist/.
// A production-only install (`npm ci --omit=dev`) has no TypeScript compiler: it then keeps the dist/ it
// has (build it before packaging) instead of failing the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  const note = existsSync(new URL('../dist/src/cli/main.js', import.meta.url))
    ? 'using the dist/ already built'
    : 'dist/ is missing: run `npm run build` where dev dependencies are installed';
  process.stderr.write(`defender-forwarder prepare: no TypeScript compiler (production install); ${note}\n`);
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
