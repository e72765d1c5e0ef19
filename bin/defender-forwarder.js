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
// A reader that goes away (`| head`) is not an error: stop quietly, as other command-line tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}
try {
  const { runCli } = await import(main.href);
  process.exitCode = await runCli(process.argv.slice(2));
} catch (error) {
  // runCli answers every expected failure itself; this is the last resort for a defect: one line, exit 2.
  // Masked as the commands mask SDK text: a storage or Event Hubs error may quote a key or a SAS signature.
  const text = (error instanceof Error ? error.message : String(error)).replace(/\b(SharedAccessKey|AccountKey|SharedAccessSignature|sig)=([^;&\s"']+)/gi, '$1=<redacted>');
  process.stderr.write(`defender-forwarder: unexpected error: ${text}\n`);
  if (process.env.DEBUG) process.stderr.write(`${error instanceof Error ? error.stack : ''}\n`);
  process.exitCode = 2;
}
// The command is done and has closed what it opened. A handle some library leaves behind (an AMQP reconnect
// timer, a keep-alive socket) must not keep a stopped consumer alive: exit once the loop should have drained.
setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
