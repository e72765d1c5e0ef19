/**
 * Reads `--input` arguments into Event Hub bodies: files, folders (file-name order) and `-` for stdin.
 * A file holds one body (object, array or `{"records": [...]}`) or one body per line (JSON Lines). Line mode
 * streams, so memory stays flat however large the file.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Envelope } from '../pipeline/decode.js';
import { Progress } from './progress.js';

/** File endings read from folders; other files in a folder are skipped (and said so). */
const READABLE_EXTENSIONS = new Set(['.json', '.jsonl', '.ndjson', '.txt']);
const DOCUMENTATION_EXTENSIONS = new Set(['.md', '.markdown']);
const LINE_EXTENSIONS = new Set(['.jsonl', '.ndjson']);

export class InputError extends Error {}

export interface InputOptions {
  readonly stdin: Readable;
  /** Told about files skipped in folders. */
  readonly onSkip?: (file: string, why: string) => void;
  /** Told when a new file starts, for progress. */
  readonly onFile?: (file: string) => void;
}

/** Expands the arguments into the list of sources, in order; fails on a path that does not exist. */
export async function expandInputs(inputs: readonly string[], options: Pick<InputOptions, 'onSkip'> = {}): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    if (input === '-') {
      out.push('-');
      continue;
    }
    let info;
    try {
      info = await stat(input);
    } catch (error) {
      throw new InputError(`--input ${input}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : String(error)}`, { cause: error });
    }
    if (info.isDirectory()) {
      out.push(...(await listFolder(input, options.onSkip)));
    } else {
      out.push(input);
    }
  }
  return out;
}

async function listFolder(folder: string, onSkip?: (file: string, why: string) => void): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const entry of entries) {
    const full = path.join(folder, entry.name);
    // Hidden files and documentation (a folder's README or SOURCES) are not records.
    if (entry.name.startsWith('.') || DOCUMENTATION_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) continue;
    if (entry.isDirectory()) {
      out.push(...(await listFolder(full, onSkip)));
    } else if (READABLE_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) {
      out.push(full);
    } else {
      onSkip?.(full, `not a ${[...READABLE_EXTENSIONS].join('/')} file`);
    }
  }
  return out;
}

/** Yields every body of every input, in order. */
export async function* readEnvelopes(inputs: readonly string[], options: InputOptions): AsyncGenerator<Envelope> {
  for (const source of await expandInputs(inputs, options)) {
    options.onFile?.(source);
    if (source === '-') {
      yield* readStream(options.stdin, 'stdin', false);
    } else {
      const lineMode = LINE_EXTENSIONS.has(path.extname(source).toLowerCase());
      yield* readStream(createReadStream(source, { encoding: 'utf8' }), source, lineMode);
    }
  }
}

/**
 * A stream is one body unless it is JSON Lines: a `.jsonl`/`.ndjson` file, or a stream whose first non-empty
 * line is a complete JSON value and more lines follow. Labels are `file` for one body, `file:line` per line.
 */
async function* readStream(stream: Readable, label: string, lineMode: boolean): AsyncGenerator<Envelope> {
  stream.setEncoding?.('utf8');
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let mode: 'undecided' | 'lines' | 'whole' = lineMode ? 'lines' : 'undecided';
  let pending: { line: string; number: number } | undefined;
  const whole: string[] = [];
  let number = 0;
  try {
    for await (const line of lines) {
      number += 1;
      if (mode === 'whole') {
        whole.push(line);
        continue;
      }
      if (line.trim() === '') {
        if (mode === 'undecided') whole.push(line);
        continue;
      }
      if (mode === 'undecided') {
        if (pending === undefined) {
          if (isJson(line)) {
            pending = { line, number };
          } else {
            mode = 'whole';
            whole.push(line);
          }
          continue;
        }
        // A second non-empty line after a complete JSON first line: JSON Lines.
        mode = 'lines';
        yield { input: `${label}:${pending.number}`, body: pending.line };
        pending = undefined;
      }
      yield { input: `${label}:${number}`, body: line };
    }
  } catch (error) {
    throw new InputError(`${label}: cannot read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (mode === 'lines' && pending !== undefined) {
    yield { input: `${label}:${pending.number}`, body: pending.line };
  } else if (mode === 'undecided' && pending !== undefined) {
    yield { input: label, body: pending.line };
  } else if (mode === 'whole') {
    yield* wholeOrLines(label, whole);
  } else if (mode === 'undecided' && number === 0) {
    // An empty file is one empty body: it is reported (quarantined), not silently skipped.
    yield { input: label, body: '' };
  } else if (mode === 'undecided') {
    yield { input: label, body: whole.join('\n') };
  }
}

/**
 * A stream read whole is one body, unless it is not JSON as a whole while its lines are: JSON Lines whose
 * first line is broken. Then each line is a body, so one bad line costs one record, not the file.
 */
function* wholeOrLines(label: string, lines: readonly string[]): Generator<Envelope> {
  const text = lines.join('\n');
  let wholeIsJson = true;
  try {
    JSON.parse(text);
  } catch {
    wholeIsJson = false;
  }
  const numbered = lines.map((line, i) => ({ line, number: i + 1 })).filter(({ line }) => line.trim() !== '');
  // Most lines after the first must be JSON on their own: a broken pretty-printed document is one body.
  const jsonLines = wholeIsJson ? 0 : numbered.slice(1).filter(({ line }) => isJson(line)).length;
  if (wholeIsJson || numbered.length < 2 || jsonLines * 2 < numbered.length - 1) {
    yield { input: label, body: text };
    return;
  }
  for (const { line, number } of numbered) yield { input: `${label}:${number}`, body: line };
}

function isJson(line: string): boolean {
  const trimmed = line.trim();
  const first = trimmed[0];
  if (first !== '{' && first !== '[') return false;
  try {
    JSON.parse(trimmed);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads every body of the inputs for a command, with what every command wants around it: progress on
 * stderr for runs over a second, and a note for each file skipped in a folder. `visit` answers how many
 * records the body held (for the progress count).
 */
export async function eachEnvelope(
  command: string,
  inputs: readonly string[],
  io: { readonly stdin: Readable; readonly stderr: Writable },
  visit: (envelope: Envelope) => Promise<number> | number,
  /** Stops reading when aborted (Ctrl-C): what was read is finished, nothing more is started. */
  signal?: AbortSignal,
): Promise<void> {
  const progress = new Progress(io.stderr, command);
  try {
    const envelopes = readEnvelopes(inputs, {
      stdin: io.stdin,
      onSkip: (file, why) => io.stderr.write(`${command}: skipped ${file}: ${why}\n`),
      onFile: (file) => progress.input(file),
    });
    for await (const envelope of envelopes) {
      if (signal?.aborted) break;
      progress.add(await visit(envelope));
    }
  } finally {
    progress.stop();
  }
}
