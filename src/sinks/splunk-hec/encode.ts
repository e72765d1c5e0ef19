/**
 * HEC envelopes and batches, pure (no I/O, no clock): one JSON envelope per record, the original record
 * untouched in `event`, CIM-friendly indexed `fields`; batches of concatenated envelopes bounded by count
 * and uncompressed bytes. See protocols.md, "Splunk HTTP Event Collector".
 */
import { gzipSync } from 'node:zlib';
import { severityRank, type Finding, type Kind } from '../../model/finding.js';
import { parseUtc } from '../../model/time.js';
import type { DeliveryItem } from '../sink.js';
import type { HecBatchOptions, HecEnvelopeOptions } from './config.js';

/** `vendor_product` of every event (CIM). */
export const VENDOR_PRODUCT = 'Microsoft Defender for Cloud';

/** Indexed fields: HEC takes only a flat map of strings or lists of strings (else code 15). */
export type HecFields = Record<string, string | string[]>;

/** One HEC event envelope, as sent. Unknown top-level keys are refused by HEC, so there are no others. */
export interface HecEnvelope {
  /** Epoch seconds, fraction allowed (milliseconds kept). */
  readonly time?: number;
  readonly host?: string;
  readonly source: string;
  readonly sourcetype: string;
  readonly index?: string;
  /** The original record, untouched. */
  readonly event: unknown;
  readonly fields: HecFields;
}

/** One request's worth of events. */
export interface HecBatch {
  /** The request body: concatenated envelopes, newline-separated; gzipped when the options say so. */
  readonly body: Buffer;
  /** The items in the batch, in order: the n-th envelope of `body` is `items[n]`. */
  readonly items: DeliveryItem[];
  /** Uncompressed size of the body, in bytes. */
  readonly bytes: number;
}

/** The sourcetype of a kind: `sourcetypes[kind]`, else `sourcetype`, else `azure:defender:<kind>`. */
export function hecSourcetype(kind: Kind, options: HecEnvelopeOptions): string {
  return options.sourcetypes[kind] ?? options.sourcetype ?? `azure:defender:${kind}`;
}

/**
 * The event time in epoch seconds: the record's own time (a zoneless time is UTC), else the time the event
 * was enqueued in Event Hubs, else undefined (Splunk then uses its receive time).
 */
export function hecTime(item: DeliveryItem): number | undefined {
  const at = parseUtc(item.finding.time) ?? parseUtc(item.metadata?.enqueuedTimeUtc);
  return at === undefined ? undefined : at.getTime() / 1000;
}

/**
 * The indexed fields of a finding, named after Splunk's CIM "Alerts" data model where one fits (`severity`,
 * `severity_id`, `signature`, `signature_id`, `id`, `dest`, `dest_type`, `type`, `vendor_product`) and after
 * the Defender / Azure concept otherwise. Empty values are left out. They are what {@link hecFieldsJson}
 * writes, read back.
 */
export function hecFields(finding: Finding): HecFields {
  return JSON.parse(hecFieldsJson(finding)) as HecFields;
}

/**
 * The indexed fields as JSON, written directly, in one pass (no intermediate object: it runs once per event).
 * Keys are ours and plain; each present field appears once, in this order, empty values and entries left out.
 */
export function hecFieldsJson(finding: Finding): string {
  const cvss = finding.cvss !== undefined && Number.isFinite(finding.cvss) ? String(finding.cvss) : undefined;
  // Each field comes with a leading comma; `vendor_product` is always there, so the first comma is dropped.
  const fields =
    textField('kind', finding.kind) +
    textField('id', finding.id) +
    // CIM wants lower case; `unknown` is one of its values, so it is kept (a secure score has no severity).
    textField('severity', finding.severity.toLowerCase()) +
    // 0 unknown, 1 informational, 2 low, 3 medium, 4 high, 5 critical: the same numbers as OCSF severity_id.
    `,"severity_id":"${severityRank(finding.severity)}"` +
    textField('signature', finding.title !== '' ? finding.title : finding.alertType) +
    textField('signature_id', finding.alertType) +
    (finding.kind === 'alert' ? ',"type":"alert"' : ',"type":"event"') +
    textField('status', finding.status) +
    textField('dest', finding.resourceId) +
    textField('dest_type', armResourceType(finding.resourceId)) +
    textField('subscription', finding.subscriptionId) +
    textField('resource_group', finding.resourceGroup) +
    textField('cluster', finding.cluster) +
    textField('namespace', finding.namespace) +
    listField('mitre_tactic', finding.tactics) +
    listField('cve', finding.cves) +
    textField('cvss', cvss) +
    textField('action', finding.action) +
    (finding.snapshot ? ',"snapshot":"true"' : '') +
    `,"vendor_product":${VENDOR_PRODUCT_JSON}`;
  return `{${fields.slice(1)}}`;
}

const VENDOR_PRODUCT_JSON = JSON.stringify(VENDOR_PRODUCT);

/** `,"key":"value"`, or nothing for an absent or empty value. */
function textField(key: string, value: string | undefined): string {
  return value === undefined || value === '' ? '' : `,"${key}":${jsonString(value)}`;
}

/** `,"key":["a","b"]` without the empty entries, or nothing when none is left. */
function listField(key: string, values: readonly string[]): string {
  let out = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as string;
    if (value !== '') out += `${out === '' ? '' : ','}${jsonString(value)}`;
  }
  return out === '' ? '' : `,"${key}":[${out}]`;
}

