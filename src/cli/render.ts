/**
 * Text renderings for people: the `--report table` rows and the end-of-run summary.
 */
import { parseSeverity, severityRank } from '../model/finding.js';
import type { RecordResult, RunSummary } from '../pipeline/run.js';

const COLUMNS = [
  { title: 'INPUT', width: 44 },
  { title: 'KIND', width: 20 },
  { title: 'SEVERITY', width: 13 },
  { title: 'STATUS', width: 13 },
  { title: 'OUTCOME', width: 11 },
] as const;

export function tableHeader(): string {
  return `${COLUMNS.map((column) => column.title.padEnd(column.width)).join(' ')} TO / WHY\n`;
}

/** One row: the record, its outcome, and where it goes or why it does not. */
export function tableRow(result: RecordResult): string {
  const { report } = result;
  const cells = [
    fitLeft(report.input, COLUMNS[0].width),
    fit(report.kind ?? '-', COLUMNS[1].width),
    fit(report.severity ?? '-', COLUMNS[2].width),
    fit(report.status || '-', COLUMNS[3].width),
    fit(report.outcome, COLUMNS[4].width),
  ];
  return `${cells.join(' ')} ${whereOrWhy(result)}\n`;
}

function whereOrWhy(result: RecordResult): string {
  const { report } = result;
  if (report.outcome === 'quarantined') return oneLine(report.reason ?? '');
  if (report.outcome === 'unrouted') return 'no route matched';
  const parts: string[] = [];
  if (report.destinations.length > 0) parts.push(report.destinations.join(', '));
  if (report.deadLettered.length > 0) parts.push(`dead-lettered: ${report.deadLettered.join(', ')}`);
  if (report.duplicates.length > 0) parts.push(`duplicate: ${report.duplicates.join(', ')}`);
  for (const muted of result.decision?.muted ?? []) parts.push(`muted: ${muted.destination} by "${muted.mute.name}"`);
  return parts.join('; ');
}

/** Everything a person needs from a run, for stderr. */
export interface SummaryContext {
  readonly title: string;
  readonly dryRun: boolean;
  readonly bodies: number;
  readonly elapsedMs: number;
  readonly summary: RunSummary;
  /** mute name -> records it silenced, with the mute's reason and end. */
  readonly mutes: ReadonlyMap<string, { count: number; reason: string; until: string; destinations: Set<string> }>;
  /** The first quarantined records, for the reasons. */
  readonly quarantined: readonly { input: string; reason: string }[];
  readonly unrouted: readonly { input: string; kind: string; title: string }[];
}

export function renderSummary(context: SummaryContext): string {
  const { summary } = context;
  const lines: string[] = [];
  const o = summary.outcomes;
  lines.push(
    `${context.title}: ${plural(summary.records, 'record')} from ${plural(context.bodies, 'body', 'bodies')} in ${(context.elapsedMs / 1000).toFixed(2)} s`,
  );
  lines.push(`  routed ${o.routed} · unrouted ${o.unrouted} · muted ${o.muted} · quarantined ${o.quarantined}`);

  const kinds = Object.entries(summary.byKind);
  if (kinds.length > 0) {
    lines.push('', '  by kind and severity');
    for (const [kind, severities] of kinds) {
      const parts = Object.entries(severities)
        .sort((a, b) => severityRank(parseSeverity(b[0])) - severityRank(parseSeverity(a[0])))
        .map(([severity, count]) => `${severity} ${count}`);
      lines.push(`    ${kind.padEnd(22)} ${parts.join(', ')}`);
    }
  }

  const destinations = new Set([
    ...Object.keys(summary.delivered),
    ...Object.keys(summary.duplicates),
    ...Object.keys(summary.muted),
    ...Object.keys(summary.deadLettered),
  ]);
  if (destinations.size > 0) {
    lines.push('', context.dryRun ? '  destinations (would receive)' : '  destinations (delivered)');
    for (const name of destinations) {
      const extra: string[] = [];
      if (summary.deadLettered[name]) extra.push(`${summary.deadLettered[name]} dead-lettered`);
      if (summary.duplicates[name]) extra.push(`${summary.duplicates[name]} duplicate`);
      if (summary.muted[name]) extra.push(`${summary.muted[name]} muted`);
      const note = extra.length > 0 ? `  (${extra.join(', ')})` : '';
      lines.push(`    ${name.padEnd(22)} ${String(summary.delivered[name] ?? 0).padStart(6)}${note}`);
    }
  }

  if (context.mutes.size > 0) {
    lines.push('', '  muted');
    for (const [name, mute] of context.mutes) {
      lines.push(`    ${plural(mute.count, 'record')} for ${[...mute.destinations].join(', ')} by "${name}" until ${mute.until}: ${oneLine(mute.reason)}`);
    }
  }

  if (context.unrouted.length > 0) {
    lines.push('', '  unrouted (no route matched)');
    for (const record of context.unrouted) lines.push(`    ${oneLine(record.input)}: ${record.kind} "${oneLine(record.title)}"`);
    if (o.unrouted > context.unrouted.length) lines.push(`    ... and ${o.unrouted - context.unrouted.length} more`);
  }

  if (o.quarantined > 0) {
    lines.push('', '  quarantined');
    for (const [code, count] of Object.entries(summary.quarantined)) lines.push(`    ${code.padEnd(22)} ${String(count).padStart(6)}`);
    for (const record of context.quarantined) lines.push(`    ${oneLine(record.input)}: ${oneLine(record.reason)}`);
    if (o.quarantined > context.quarantined.length) lines.push(`    ... and ${o.quarantined - context.quarantined.length} more`);
  }
  return `${lines.join('\n')}\n`;
}


function plural(count: number, word: string, many = `${word}s`): string {
  return `${count.toLocaleString('en-US')} ${count === 1 ? word : many}`;
}

// C0 and C1 control characters (other than the whitespace folded by oneLine) and DEL.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f]/g;

/**
 * Record text is attacker-controlled: escape control characters so that a title holding terminal escape
 * sequences shows as text instead of driving the terminal.
 */
function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One line of printable text, at most `max` characters. */
export function oneLine(text: string, max = 160): string {
  const flat = printable(text.replace(/\s+/g, ' ').trim());
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function fit(raw: string, width: number): string {
  const text = oneLine(raw, Infinity);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

/** Paths are most telling at their end. */
function fitLeft(raw: string, width: number): string {
  const text = oneLine(raw, Infinity);
  return text.length > width ? `…${text.slice(text.length - width + 1)}` : text.padEnd(width);
}
