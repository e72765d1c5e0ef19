/**
 * `defender-forwarder status`: what is waiting, from listings and metadata alone (no letter or document is
 * downloaded from blob storage): the dead-letter backlog per destination and reason (count, oldest, due
 * now, most re-drive attempts), expired letters per destination, and the quarantine per reason code.
 * Exit 0; a store that cannot be reached is a `StoreError` (exit 2, the message names the container).
 */
import { isRedriveDue } from '../delivery/redrive.js';
import type { QuarantineBacklog } from '../storage/blobQuarantine.js';
import type { DeadLetterListing, DeadLetterStore } from '../storage/deadLetterStore.js';
import { EXIT, InvalidSettingError, type ExitCode } from './exit.js';
import { writeOut, type CliIo } from './io.js';
import { openStores, type CliStores } from './stores.js';

export interface StatusCommandOptions {
  readonly stateDir: string;
  readonly report: 'text' | 'json';
}

/** Counts of one group of entries. Times are ISO 8601 UTC; null when no entry tells. */
export interface BacklogGroup {
  count: number;
  oldest: string | null;
}

/** One destination's (or one reason's) live letters. */
export interface LetterGroup extends BacklogGroup {
  /** Letters a re-drive would take now. */
  dueNow: number;
  /** Most re-drive attempts any letter had. */
  maxAttempts: number;
}

/** The `--report json` document. */
export interface StatusReport {
  readonly at: string;
  readonly deadLetters: {
    readonly store: string;
    readonly total: number;
    readonly dueNow: number;
    /** destination -> its letters, and per reason (the last re-drive's reason, else the original). */
    readonly destinations: Record<string, LetterGroup & { reasons: Record<string, LetterGroup> }>;
  };
  readonly expired: { readonly total: number; readonly destinations: Record<string, BacklogGroup> };
  readonly quarantine: { readonly store: string; readonly total: number; readonly codes: Record<string, BacklogGroup> };
}

export async function statusCommand(options: StatusCommandOptions, io: CliIo): Promise<ExitCode> {
  let stores: CliStores;
  try {
    stores = await openStores(options.stateDir, io.env);
  } catch (error) {
    if (!(error instanceof InvalidSettingError)) throw error;
    io.stderr.write(`defender-forwarder: ${error.message}\n`);
    return EXIT.usage;
  }
  const report = await collectStatus(stores.deadLetters, stores.quarantine, io.now());
  await writeOut(io.stdout, options.report === 'json' ? `${JSON.stringify(report)}\n` : renderStatus(report));
  return EXIT.ok;
}

/** Reads the backlogs. Rejects with the store's `StoreError` when a store cannot be listed. */
export async function collectStatus(deadLetters: DeadLetterStore, quarantine: QuarantineBacklog, now: Date): Promise<StatusReport> {
  const destinations: StatusReport['deadLetters']['destinations'] = {};
  let total = 0;
  let dueNow = 0;
  for await (const entry of deadLetters.list()) {
    const due = isRedriveDue(entry, now);
    total += 1;
    if (due) dueNow += 1;
    const destination = (destinations[entry.destination] ??= { ...emptyLetterGroup(), reasons: {} });
    addLetter(destination, entry, due);
    addLetter((destination.reasons[entry.redrive.lastReason ?? entry.reason] ??= emptyLetterGroup()), entry, due);
  }
  const expired: Record<string, BacklogGroup> = {};
  let expiredTotal = 0;
  for await (const entry of deadLetters.list({ expired: true })) {
    expiredTotal += 1;
    addEntry((expired[entry.destination] ??= { count: 0, oldest: null }), entry.deadLetteredAt);
  }
  const codes: Record<string, BacklogGroup> = {};
  let quarantined = 0;
  for await (const entry of quarantine.list()) {
    quarantined += 1;
    addEntry((codes[entry.code] ??= { count: 0, oldest: null }), entry.quarantinedAt);
  }
  return {
    at: now.toISOString(),
    deadLetters: { store: deadLetters.location, total, dueNow, destinations },
    expired: { total: expiredTotal, destinations: expired },
    quarantine: { store: quarantine.location, total: quarantined, codes },
  };
}

function emptyLetterGroup(): LetterGroup {
  return { count: 0, oldest: null, dueNow: 0, maxAttempts: 0 };
}

function addLetter(group: LetterGroup, entry: DeadLetterListing, due: boolean): void {
  addEntry(group, entry.deadLetteredAt);
  if (due) group.dueNow += 1;
  group.maxAttempts = Math.max(group.maxAttempts, entry.redrive.attempts);
}

function addEntry(group: BacklogGroup, at: Date | undefined): void {
  group.count += 1;
  // ISO 8601 UTC strings of one format sort as the times they name.
  const iso = at?.toISOString();
  if (iso !== undefined && (group.oldest === null || iso < group.oldest)) group.oldest = iso;
}

/** The text report (`--report text`). */
export function renderStatus(report: StatusReport): string {
  const lines: string[] = [];
  const { deadLetters, expired, quarantine } = report;
  lines.push(`dead letters in ${deadLetters.store}: ${deadLetters.total} (${deadLetters.dueNow} due now), as of ${report.at}`);
  const destinationNames = Object.keys(deadLetters.destinations).sort();
  if (destinationNames.length > 0) {
    lines.push(`  ${'DESTINATION'.padEnd(22)} ${'REASON'.padEnd(22)} ${'COUNT'.padStart(6)} ${'DUE NOW'.padStart(7)} ${'ATTEMPTS'.padStart(8)}  OLDEST`);
    for (const name of destinationNames) {
      const reasons = deadLetters.destinations[name]?.reasons ?? {};
      for (const reason of Object.keys(reasons).sort()) {
        const group = reasons[reason] ?? emptyLetterGroup();
        lines.push(
          `  ${name.padEnd(22)} ${reason.padEnd(22)} ${String(group.count).padStart(6)} ${String(group.dueNow).padStart(7)} ${String(group.maxAttempts).padStart(8)}  ${group.oldest ?? '-'}`,
        );
      }
    }
  }
  lines.push('', `expired letters (kept under expired/): ${expired.total}`);
  groupTable(lines, 'DESTINATION', expired.destinations);
  lines.push('', `quarantined records in ${quarantine.store}: ${quarantine.total}`);
  groupTable(lines, 'CODE', quarantine.codes);
  return `${lines.join('\n')}\n`;
}

function groupTable(lines: string[], title: string, groups: Readonly<Record<string, BacklogGroup>>): void {
  const names = Object.keys(groups).sort();
  if (names.length === 0) return;
  lines.push(`  ${title.padEnd(22)} ${'COUNT'.padStart(6)}  OLDEST`);
  for (const name of names) {
    const group = groups[name];
    if (group !== undefined) lines.push(`  ${name.padEnd(22)} ${String(group.count).padStart(6)}  ${group.oldest ?? '-'}`);
  }
}
