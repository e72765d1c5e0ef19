/**
 * `defender-forwarder routes test`: for each record, which route matched, which did not and why (the first
 * failing condition), which mutes and dedupe decisions apply, and where it ends up. Decisions come from the
 * same pipeline `forward` runs, so what this prints is what `forward` does.
 */
import { MemoryLedger } from '../routing/dedupe.js';
import type { RoutingRules } from '../routing/types.js';
import { createPipeline, type RecordResult } from '../pipeline/run.js';
import { EXIT, type ExitCode } from './exit.js';
import { eachEnvelope } from './inputs.js';
import { writeOut, type CliIo } from './io.js';
import { oneLine } from './render.js';

export async function routesTestCommand(
  options: { inputs: readonly string[]; rules: RoutingRules; report: 'json' | 'text' },
  io: CliIo,
): Promise<ExitCode> {
  const pipeline = createPipeline({ rules: options.rules, ledger: new MemoryLedger(), now: io.now });
  let quarantined = 0;
  await eachEnvelope('routes test', options.inputs, io, async (envelope) => {
    const results = await pipeline.processEnvelope(envelope);
    for (const result of results) {
      if (result.report.outcome === 'quarantined') quarantined += 1;
      await writeOut(io.stdout, options.report === 'json' ? `${JSON.stringify(explainJson(result))}\n` : explainText(result));
    }
    return results.length;
  });
  return quarantined > 0 ? EXIT.quarantined : EXIT.ok;
}

/** The explanation of one record, for people. */
export function explainText(result: RecordResult): string {
  const { report, finding, decision } = result;
  if (!finding || !decision) {
    return `${oneLine(report.input, 400)}\n  quarantined: ${oneLine(report.reason ?? '', 400)}\n\n`;
  }
  const lines = [
    `${oneLine(report.input, 400)}  ${finding.kind} ${finding.severity} ${oneLine(finding.status, 40) || '-'}  "${oneLine(finding.title, 100)}"`,
    `  id ${oneLine(finding.id, 400)}`,
  ];
  for (const evaluation of decision.evaluations) {
    const { route } = evaluation;
    if (evaluation.skipped) {
      lines.push(`  [skip]  ${route.name}: not reached, an earlier route matched without continue`);
    } else if (evaluation.matched) {
      lines.push(`  [match] ${route.name} -> ${route.to.join(', ')}${route.continue ? '  (continue)' : ''}`);
    } else {
      lines.push(`  [no]    ${route.name}: ${oneLine(evaluation.failed?.detail ?? 'did not match', 300)}`);
    }
  }
  for (const { destination, mute } of decision.muted) {
    lines.push(`  mute "${mute.name}" silences ${destination} until ${mute.until}: ${oneLine(mute.reason, 120)}`);
  }
  for (const mute of decision.expiredMutes) {
    lines.push(`  mute "${mute.name}" would match but expired ${mute.until}: ignored`);
  }
  for (const name of report.duplicates) {
    lines.push(`  dedupe: ${name} was already notified of (${finding.kind}, ${oneLine(finding.id, 400)}, ${oneLine(finding.status, 40) || '-'}) in this run`);
  }
  if (report.outcome === 'unrouted') lines.push('  => unrouted: no route matched');
  else if (report.outcome === 'muted') lines.push(`  => muted: every destination is muted (${report.muted.join(', ')})`);
  else lines.push(`  => ${report.destinations.length > 0 ? `delivers to ${report.destinations.join(', ')}` : 'delivers nowhere new (all duplicates)'}`);
  return `${lines.join('\n')}\n\n`;
}

/** The same explanation as data (`--report json`). */
export function explainJson(result: RecordResult): Record<string, unknown> {
  const { report, decision } = result;
  return {
    ...report,
    routes:
      decision?.evaluations.map((evaluation) => ({
        name: evaluation.route.name,
        matched: evaluation.matched,
        skipped: evaluation.skipped,
        failed: evaluation.failed ? { key: evaluation.failed.key, detail: evaluation.failed.detail } : null,
      })) ?? [],
    mutes: decision?.muted.map(({ destination, mute }) => ({ destination, mute: mute.name, until: mute.until, reason: mute.reason })) ?? [],
    expiredMutes: decision?.expiredMutes.map((mute) => ({ mute: mute.name, until: mute.until })) ?? [],
  };
}
