/**
 * Run: the one pipeline every host uses (the Event Hub function, the CLI over files, later the standalone
 * consumer). decode -> classify -> validate -> normalise -> route (+ mutes, dedupe) -> outcome.
 * Delivery comes after this stage and is not part of it yet.
 */
import type { Finding, Kind, Severity } from '../model/finding.js';
import { dedupeKey } from '../routing/dedupe.js';
import { routeFinding } from '../routing/route.js';
import type { NotificationLedger, RouteDecision, RoutingRules } from '../routing/types.js';
import type { ClaimOutcome, DeliveryLedger } from '../delivery/contracts.js';
import { classifyRecord, type AlertShape } from './classify.js';
import { decodeBody, DEFAULT_DECODE_LIMITS, type Decoded, type DecodedRecord, type DecodeLimits, type Envelope, type EventMetadata } from './decode.js';
import { normaliseRecord } from './normalise.js';
import type { QuarantineEntry, QuarantineSink, SchemaError } from './quarantine.js';
import { validateRecord } from './validate.js';
import { recordBatchAge } from '../telemetry/metrics.js';

export type Outcome = 'routed' | 'unrouted' | 'muted' | 'quarantined';

/** One line of the run report (`--report json`), exactly as architecture.md lists it. */
export interface RecordReport {
  readonly input: string;
  readonly kind: Kind | null;
  readonly id: string | null;
  readonly severity: Severity | null;
  readonly status: string | null;
  readonly outcome: Outcome;
  readonly destinations: readonly string[];
  readonly duplicates: readonly string[];
  readonly muted: readonly string[];
  readonly deadLettered: readonly string[];
  readonly reason: string | null;
}

/** A record that passed decode, classify and validate. */
export interface AcceptedRecord {
  readonly ok: true;
  readonly input: string;
  readonly kind: Kind;
  readonly shape: AlertShape | 'arm';
  readonly finding: Finding;
  readonly metadata?: EventMetadata;
  /** Index of the record inside a multi-record body. */
  readonly index?: number;
}

/** A record that did not, with its quarantine entry. */
export interface RejectedRecord {
  readonly ok: false;
  readonly input: string;
  readonly entry: QuarantineEntry;
}

export type InspectedRecord = AcceptedRecord | RejectedRecord;

/** Everything known about one record after the run. */
export interface RecordResult {
  readonly report: RecordReport;
  readonly finding?: Finding;
  readonly decision?: RouteDecision;
  readonly quarantine?: QuarantineEntry;
  readonly metadata?: EventMetadata;
  /**
   * Notification destinations whose claim another run holds (it may be sending now, or may have crashed):
   * delivery keeps the record for them as a `claim-pending` dead letter, so a re-drive notifies if needed.
   */
  readonly held?: readonly string[];
  /** Why each dead-lettered destination failed (set by delivery), for logs: never holds a secret. */
  readonly failures?: readonly DeliveryFailure[];
}

/** A destination's failure for one record, as delivery classified it. */
export interface DeliveryFailure {
  readonly destination: string;
  readonly reason: string;
  readonly message: string;
  readonly attempts: number;
  /** The destination is misconfigured (credentials, permissions, index): fix its settings. */
  readonly configuration: boolean;
}

/**
 * Decode, classify, validate and normalise one body. Pure apart from the clock (for `quarantinedAt`);
 * never throws for bad input.
 */