/** What JSON.stringify escapes in a string (control characters, quote, backslash, lone surrogates). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `JSON.stringify(value)` for a string, with the common case (nothing to escape) done without it. */
function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/**
 * The ARM resource type named by a resource id: `.../providers/Microsoft.ContainerService/managedClusters/aks`
 * gives `Microsoft.ContainerService/managedClusters`; nested types are joined
 * (`Microsoft.Network/virtualNetworks/subnets`). Undefined for ids without a provider (a subscription).
 */
export function armResourceType(resourceId: string): string | undefined {
  const segments = resourceId.split('/');
  let at = 0;
  while (at < segments.length && !isProviders(segments[at] as string)) at++;
  // After `providers`: the namespace, then type/name pairs, until an extension resource's own `providers`.
  let type: string | undefined;
  let parts = 0;
  for (let i = at + 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '') continue;
    if (parts % 2 === 1 && isProviders(segment)) break;
    if (parts === 0) type = segment;
    else if (parts % 2 === 1) type += `/${segment}`;
    parts++;
  }
  return parts > 1 ? type : undefined;
}

function isProviders(segment: string): boolean {
  return segment.length === 9 && segment.toLowerCase() === 'providers';
}

/** The envelope of one item (before serialisation). */
export function buildHecEnvelope(item: DeliveryItem, options: HecEnvelopeOptions): HecEnvelope {
  const time = hecTime(item);
  return {
    ...(time !== undefined ? { time } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    source: options.source,
    sourcetype: hecSourcetype(item.finding.kind, options),
    ...(options.index !== undefined ? { index: options.index } : {}),
    event: item.finding.raw,
    fields: hecFields(item.finding),
  };
}

/**
 * One HEC JSON envelope for one item (no trailing newline): the same keys, in the same order, as
 * {@link buildHecEnvelope}, written directly. The record's own text, when the pipeline kept it, goes in as
 * received: it was parsed once already and is not serialised again.
 */
export function encodeHecEvent(item: DeliveryItem, options: HecEnvelopeOptions): string {
  const [head, event, tail] = hecEventParts(item, options);
  return head + event + tail;
}

/**
 * An envelope in three parts, to be written one after the other: what comes before the record, the record's
 * JSON text (as received, or serialised), and what comes after it. A batch writes the three into its buffer
 * as they are, so the record's text is never copied into a longer string first.
 */
function hecEventParts(item: DeliveryItem, options: HecEnvelopeOptions): [head: string, event: string, tail: string] {
  const time = hecTime(item);
  // JSON.stringify leaves out an undefined event, and so does this (HEC then answers code 12).
  const event: string | undefined = item.finding.rawText ?? (JSON.stringify(item.finding.raw) as string | undefined);
  const head =
    `{${time !== undefined ? `"time":${time},` : ''}${envelopeHead(options)}"sourcetype":${jsonString(hecSourcetype(item.finding.kind, options))},` +
    `${options.index !== undefined ? `"index":${jsonString(options.index)},` : ''}${event !== undefined ? '"event":' : ''}`;
  const tail = `${event !== undefined ? ',' : ''}"fields":${hecFieldsJson(item.finding)}}`;
  return [head, event ?? '', tail];
}

/** `"host":...,"source":...,` of a destination's options, serialised once per options object. */
const heads = new WeakMap<HecEnvelopeOptions, string>();
function envelopeHead(options: HecEnvelopeOptions): string {
  let head = heads.get(options);
  if (head === undefined) {
    head = `${options.host !== undefined ? `"host":${JSON.stringify(options.host)},` : ''}"source":${JSON.stringify(options.source)},`;
    heads.set(options, head);
  }
  return head;
}

/**
 * Splits items into request bodies, in order: at most `batchMaxEvents` events and at most `batchMaxBytes`
 * uncompressed bytes each (newlines included); an event larger than `batchMaxBytes` on its own goes alone
 * in its own batch (HEC may still take it: Enterprise's own limit is far higher). Bodies are gzipped when
 * `gzip` is on; `bytes` is always the uncompressed size.
 */
export function encodeHecBatches(items: readonly DeliveryItem[], options: HecBatchOptions): HecBatch[] {
  const maxEvents = Math.max(1, Math.floor(options.batchMaxEvents));
  const batches: HecBatch[] = [];
  // Each event's three parts are kept and measured; each batch becomes one buffer, written once.
  let parts: string[] = [];
  let batchItems: DeliveryItem[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (batchItems.length === 0) return;
    const plain = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const part of parts) at += plain.write(part, at, 'utf8');
    batches.push({ body: options.gzip ? gzipSync(plain) : plain, items: batchItems, bytes });
    parts = [];
    batchItems = [];
    bytes = 0;
  };
  for (const item of items) {
    const [head, event, tail] = hecEventParts(item, options);
    const line = `${tail}\n`;
    const size = Buffer.byteLength(head, 'utf8') + Buffer.byteLength(event, 'utf8') + Buffer.byteLength(line, 'utf8');
    if (batchItems.length >= maxEvents || (batchItems.length > 0 && bytes + size > options.batchMaxBytes)) flush();
    parts.push(head, event, line);
    batchItems.push(item);
    bytes += size;
  }
  flush();
  return batches;
}
