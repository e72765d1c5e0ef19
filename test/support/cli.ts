/**
 * Runs the real command line in-process with captured streams, as a user's shell would see it.
 */
import { PassThrough, Readable } from 'node:stream';
import { runCli } from '../../src/cli/main.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON Lines. */
  readonly lines: Record<string, unknown>[];
}

export async function cli(
  argv: readonly string[],
  options: { stdin?: string; env?: Record<string, string | undefined>; now?: Date } = {},
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const code = await runCli(argv, {
    stdout,
    stderr,
    stdin: Readable.from(options.stdin !== undefined ? [options.stdin] : []),
    env: options.env ?? {},
    now: () => options.now ?? new Date('2026-11-28T00:00:00Z'),
  });
  const text = Buffer.concat(out).toString('utf8');
  const lines = text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code, stdout: text, stderr: Buffer.concat(err).toString('utf8'), lines };
}