export function inspectEnvelope(envelope: Envelope, options: { limits?: DecodeLimits; now?: Date } = {}): InspectedRecord[] {
  const now = (options.now ?? new Date()).toISOString();
  let decodedRecords: Decoded[];
  try {
    decodedRecords = decodeBody(envelope, options.limits ?? DEFAULT_DECODE_LIMITS);
  } catch (error) {
    // A defect must cost one record, never the batch (a thrown batch is retried forever by the host).
    const base = { input: envelope.input, metadata: envelope.metadata, index: undefined };
    return [rejected(base, { code: 'internal-error', reason: internalReason(error), kind: null, errors: [], raw: envelope.body, quarantinedAt: now })];
  }
  return decodedRecords.map((decoded): InspectedRecord => {
    const base = { input: decoded.input, metadata: decoded.metadata, index: decoded.index };
    if (!decoded.ok) {
      return rejected(base, { code: decoded.code, reason: decoded.reason, kind: null, errors: [], raw: decoded.raw, quarantinedAt: now });
    }
    const rawForQuarantine = decoded.index === undefined && typeof envelope.body === 'string' ? envelope.body : decoded.record;
    try {
      return inspectRecord(decoded, base, rawForQuarantine, now);
    } catch (error) {
      return rejected(base, { code: 'internal-error', reason: internalReason(error), kind: null, errors: [], raw: rawForQuarantine, quarantinedAt: now });
    }
  });
}

function inspectRecord(
  decoded: DecodedRecord,
  base: { input: string; metadata: EventMetadata | undefined; index: number | undefined },
  rawForQuarantine: unknown,
  now: string,
): InspectedRecord {
  const classification = classifyRecord(decoded.view);
  if (!classification.ok) {
    return rejected(base, { code: 'unknown-kind', reason: classification.reason, kind: null, errors: [], raw: rawForQuarantine, quarantinedAt: now });
  }
  const errors = validateRecord(classification.kind, classification.shape, decoded.view, decoded.record);
  if (errors.length > 0) {
    return rejected(base, {
      code: 'schema',
      reason: `${classification.kind} fails its schema: ${describeSchemaErrors(errors)}`,
      kind: classification.kind,
      errors,
      raw: rawForQuarantine,
      quarantinedAt: now,
    });
  }
  const finding = normaliseRecord(classification.kind, classification.shape, decoded.view, decoded.record, decoded.text);
  return {
    ok: true,
    input: decoded.input,
    kind: classification.kind,
    shape: classification.shape,
    finding,
    ...(decoded.metadata ? { metadata: decoded.metadata } : {}),
    ...(decoded.index !== undefined ? { index: decoded.index } : {}),
  };
}

function internalReason(error: unknown, stage = 'reading'): string {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `internal error while ${stage} the record (a defect of the forwarder; please report it): ${message.slice(0, 300)}`;
}

/** "properties.status.code: expected string, got number 3; ... (+2 more)". */
export function describeSchemaErrors(errors: readonly SchemaError[], max = 3): string {
  const shown = errors.slice(0, max).map((error) => `${error.path}: expected ${error.expected}, got ${error.got}`);
  const more = errors.length > max ? ` (+${errors.length - max} more)` : '';
  return shown.join('; ') + more;
}

function rejected(
  base: { input: string; metadata: EventMetadata | undefined; index: number | undefined },
  entry: Omit<QuarantineEntry, 'input' | 'metadata' | 'index'>,
): RejectedRecord {
  const full: QuarantineEntry = {
    input: base.input,
    ...entry,
    ...(base.metadata ? { metadata: base.metadata } : {}),
    ...(base.index !== undefined ? { index: base.index } : {}),
  };
  return { ok: false, input: base.input, entry: full };
}

export interface PipelineOptions {
  readonly rules: RoutingRules;
  /** Notification ledger for dedupe (in memory for dry runs). */
  readonly ledger: NotificationLedger;
  /** Where quarantined records are kept; when absent they are only reported. */
  readonly quarantine?: QuarantineSink;
  /**
   * Delivers the routed records (and settles the ledger claims dedupe made). Absent in dry runs: then the
   * report says where each record would go.
   */
  readonly delivery?: { deliver(results: readonly RecordResult[]): Promise<RecordResult[]> };
  readonly limits?: DecodeLimits;
  readonly now?: () => Date;
}

