/**
 * `defender-forwarder redrive`: delivers the dead letters in the state folder (or, with
 * FORWARDER_STORAGE_CONNECTION, the Function's container) again, through `redriveDeadLetters`. stdout: one
 * report line per letter (`--report json|table`) and, with `--summary json`, the `run.summary` line;
 * stderr: progress and a summary for people. Exit 0 when every due letter was re-driven or was a
 * duplicate, 1 when some still fail, expired, cannot be read or lost their destination, 2 for usage and
 * configuration errors (and a store that cannot be reached).
 */
import { InvalidArgumentError } from 'commander';
import { accountRedrive, emptyRedriveCounts, redriveDeadLetters, type RedriveCounts, type RedriveLetterEvent, type RedriveResult } from '../delivery/redrive.js';
import type { RoutingRules } from '../routing/types.js';
import { recordRun } from '../telemetry/metrics.js';
import { closeHttpClient, createHttpClient } from '../sinks/http.js';
import { closeSinks, createSinks } from '../sinks/registry.js';
import { SinkConfigError } from '../sinks/settings.js';
import type { Sink } from '../sinks/sink.js';
import { EXIT, InvalidSettingError, type ExitCode } from './exit.js';
import { writeOut, type CliIo } from './io.js';
import { Progress } from './progress.js';
import { oneLine } from './render.js';
import { openStores, type CliStores } from './stores.js';

export interface RedriveCommandOptions {
  readonly rules: RoutingRules;
  readonly stateDir: string;
  /** Only these destinations' letters. */
  readonly destinations?: readonly string[];
  /** Ignore the spacing between attempts. */
  readonly force: boolean;
  /** A letter older than this that fails again is expired. */
  readonly maxAgeMs: number;
  readonly dryRun: boolean;
  readonly report: 'json' | 'table';
  /** `json`: the `run.summary` line on stdout too, after the report. */
  readonly summary: 'text' | 'json';
}

/** How many letters of each kind of trouble the summary names one by one. */
const LISTED = 10;

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Reads a duration such as `7d`, `12h`, `90m`, `1d12h` or `45s` into milliseconds (a commander option
 * parser: a bad value is a usage error naming the option).
 */
export function parseDuration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  const consumed = parts.map((part) => part[0]).join('');
  const totalMs = parts.reduce((sum, part) => sum + Number(part[1]) * (UNITS_MS[part[2] ?? ''] ?? Number.NaN), 0);
  if (parts.length === 0 || consumed !== text.trim() || !Number.isFinite(totalMs) || totalMs <= 0) {
    throw new InvalidArgumentError('expected a duration such as 7d, 12h, 90m or 1d12h');
  }
  return totalMs;
}

