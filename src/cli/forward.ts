/**
 * `defender-forwarder forward`: runs the pipeline over files, folders or stdin and reports, per record, where
 * it goes (or would go, with `--dry-run`) and why.
 */
import { MemoryLedger } from '../routing/dedupe.js';
import type { RoutingRules } from '../routing/types.js';
import type { QuarantineSink } from '../pipeline/quarantine.js';
import type { Envelope } from '../pipeline/decode.js';
import { addToSummary, createPipeline, emptySummary, type Pipeline, type RecordResult, type RunSummary } from '../pipeline/run.js';
import { eachEnvelope } from './inputs.js';
import { writeOut, type CliIo } from './io.js';
import { oneLine, renderSummary, tableHeader, tableRow, type SummaryContext } from './render.js';
import { PreviewCollector } from './preview.js';
import { createDelivery } from '../delivery/deliver.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../delivery/retry.js';
import type { DeadLetterSink, DeliveryLedger } from '../delivery/contracts.js';
import type { Sink } from '../sinks/sink.js';
import { EXIT, InvalidSettingError, type ExitCode } from './exit.js';
import { recordRun } from '../telemetry/metrics.js';
import { accountRun } from '../pipeline/accounting.js';
import { deliveryBudgetSeconds } from '../config/appSettings.js';

/** Per-record report on stdout: JSON lines, a table, or none (a long-running consumer logs summaries only). */
export type ReportFormat = 'json' | 'table' | 'none';

export interface ForwardOptions {
  readonly inputs: readonly string[];
  readonly rules: RoutingRules;
  readonly dryRun: boolean;
  readonly report: ReportFormat;
  /** Where quarantined records go (in a dry run: only when asked for). */
  readonly quarantine?: QuarantineSink;
  /** Real delivery: the sinks, ledger and dead-letter store (absent in a dry run). */
  readonly delivery?: { readonly sinks: ReadonlyMap<string, Sink>; readonly ledger: DeliveryLedger; readonly deadLetters: DeadLetterSink };
  /** `--preview DIR` with the sinks that render it. */
  readonly preview?: { readonly folder: string; readonly sinks: ReadonlyMap<string, Sink> };
  /** Cancels delivery (Ctrl-C): what is pending is dead-lettered, not lost. */
  readonly signal?: AbortSignal;
  /** `json`: the run's `run.summary` accounting line on stdout too, after the report (as `redrive` does). */
  readonly summary?: 'text' | 'json';
}

type MuteTally = { count: number; reason: string; until: string; destinations: Set<string> };

/** A batch of bodies closes at this many bodies or characters (about what one Event Hub batch holds). */
const BATCH_BODIES = 500;
const BATCH_CHARS = 4 * 1024 * 1024;

/** How many quarantined / unrouted records the summary names one by one. */
const LISTED = 10;

/** What a forward run (over files or off the hub) needs to build its pipeline. */
export type PipelineParts = Pick<ForwardOptions, 'rules' | 'quarantine' | 'delivery' | 'signal'>;

/**
 * The pipeline of a command-line run: real delivery when `delivery` is given (retries and dead letters told
 * on stderr), else decisions only, with an in-memory ledger.
 */
export function createRunPipeline(options: PipelineParts, io: CliIo): Pipeline {
  const delivery = options.delivery
    ? createDelivery({
        rules: options.rules,
        sinks: options.delivery.sinks,
        ledger: options.delivery.ledger,
        deadLetters: options.delivery.deadLetters,
        policy: deliveryPolicy(io.env),
        ...(options.signal ? { signal: options.signal } : {}),
        retry: {
          onRetry: (event) =>
            io.stderr.write(
              `forward: ${event.sink}: attempt ${event.attempt} failed for ${event.items} record${event.items === 1 ? '' : 's'} (${event.reason}); retrying in ${(event.delayMs / 1000).toFixed(1)} s\n`,
            ),
        },
        onDeadLetter: (letter) =>
          io.stderr.write(`forward: dead-lettered ${oneLine(letter.input)} for ${letter.destination} after ${letter.attempts} attempts: ${oneLine(letter.error.message)}\n`),
      })
    : undefined;
  return createPipeline({
    rules: options.rules,
    ledger: options.delivery?.ledger ?? new MemoryLedger(),
    ...(options.quarantine ? { quarantine: options.quarantine } : {}),
    ...(delivery ? { delivery } : {}),
    now: io.now,
  });
}

/**
 * The retry policy of a command-line run: the default, with the time budget per batch and destination from
 * DELIVERY_BUDGET_SECONDS (5 to 300, as for the Function) when set.
 *
 * @throws InvalidSettingError naming the setting when it is out of range.
 */