export interface Pipeline {
  /**
   * Runs one body through every stage. Resolves once every record has its outcome and every quarantined
   * record is stored; rejects only when the quarantine store fails.
   */
  processEnvelope(envelope: Envelope): Promise<RecordResult[]>;
  /**
   * Runs a whole Event Hub batch: first every record is inspected and every quarantined record stored, and
   * only then are routing and dedupe decided. A store failure therefore rejects before any dedupe key is
   * claimed, and the retried batch is decided afresh (nobody's notification is lost as a "duplicate").
   */
  processBatch(envelopes: readonly Envelope[]): Promise<RecordResult[]>;
}

export function createPipeline(options: PipelineOptions): Pipeline {
  const clock = options.now ?? (() => new Date());
  const { rules, ledger, quarantine, delivery } = options;
  const limits = options.limits ?? DEFAULT_DECODE_LIMITS;
  const run = async (envelopes: readonly Envelope[]): Promise<RecordResult[]> => {
    const now = clock();
    recordBatchAge(
      envelopes.map((envelope) => envelope.metadata?.enqueuedTimeUtc),
      now,
    );
    // 1. Inspect and route every record. Routing is pure; a defect in it costs the record (quarantined as
    //    internal-error), never the batch.
    const routed = envelopes.flatMap((envelope) => inspectEnvelope(envelope, { limits, now })).map((record) => routeRecord(rules, record, now));
    // 2. Store every quarantined record. A store failure rejects here, before any dedupe key is claimed.
    if (quarantine) {
      for (const record of routed) if (!record.ok) await quarantine.put(record.entry);
    }
    // 3. Dedupe (claims in the ledger) and outcomes. Should the ledger fail part-way, the claims made so far
    //    are released before the batch fails, so its re-run finds them free, not "held".
    const results: RecordResult[] = [];
    const claimed: string[] = [];
    try {
      for (const record of routed) {
        results.push(record.ok ? await decide(rules, ledger, record, record.decision, claimed) : quarantinedResult(record.entry));
      }
    } catch (error) {
      if (isDeliveryLedger(ledger)) await Promise.allSettled(claimed.map((key) => ledger.release(key)));
      throw error;
    }
    // 4. Delivery: every (record, destination) delivered or dead-lettered before this resolves.
    return delivery ? delivery.deliver(results) : results;
  };
  return {
    processEnvelope: (envelope) => run([envelope]),
    processBatch: run,
  };
}

type RoutedRecord = (AcceptedRecord & { readonly decision: RouteDecision }) | RejectedRecord;

function routeRecord(rules: RoutingRules, record: InspectedRecord, now: Date): RoutedRecord {
  if (!record.ok) return record;
  try {
    return { ...record, decision: routeFinding(rules, record.finding, now) };
  } catch (error) {
    const entry: QuarantineEntry = {
      input: record.input,
      code: 'internal-error',
      reason: internalReason(error, 'routing'),
      kind: record.kind,
      errors: [],
      raw: record.finding.raw,
      quarantinedAt: now.toISOString(),
      ...(record.metadata ? { metadata: record.metadata } : {}),
      ...(record.index !== undefined ? { index: record.index } : {}),
    };
    return { ok: false, input: record.input, entry };
  }
}

/** The ledger's answer for a key: a plain NotificationLedger knows only claimed or not (a duplicate). */
async function claimOutcome(ledger: NotificationLedger, key: string): Promise<ClaimOutcome> {
  if (isDeliveryLedger(ledger)) return ledger.claimOutcome(key);
  return (await ledger.claim(key)) ? 'claimed' : 'sent';
}

function isDeliveryLedger(ledger: NotificationLedger): ledger is DeliveryLedger {
  return typeof (ledger as Partial<DeliveryLedger>).claimOutcome === 'function';
}

/** No destination muted (most records): nothing to allocate. */
const NONE: ReadonlySet<string> = new Set();

