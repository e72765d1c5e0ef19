/**
 * `defender-forwarder forward`: runs the pipeline over files, folders or stdin and reports, per record, where
 * it goes (or would go, with `--dry-run`) and why.
 */
import { MemoryLedger } from '../routing/dedupe.js';
import type { RoutingRules } from '../routing/types.js';
import type { QuarantineSink } from '../pipeline/quarantine.js';
import { addToSummary, createPipeline, emptySummary, type RecordResult } from '../pipeline/run.js';
import { eachEnvelope } from './inputs.js';
import { writeOut, type CliIo } from './io.js';
import { renderSummary, tableHeader, tableRow } from './render.js';
import { EXIT, type ExitCode } from './exit.js';

export type ReportFormat = 'json' | 'table';

export interface ForwardOptions {
  readonly inputs: readonly string[];
  readonly rules: RoutingRules;
  readonly dryRun: boolean;
  readonly report: ReportFormat;
  readonly quarantine?: QuarantineSink;
}

type MuteTally = { count: number; reason: string; until: string; destinations: Set<string> };

/** How many quarantined / unrouted records the summary names one by one. */
const LISTED = 10;

export async function forwardCommand(options: ForwardOptions, io: CliIo): Promise<ExitCode> {
  const pipeline = createPipeline({
    rules: options.rules,
    ledger: new MemoryLedger(),
    ...(options.quarantine ? { quarantine: options.quarantine } : {}),
    now: io.now,
  });
  const startedMs = Date.now();
  const summary = emptySummary();
  const mutes = new Map<string, MuteTally>();
  const quarantined: { input: string; reason: string }[] = [];
  const unrouted: { input: string; kind: string; title: string }[] = [];
  let bodies = 0;
  if (options.report === 'table') await writeOut(io.stdout, tableHeader());
  await eachEnvelope(options.dryRun ? 'forward (dry run)' : 'forward', options.inputs, io, async (envelope) => {
    bodies += 1;
    const results = await pipeline.processEnvelope(envelope);
    for (const result of results) {
      addToSummary(summary, result);
      note(result, mutes, quarantined, unrouted);
      await writeOut(io.stdout, options.report === 'json' ? `${JSON.stringify(result.report)}\n` : tableRow(result));
    }
    return results.length;
  });
  const title = `defender-forwarder forward${options.dryRun ? ' (dry run: nothing was sent)' : ''}`;
  io.stderr.write(renderSummary({ title, dryRun: options.dryRun, bodies, elapsedMs: Date.now() - startedMs, summary, mutes, quarantined, unrouted }));
  return summary.outcomes.quarantined > 0 ? EXIT.quarantined : EXIT.ok;
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
