/**
 * Accounting: every run (a Function invocation, a standalone consumer batch, a command-line run, a re-drive)
 * ends with ONE structured summary line, the same shape wherever it runs, so that one query over the logs
 * answers "what came in, and where did each record end up": received = routed + unrouted + muted +
 * quarantined, and per destination delivered, duplicates, muted, dead-lettered and re-driven.
 */
import type { RunSummary } from './run.js';

/** Which host ran: the Function's trigger, the standalone consumer, the CLI over files, or a re-drive. */
export type RunHost = 'function' | 'standalone' | 'cli' | 'redrive';

/** The summary line (`event: "run.summary"`). Counts are records; maps are keyed by destination name. */
export interface RunAccount {
  readonly event: 'run.summary';
  readonly host: RunHost;
  /** Where the run's records came from: `eh:<partition>`, a file list, `deadletter`... */
  readonly source: string;
  readonly startedAt: string;
  readonly durationMs: number;
  /** Records received (a multi-record body counts each record). */
  readonly received: number;
  readonly routed: number;
  readonly unrouted: number;
  /** Records every destination of which was muted. */
  readonly muted: number;
  readonly quarantined: number;
  /** destination -> records delivered (or, in a dry run, that would be). */
  readonly delivered: Readonly<Record<string, number>>;
  /** destination -> notifications suppressed because the ledger says they were sent already. */
  readonly duplicates: Readonly<Record<string, number>>;
  /** destination -> records a mute kept from it. */
  readonly mutedBy: Readonly<Record<string, number>>;
  /** destination -> records dead-lettered in this run. */
  readonly deadLettered: Readonly<Record<string, number>>;
  /** destination -> dead letters re-delivered (re-drive runs). */
  readonly redriven: Readonly<Record<string, number>>;
  /** quarantine reason code -> records. */
  readonly quarantinedBy: Readonly<Record<string, number>>;
  /** Anything the host adds: partition, invocation id, retry count, dry run. */
  readonly [extra: string]: unknown;
}

export interface AccountOptions {
  readonly host: RunHost;
  readonly source: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** Host-specific facts (partition, invocation id, retry count); they cannot replace the counts. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** The summary line of a run. */
export function accountRun(summary: RunSummary, options: AccountOptions): RunAccount {
  return {
    ...options.extra,
    event: 'run.summary',
    host: options.host,
    source: options.source,
    startedAt: options.startedAt.toISOString(),
    durationMs: Math.max(0, options.finishedAt.getTime() - options.startedAt.getTime()),
    received: summary.records,
    routed: summary.outcomes.routed,
    unrouted: summary.outcomes.unrouted,
    muted: summary.outcomes.muted,
    quarantined: summary.outcomes.quarantined,
    delivered: { ...summary.delivered },
    duplicates: { ...summary.duplicates },
    mutedBy: { ...summary.muted },
    deadLettered: { ...summary.deadLettered },
    redriven: { ...summary.redriven },
    quarantinedBy: { ...summary.quarantined },
  };
}

/** Adds one summary into another (a long-running consumer totals its batches). */
export function mergeSummary(into: RunSummary, from: RunSummary): void {
  into.records += from.records;
  for (const outcome of Object.keys(into.outcomes) as (keyof RunSummary['outcomes'])[]) into.outcomes[outcome] += from.outcomes[outcome];
  for (const [kind, bySeverity] of Object.entries(from.byKind)) {
    const target = (into.byKind[kind] ??= {});
    for (const [severity, count] of Object.entries(bySeverity)) target[severity] = (target[severity] ?? 0) + count;
  }
  for (const key of ['delivered', 'duplicates', 'muted', 'deadLettered', 'redriven', 'quarantined'] as const) {
    const target = into[key];
    for (const [name, count] of Object.entries(from[key])) target[name] = (target[name] ?? 0) + count;
  }
}
