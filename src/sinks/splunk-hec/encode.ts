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
 * the Defender / Azure concept otherwise. Empty values are left out.
 */
export function hecFields(finding: Finding): HecFields {
  const fields: HecFields = {};
  const put = (key: string, value: string | readonly string[] | undefined): void => {
    if (value === undefined) return;
    if (typeof value === 'string') {
      if (value !== '') fields[key] = value;
      return;
    }
    const list = value.filter((entry) => entry !== '');
    if (list.length > 0) fields[key] = list;
  };
  put('kind', finding.kind);
  put('id', finding.id);
  // CIM wants lower case; `unknown` is one of its values, so it is kept (a secure score has no severity).
  put('severity', finding.severity.toLowerCase());
  // 0 unknown, 1 informational, 2 low, 3 medium, 4 high, 5 critical: the same numbers as OCSF severity_id.
  put('severity_id', String(severityRank(finding.severity)));
  put('signature', finding.title !== '' ? finding.title : finding.alertType);
  put('signature_id', finding.alertType);
  put('type', finding.kind === 'alert' ? 'alert' : 'event');
  put('status', finding.status);
  put('dest', finding.resourceId);
  put('dest_type', armResourceType(finding.resourceId));
  put('subscription', finding.subscriptionId);
  put('resource_group', finding.resourceGroup);
  put('cluster', finding.cluster);
  put('namespace', finding.namespace);
  put('mitre_tactic', finding.tactics);
  put('cve', finding.cves);
  if (finding.cvss !== undefined && Number.isFinite(finding.cvss)) put('cvss', String(finding.cvss));
  put('action', finding.action);
  if (finding.snapshot) put('snapshot', 'true');
  put('vendor_product', VENDOR_PRODUCT);
  return fields;
}

/**
 * The ARM resource type named by a resource id: `.../providers/Microsoft.ContainerService/managedClusters/aks`
 * gives `Microsoft.ContainerService/managedClusters`; nested types are joined
 * (`Microsoft.Network/virtualNetworks/subnets`). Undefined for ids without a provider (a subscription).
 */
export function armResourceType(resourceId: string): string | undefined {
  const segments = resourceId.split('/').filter((segment) => segment !== '');
  const at = segments.findIndex((segment) => segment.toLowerCase() === 'providers');
  const namespace = at >= 0 ? segments[at + 1] : undefined;
  if (namespace === undefined) return undefined;
  const types: string[] = [namespace];
  // After the namespace: type/name pairs, until an extension resource's own `providers` segment.
  for (let i = at + 2; i < segments.length; i += 2) {
    const type = segments[i];
    if (type === undefined || type.toLowerCase() === 'providers') break;
    types.push(type);
  }
  return types.length > 1 ? types.join('/') : undefined;
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
  const time = hecTime(item);
  // JSON.stringify leaves out an undefined event, and so does this (HEC then answers code 12).
  const event: string | undefined = item.finding.rawText ?? (JSON.stringify(item.finding.raw) as string | undefined);
  return (
    `{${time !== undefined ? `"time":${time},` : ''}${envelopeHead(options)}"sourcetype":${JSON.stringify(hecSourcetype(item.finding.kind, options))},` +
    `${options.index !== undefined ? `"index":${JSON.stringify(options.index)},` : ''}${event !== undefined ? `"event":${event},` : ''}"fields":${JSON.stringify(hecFields(item.finding))}}`
  );
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
  // Lines are kept as text and measured; each batch becomes one buffer, written once.
  let lines: string[] = [];
  let batchItems: DeliveryItem[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (batchItems.length === 0) return;
    const plain = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const line of lines) at += plain.write(line, at, 'utf8');
    batches.push({ body: options.gzip ? gzipSync(plain) : plain, items: batchItems, bytes });
    lines = [];
    batchItems = [];
    bytes = 0;
  };
  for (const item of items) {
    const line = `${encodeHecEvent(item, options)}\n`;
    const size = Buffer.byteLength(line, 'utf8');
    if (batchItems.length >= maxEvents || (batchItems.length > 0 && bytes + size > options.batchMaxBytes)) flush();
    lines.push(line);
    batchItems.push(item);
    bytes += size;
  }
  flush();
  return batches;
}
