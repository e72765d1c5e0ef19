/**
 * The normalised view of one Defender for Cloud export record. Every stage after `normalise` reads this type;
 * `raw` keeps the original record, untouched, for Splunk.
 */

/** Record kinds the forwarder understands (our names, see docs in defender-export.md). */
export const KINDS = [
  'alert',
  'recommendation',
  'finding',
  'secureScore',
  'secureScoreControl',
  'regulatoryCompliance',
] as const;
export type Kind = (typeof KINDS)[number];

/**
 * Severities in ascending order. `Unknown` (also used for a missing severity) sorts below all and never
 * satisfies a minimum.
 */
export const SEVERITIES = ['Unknown', 'Informational', 'Low', 'Medium', 'High', 'Critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Rank of a severity: Unknown 0, Informational 1 ... Critical 5. */
export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Maps any spelling of a severity (`high`, `HIGH`, ` High `) to the canonical one; anything else is Unknown. */
export function parseSeverity(value: unknown): Severity {
  if (typeof value !== 'string') return 'Unknown';
  const wanted = value.trim().toLowerCase();
  for (const severity of SEVERITIES) {
    if (severity.toLowerCase() === wanted) return severity;
  }
  return 'Unknown';
}

/** True when `value` names a severity exactly (case-insensitive), `Unknown` included. */
export function isSeverityName(value: string): boolean {
  const wanted = value.trim().toLowerCase();
  return SEVERITIES.some((severity) => severity.toLowerCase() === wanted);
}

/** The normalised record. Read-only: stages never change a Finding, they derive new values from it. */
export interface Finding {
  readonly kind: Kind;
  /** The record's identity: SystemAlertId for alerts, the ARM `id` for the others. */
  readonly id: string;
  readonly severity: Severity;
  /** `New`, `Active`, `Unhealthy`, `Failed`...; empty when the kind has no status (secure scores). */
  readonly status: string;
  readonly title: string;
  readonly description: string;
  /** The affected resource's ARM id (or the record's own id when no resource is named). */
  readonly resourceId: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  /** The AKS / Kubernetes cluster name, when the record is about one. */
  readonly cluster?: string;
  /** Kubernetes namespace, when an alert names one. */
  readonly namespace?: string;
  /** Alerts only: `K8S_AdmissionController`, `VM_EICAR`... */
  readonly alertType?: string;
  /** MITRE ATT&CK tactics, split from the alert's `Intent`. */
  readonly tactics: readonly string[];
  /** CVE ids named by the record, upper-case, de-duplicated. */
  readonly cves: readonly string[];
  /** The highest CVSS (3.x preferred) score the record names. */
  readonly cvss?: number;
  /** An https:// link into the Azure portal. */
  readonly link?: string;
  /** When the record's event happened (ISO 8601, as given by Defender; a missing zone is left as is). */
  readonly time: string;
  /** True for weekly snapshot exports (`isSnapshot: true`). */
  readonly snapshot: boolean;
  /** The export action (`Insert`, `Delete`, `Write`) when the envelope names one. */
  readonly action?: string;
  /** The first remediation steps, when the record carries any. */
  readonly remediation: readonly string[];
  /**
   * The original record, untouched. For a record kept as its text (`rawText`), it is parsed again from that
   * text the first time it is read.
   */
  readonly raw: unknown;
  /**
   * The record's JSON text exactly as received, when its body held it alone (not enumerable: it never shows in
   * reports or comparisons). Splunk gets it as sent, without serialising the record again.
   */
  readonly rawText?: string;
}

/** A Finding before its record is attached (what normalisation derives from the record's view). */
export type Draft = Omit<Finding, 'raw' | 'rawText'>;

/** A Finding holding its parsed record. */
export function withRecord(draft: Draft, raw: unknown): Finding {
  const finding = draft as Draft & { raw: unknown };
  finding.raw = raw;
  return finding;
}

/**
 * A Finding holding its record as the JSON text it arrived as: `rawText`, and `raw` parsed again from it only
 * when something reads it (a dead letter, the webhook sink, a record quarantined by a routing defect). The
 * parsed tree and the view of a record then die young, right after normalisation, instead of living on, in
 * the old generation of the heap, until the batch is delivered. Every such Finding shares the one getter, so
 * V8 keeps them fast objects.
 */
export function withRecordText(draft: Draft, text: string): Finding {
  Object.defineProperty(draft, 'rawText', { value: text, enumerable: false });
  Object.defineProperty(draft, 'raw', RAW_FROM_TEXT);
  return draft as Finding;
}

/** Records parsed again from their text, by Finding (kept while the Finding lives). */
const parsedRecords = new WeakMap<object, unknown>();

const RAW_FROM_TEXT: PropertyDescriptor = Object.freeze({
  get(this: Finding): unknown {
    // JSON.parse never answers undefined, so a cached record is never mistaken for a missing one.
    let raw: unknown = parsedRecords.get(this);
    if (raw === undefined) {
      raw = JSON.parse(this.rawText ?? 'null');
      parsedRecords.set(this, raw);
    }
    return raw;
  },
  enumerable: true,
});
