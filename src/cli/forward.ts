/**
 * `defender-forwarder forward`: runs the pipeline over files, folders or stdin and reports, per record, where
 * it goes (or would go, with `--dry-run`) and why.
 */
import { MemoryLedger } from '../routing/dedupe.js';
import type { RoutingRules } from '../routing/types.js';
import type { QuarantineSink } from '../pipeline/quarantine.js';
import type { Envelope } from '../pipeline/decode.js';
import { addToSummary, createPipeline, emptySummary, type RecordResult } from '../pipeline/run.js';
import { eachEnvelope } from './inputs.js';
import { writeOut, type CliIo } from './io.js';
import { oneLine, renderSummary, tableHeader, tableRow } from './render.js';
import { PreviewCollector } from './preview.js';
import { createDelivery } from '../delivery/deliver.js';
import type { DeadLetterSink, DeliveryLedger } from '../delivery/contracts.js';
import type { Sink } from '../sinks/sink.js';
import { EXIT, type ExitCode } from './exit.js';

export type ReportFormat = 'json' | 'table';

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
}

type MuteTally = { count: number; reason: string; until: string; destinations: Set<string> };

/** A batch of bodies closes at this many bodies or characters (about what one Event Hub batch holds). */
const BATCH_BODIES = 500;
const BATCH_CHARS = 4 * 1024 * 1024;

/** How many quarantined / unrouted records the summary names one by one. */
const LISTED = 10;

export async function forwardCommand(options: ForwardOptions, io: CliIo): Promise<ExitCode> {
  const delivery = options.delivery
    ? createDelivery({
        rules: options.rules,
        sinks: options.delivery.sinks,
        ledger: options.delivery.ledger,
        deadLetters: options.delivery.deadLetters,
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
  const pipeline = createPipeline({
    rules: options.rules,
    ledger: options.delivery?.ledger ?? new MemoryLedger(),
    ...(options.quarantine ? { quarantine: options.quarantine } : {}),
    ...(delivery ? { delivery } : {}),
    now: io.now,
  });
  const preview = options.preview ? new PreviewCollector() : undefined;
  const startedMs = Date.now();
  const summary = emptySummary();
  const mutes = new Map<string, MuteTally>();
  const quarantined: { input: string; reason: string }[] = [];
  const unrouted: { input: string; kind: string; title: string }[] = [];
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
      addToSummary(summary, result);
      preview?.add(result);
      note(result, mutes, quarantined, unrouted);
      await writeOut(io.stdout, options.report === 'json' ? `${JSON.stringify(result.report)}\n` : tableRow(result));
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
  io.stderr.write(renderSummary({ title, dryRun: options.dryRun, bodies, elapsedMs: Date.now() - startedMs, summary, mutes, quarantined, unrouted }));
  if (preview && options.preview) {
    const files = await preview.write(options.preview.folder, options.preview.sinks);
    io.stderr.write(`  preview: ${files} files written under ${options.preview.folder}\n`);
  }
  const deadLettered = Object.values(summary.deadLettered).reduce((sum, count) => sum + count, 0);
  return summary.outcomes.quarantined > 0 || deadLettered > 0 ? EXIT.quarantined : EXIT.ok;
}

function note(
  result: RecordResult,
  mutes: Map<string, MuteTally>,
  quarantined: { input: string; reason: string }[],
  unrouted: { input: string; kind: string; title: string }[],
): void {
  const { report } = result;
  if (report.outcome === 'quarantined' && quarantined.length < LISTED) {
    quarantined.push({ input: report.input, reason: report.reason ?? '' });
  }
  if (report.outcome === 'unrouted' && unrouted.length < LISTED) {
    unrouted.push({ input: report.input, kind: report.kind ?? '', title: result.finding?.title ?? '' });
  }
  const counted = new Set<string>();
  for (const { destination, mute } of result.decision?.muted ?? []) {
    let entry = mutes.get(mute.name);
    if (!entry) {
      entry = { count: 0, reason: mute.reason, until: mute.until, destinations: new Set() };
      mutes.set(mute.name, entry);
    }
    entry.destinations.add(destination);
    if (!counted.has(mute.name)) entry.count += 1;
    counted.add(mute.name);
  }
}