export function deliveryPolicy(env: Readonly<Record<string, string | undefined>>): RetryPolicy {
  if (!env['DELIVERY_BUDGET_SECONDS']?.trim()) return DEFAULT_RETRY_POLICY;
  const seconds = deliveryBudgetSeconds(env);
  if (seconds === undefined) {
    throw new InvalidSettingError(`DELIVERY_BUDGET_SECONDS=${env['DELIVERY_BUDGET_SECONDS']?.trim() ?? ''}: expected a number of seconds from 5 to 300`);
  }
  return { ...DEFAULT_RETRY_POLICY, maxTotalMs: seconds * 1000 };
}

export async function forwardCommand(options: ForwardOptions, io: CliIo): Promise<ExitCode> {
  const pipeline = createRunPipeline(options, io);
  const preview = options.preview ? new PreviewCollector() : undefined;
  const startedMs = Date.now();
  const tally = new RunTally();
  let bodies = 0;
  if (options.report === 'table') await writeOut(io.stdout, tableHeader());
  // Bodies are processed in batches, as the Function gets them from the hub: Splunk receives batched
  // requests, not one per file or line, and `--preview` shows the requests a real run sends.
  let pending: Envelope[] = [];
  let pendingChars = 0;
  const flush = async (): Promise<number> => {
    if (pending.length === 0) return 0;
    const batch = pending;
    pending = [];
    pendingChars = 0;
    const results = await pipeline.processBatch(batch);
    for (const result of results) {
      tally.add(result);
      preview?.add(result);
      await writeRecord(io, options.report, result);
    }
    return results.length;
  };
  await eachEnvelope(
    options.dryRun ? 'forward (dry run)' : 'forward',
    options.inputs,
    io,
    async (envelope) => {
      bodies += 1;
      pending.push(envelope);
      pendingChars += typeof envelope.body === 'string' ? envelope.body.length : 0;
      return pending.length >= BATCH_BODIES || pendingChars >= BATCH_CHARS ? flush() : 0;
    },
    options.signal,
  );
  await flush();
  const title = `defender-forwarder forward${options.dryRun ? ' (dry run: nothing was sent)' : ''}`;
  io.stderr.write(renderSummary({ title, dryRun: options.dryRun, bodies, elapsedMs: Date.now() - startedMs, ...tally.view() }));
  const account = accountRun(tally.summary, {
    host: 'cli',
    source: options.inputs.join(' '),
    startedAt: new Date(startedMs),
    finishedAt: new Date(),
    extra: { bodies, dryRun: options.dryRun },
  });
  recordRun(account);
  if (options.summary === 'json') await writeOut(io.stdout, `${JSON.stringify(account)}\n`);
  if (preview && options.preview) {
    const files = await preview.write(options.preview.folder, options.preview.sinks);
    io.stderr.write(`  preview: ${files} files written under ${options.preview.folder}\n`);
  }
  return tally.exitCode();
}

/** One record's report line on stdout, in the chosen format. */
export async function writeRecord(io: CliIo, format: ReportFormat, result: RecordResult): Promise<void> {
  if (format === 'none') return;
  await writeOut(io.stdout, format === 'json' ? `${JSON.stringify(result.report)}\n` : tableRow(result));
}

/** What a run's end-of-run summary needs, gathered record by record (bounded however long the run). */
export class RunTally {
  readonly summary: RunSummary = emptySummary();
  readonly #mutes = new Map<string, MuteTally>();
  readonly #quarantined: { input: string; reason: string }[] = [];
  readonly #unrouted: { input: string; kind: string; title: string }[] = [];

  add(result: RecordResult): void {
    addToSummary(this.summary, result);
    const { report } = result;
    if (report.outcome === 'quarantined' && this.#quarantined.length < LISTED) {
      this.#quarantined.push({ input: report.input, reason: report.reason ?? '' });
    }
    if (report.outcome === 'unrouted' && this.#unrouted.length < LISTED) {
      this.#unrouted.push({ input: report.input, kind: report.kind ?? '', title: result.finding?.title ?? '' });
    }
    const counted = new Set<string>();
    for (const { destination, mute } of result.decision?.muted ?? []) {
      let entry = this.#mutes.get(mute.name);
      if (!entry) {
        entry = { count: 0, reason: mute.reason, until: mute.until, destinations: new Set() };
        this.#mutes.set(mute.name, entry);
      }
      entry.destinations.add(destination);
      if (!counted.has(mute.name)) entry.count += 1;
      counted.add(mute.name);
    }
  }

  /** The parts of `renderSummary`'s context the tally knows. */
  view(): Pick<SummaryContext, 'summary' | 'mutes' | 'quarantined' | 'unrouted'> {
    return { summary: this.summary, mutes: this.#mutes, quarantined: this.#quarantined, unrouted: this.#unrouted };
  }

  /** 1 when some record was quarantined or dead-lettered, else 0. */
  exitCode(): ExitCode {
    const deadLettered = Object.values(this.summary.deadLettered).reduce((sum, count) => sum + count, 0);
    return this.summary.outcomes.quarantined > 0 || deadLettered > 0 ? EXIT.quarantined : EXIT.ok;
  }
}