async function decide(
  rules: RoutingRules,
  ledger: NotificationLedger,
  record: AcceptedRecord,
  decision: RouteDecision,
  claimed: string[],
): Promise<RecordResult> {
  const { finding } = record;
  const mutedNames: ReadonlySet<string> = decision.muted.length === 0 ? NONE : new Set(decision.muted.map((muted) => muted.destination));
  const destinations: string[] = [];
  const duplicates: string[] = [];
  const held: string[] = [];
  for (const name of decision.destinations) {
    if (mutedNames.has(name)) continue;
    const destination = rules.destinations.get(name);
    if (!destination?.dedupe) {
      destinations.push(name);
      continue;
    }
    const key = dedupeKey(name, finding);
    // The same record twice in one batch: the first copy's claim stands for both.
    const outcome = claimed.includes(key) ? 'sent' : await claimOutcome(ledger, key);
    if (outcome === 'claimed') {
      claimed.push(key);
      destinations.push(name);
    } else if (outcome === 'sent') {
      duplicates.push(name);
    } else {
      held.push(name);
    }
  }
  const muted = mutedNames.size === 0 ? [] : decision.destinations.filter((name) => mutedNames.has(name));
  let outcome: Outcome = 'routed';
  if (decision.destinations.length === 0) outcome = 'unrouted';
  else if (muted.length === decision.destinations.length) outcome = 'muted';
  const report: RecordReport = {
    input: record.input,
    kind: finding.kind,
    id: finding.id,
    severity: finding.severity,
    status: finding.status,
    outcome,
    destinations,
    duplicates,
    muted,
    deadLettered: [],
    reason: null,
  };
  return { report, finding, decision, ...(record.metadata ? { metadata: record.metadata } : {}), ...(held.length > 0 ? { held } : {}) };
}

function quarantinedResult(entry: QuarantineEntry): RecordResult {
  const report: RecordReport = {
    input: entry.input,
    kind: entry.kind,
    id: null,
    severity: null,
    status: null,
    outcome: 'quarantined',
    destinations: [],
    duplicates: [],
    muted: [],
    deadLettered: [],
    reason: entry.reason,
  };
  return { report, quarantine: entry, ...(entry.metadata ? { metadata: entry.metadata } : {}) };
}

/** Counts for the summary a run prints (and, later, emits as telemetry). */
export interface RunSummary {
  records: number;
  outcomes: Record<Outcome, number>;
  /** kind -> severity -> count, accepted records only. */
  byKind: Record<string, Record<string, number>>;
  /** destination -> records it gets (after mutes and dedupe). */
  delivered: Record<string, number>;
  duplicates: Record<string, number>;
  muted: Record<string, number>;
  /** destination -> records that could not be delivered and were dead-lettered. */
  deadLettered: Record<string, number>;
  /** destination -> dead letters delivered by a re-drive (only re-drive runs count these). */
  redriven: Record<string, number>;
  /** quarantine reason code -> count. */
  quarantined: Record<string, number>;
}

export function emptySummary(): RunSummary {
  return {
    records: 0,
    outcomes: { routed: 0, unrouted: 0, muted: 0, quarantined: 0 },
    byKind: {},
    delivered: {},
    duplicates: {},
    muted: {},
    deadLettered: {},
    redriven: {},
    quarantined: {},
  };
}

/** Adds one record's result to a summary (in place; summaries stay small however long the run). */
export function addToSummary(summary: RunSummary, result: RecordResult): void {
  const { report } = result;
  summary.records += 1;
  summary.outcomes[report.outcome] += 1;
  if (report.kind && report.outcome !== 'quarantined') {
    const bySeverity = (summary.byKind[report.kind] ??= {});
    const severity = report.severity ?? 'Unknown';
    bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
  }
  for (const name of report.destinations) summary.delivered[name] = (summary.delivered[name] ?? 0) + 1;
  for (const name of report.duplicates) summary.duplicates[name] = (summary.duplicates[name] ?? 0) + 1;
  for (const name of report.muted) summary.muted[name] = (summary.muted[name] ?? 0) + 1;
  for (const name of report.deadLettered) summary.deadLettered[name] = (summary.deadLettered[name] ?? 0) + 1;
  if (result.quarantine) {
    const code = result.quarantine.code;
    summary.quarantined[code] = (summary.quarantined[code] ?? 0) + 1;
  }
}