export async function redriveCommand(options: RedriveCommandOptions, io: CliIo): Promise<ExitCode> {
  let stores: CliStores;
  let sinks = new Map<string, Sink>();
  const http = createHttpClient();
  try {
    stores = await openStores(options.stateDir, io.env);
    // Like forward: every destination of the rules is built, so a missing secret is named before anything
    // is claimed. A dry run sends nothing and needs none.
    if (!options.dryRun) sinks = createSinks(options.rules, { env: io.env, http });
  } catch (error) {
    closeHttpClient(http);
    if (error instanceof SinkConfigError || error instanceof InvalidSettingError) {
      io.stderr.write(`defender-forwarder: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  const controller = new AbortController();
  const onSignal = (): void => {
    io.stderr.write('redrive: interrupted: no more letters are claimed; those in flight are settled\n');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  const progress = new Progress(io.stderr, options.dryRun ? 'redrive (dry run)' : 'redrive');
  const notable: RedriveLetterEvent[] = [];
  let output = options.report === 'table' ? writeOut(io.stdout, tableHeader()) : Promise.resolve();
  const startedAt = io.now();
  const startedMs = Date.now();
  let result: RedriveResult;
  try {
    result = await redriveDeadLetters({
      store: stores.deadLetters,
      rules: options.rules,
      sinks,
      ledger: stores.ledger,
      now: io.now,
      signal: controller.signal,
      maxAgeMs: options.maxAgeMs,
      force: options.force,
      dryRun: options.dryRun,
      ...(options.destinations !== undefined && options.destinations.length > 0 ? { destinations: options.destinations } : {}),
      onLetter: (event) => {
        progress.add();
        if (isTrouble(event) && notable.filter((one) => one.outcome === event.outcome).length < LISTED) notable.push(event);
        const line = options.report === 'json' ? `${JSON.stringify(event)}\n` : tableRow(event);
        output = output.then(() => writeOut(io.stdout, line));
      },
    });
    await output;
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    await closeSinks(sinks);
    closeHttpClient(http);
  }
  io.stderr.write(renderRedriveSummary(result, stores.deadLetters.location, Date.now() - startedMs, notable));
  const account = accountRedrive(result, { source: stores.deadLetters.location, startedAt, finishedAt: io.now() });
  recordRun(account);
  if (options.summary === 'json') await writeOut(io.stdout, `${JSON.stringify(account)}\n`);
  if (result.dryRun) return EXIT.ok;
  const { failed, expired, unreadable, destinationGone } = result.totals;
  // Exit 1 is the command line's "something needs a look" code (forward uses it for quarantined records).
  return failed + expired + unreadable + destinationGone > 0 ? EXIT.quarantined : EXIT.ok;
}

function isTrouble(event: RedriveLetterEvent): boolean {
  return event.outcome === 'failed' || event.outcome === 'expired' || event.outcome === 'unreadable' || event.outcome === 'destinationGone';
}

const COLUMNS = [
  { title: 'OUTCOME', width: 16 },
  { title: 'DESTINATION', width: 20 },
  { title: 'ATTEMPTS', width: 8 },
  { title: 'LETTER', width: 60 },
] as const;

function tableHeader(): string {
  return `${COLUMNS.map((column) => column.title.padEnd(column.width)).join(' ')} WHY / NEXT ATTEMPT\n`;
}

function tableRow(event: RedriveLetterEvent): string {
  const cells = [event.outcome, event.destination, String(event.attempts), event.name].map((text, index) => {
    const width = COLUMNS[index]?.width ?? 0;
    // Names are long: keep their end, where the record's stem and hash are.
    return (text.length > width ? `…${text.slice(text.length - width + 1)}` : text).padEnd(width);
  });
  const why = [event.reason, event.nextAttemptAt !== undefined ? `next ${event.nextAttemptAt}` : undefined].filter((part) => part !== undefined).join(', ');
  return `${cells.join(' ')} ${why}\n`;
}

/** Column titles of the per-destination table, with the count each shows. */
const COUNT_COLUMNS: readonly (readonly [string, keyof RedriveCounts])[] = [
  ['REDRIVEN', 'redriven'],
  ['DUPLICATE', 'duplicates'],
  ['HELD', 'held'],
  ['FAILED', 'failed'],
  ['EXPIRED', 'expired'],
  ['NOT DUE', 'notDue'],
  ['UNREADABLE', 'unreadable'],
  ['GONE', 'destinationGone'],
];
const DRY_RUN_COLUMNS: readonly (readonly [string, keyof RedriveCounts])[] = [
  ['DUE', 'due'],
  ['NOT DUE', 'notDue'],
  ['GONE', 'destinationGone'],
];

/** The summary for people (stderr): totals, a table per destination, and the letters that need a look. */
export function renderRedriveSummary(result: RedriveResult, location: string, elapsedMs: number, notable: readonly RedriveLetterEvent[]): string {
  const lines: string[] = [];
  const title = `defender-forwarder redrive${result.dryRun ? ' (dry run: nothing was sent or changed)' : ''}`;
  lines.push(`${title}: ${result.letters} letter${result.letters === 1 ? '' : 's'} in ${location} in ${(elapsedMs / 1000).toFixed(2)} s${result.aborted ? ' (interrupted)' : ''}`);
  const columns = result.dryRun ? DRY_RUN_COLUMNS : COUNT_COLUMNS;
  lines.push(`  ${columns.map(([title, key]) => `${title.toLowerCase()} ${result.totals[key]}`).join(' · ')}`);
  const destinations = Object.keys(result.byDestination).sort();
  if (destinations.length > 0) {
    lines.push('', `  ${'DESTINATION'.padEnd(22)}${columns.map(([title]) => title.padStart(title.length + 2)).join('')}`);
    for (const name of destinations) {
      const counts = result.byDestination[name] ?? emptyRedriveCounts();
      lines.push(`  ${name.padEnd(22)}${columns.map(([title, key]) => String(counts[key]).padStart(title.length + 2)).join('')}`);
    }
  }
  const section = (outcome: RedriveLetterEvent['outcome'], heading: string): void => {
    const events = notable.filter((event) => event.outcome === outcome);
    if (events.length === 0) return;
    lines.push('', `  ${heading}`);
    for (const event of events) {
      const next = event.nextAttemptAt !== undefined ? `; next attempt ${event.nextAttemptAt}` : '';
      lines.push(`    ${event.name}: ${event.reason ?? ''} (re-drive attempt ${event.attempts}${next})${event.message !== undefined ? `: ${oneLine(event.message)}` : ''}`);
    }
  };
  section('failed', 'still failing');
  section('expired', 'expired: too old, kept under expired/ (deliver by hand, or delete)');
  section('unreadable', 'unreadable: left where they are');
  section('destinationGone', 'destination no longer in the rules: left; they expire like the others');
  return `${lines.join('\n')}\n`;
}
