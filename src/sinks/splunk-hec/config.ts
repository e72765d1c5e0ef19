/**
 * The `splunk-hec` destination's settings (schemas/routing-rules.schema.json, `definitions/splunkHec`),
 * resolved and defaulted: `${ENV}` references read, the token wrapped in a `Secret`, the URL checked.
 */
import { randomUUID } from 'node:crypto';
import type { Secret } from '../../config/secret.js';
import { KINDS, type Kind } from '../../model/finding.js';
import type { Destination } from '../../routing/types.js';
import { SinkConfigError, booleanSetting, numberSetting, secretSetting, textSetting, urlSetting, type SinkContext } from '../settings.js';

/** Events per request unless configured (Vector uses 1 MB or 1 s; 500 events of ~2 KB stay near 1 MB). */
export const DEFAULT_BATCH_MAX_EVENTS = 500;
/** Uncompressed bytes per request: Splunk Cloud's practical limit (protocols.md). */
export const DEFAULT_BATCH_MAX_BYTES = 1_000_000;
/** How long to poll for indexer acknowledgements before the batch counts as failed (retryable). */
export const DEFAULT_ACK_TIMEOUT_MS = 60_000;
/** Time between two acknowledgement polls. Vector waits 10 s; a Function invocation cannot wait that long. */
export const DEFAULT_ACK_POLL_INTERVAL_MS = 1_000;
/** Time allowed for one request, connect to last byte. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** `source` when none is configured. */
export const DEFAULT_SOURCE = 'defender-for-cloud';

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** What the envelope builder needs (encode.ts is pure and takes only this much). */
export interface HecEnvelopeOptions {
  /** `index`, when set; otherwise the token's default index applies. */
  readonly index?: string;
  /** `host`, when set; otherwise Splunk uses the sender's address. */
  readonly host?: string;
  readonly source: string;
  /** One sourcetype for every kind; `sourcetypes[kind]` wins over it; default `azure:defender:<kind>`. */
  readonly sourcetype?: string;
  readonly sourcetypes: Readonly<Partial<Record<Kind, string>>>;
}

/** What the batcher needs besides the envelope options. */
export interface HecBatchOptions extends HecEnvelopeOptions {
  /** Gzip request bodies (`Content-Encoding: gzip`). */
  readonly gzip: boolean;
  /** Most events in one request (>= 1). */
  readonly batchMaxEvents: number;
  /** Most uncompressed bytes in one request; a single larger event still goes, alone. */
  readonly batchMaxBytes: number;
}

export interface SplunkHecConfig extends HecBatchOptions {
  /** The destination's name in the rules file, for messages and preview file names. */
  readonly name: string;
  /** The base URL (`https://splunk.example.com:8088`); the sink appends `/services/collector/...`. */
  readonly url: Secret;
  readonly token: Secret;
  /** Indexer acknowledgement: a record counts as delivered once Splunk says it is indexed. */
  readonly ack: boolean;
  /** The HEC channel GUID sent with every request when `ack` is on. */
  readonly channel: string;
  /** How long to poll for acknowledgements, from the end of the last send of a `send` call. */
  readonly ackTimeoutMs: number;
  /** Time between acknowledgement polls (tests shorten it; not a rules-file setting). */
  readonly ackPollIntervalMs: number;
  /** Time allowed for one request (send or ack poll), connect to last byte. */
  readonly timeoutMs: number;
}

/**
 * Reads a `splunk-hec` destination. Throws `SinkConfigError` naming the key (never a value) when a setting
 * cannot be used: an unset `${ENV}` (outside preview), a URL that is not https: (loopback may use http:),
 * a URL with a query or fragment, a channel that is not a GUID, a bound below 1.
 */
export function readSplunkHecConfig(destination: Destination, context: SinkContext): SplunkHecConfig {
  const at = `destinations.${destination.name}`;
  const url = urlSetting(destination, 'url', context);
  if (url.reveal() !== '') {
    const parsed = new URL(url.reveal());
    if (parsed.search !== '' || parsed.hash !== '') {
      throw new SinkConfigError(`${at}.url (${url.source}): must be the base URL, without a query or fragment`);
    }
  }
  const token = secretSetting(destination, 'token', context);

  const channel = textSetting(destination, 'channel', context) || randomUUID();
  if (!GUID.test(channel)) throw new SinkConfigError(`${at}.channel: must be a GUID`);

  const batchMaxEvents = positiveInteger(destination, 'batchMaxEvents', DEFAULT_BATCH_MAX_EVENTS);
  const batchMaxBytes = positiveInteger(destination, 'batchMaxBytes', DEFAULT_BATCH_MAX_BYTES);
  const ackTimeoutMs = positiveInteger(destination, 'ackTimeoutMs', DEFAULT_ACK_TIMEOUT_MS);
  const timeoutMs = positiveInteger(destination, 'timeoutMs', DEFAULT_TIMEOUT_MS);

  const index = textSetting(destination, 'index', context);
  const host = textSetting(destination, 'host', context);
  const sourcetype = textSetting(destination, 'sourcetype', context);

  return Object.freeze({
    name: destination.name,
    url,
    token,
    ...(index ? { index } : {}),
    ...(host ? { host } : {}),
    source: textSetting(destination, 'source', context) || DEFAULT_SOURCE,
    ...(sourcetype ? { sourcetype } : {}),
    sourcetypes: readSourcetypes(destination),
    gzip: booleanSetting(destination, 'gzip', true),
    batchMaxEvents,
    batchMaxBytes,
    ack: booleanSetting(destination, 'ack', false),
    channel,
    ackTimeoutMs,
    ackPollIntervalMs: DEFAULT_ACK_POLL_INTERVAL_MS,
    timeoutMs,
  });
}

function positiveInteger(destination: Destination, key: string, fallback: number): number {
  const value = numberSetting(destination, key, fallback);
  if (!Number.isInteger(value) || value < 1) {
    throw new SinkConfigError(`destinations.${destination.name}.${key}: must be a whole number of at least 1`);
  }
  return value;
}

/** `sourcetypes: {alert: ..., recommendation: ...}`; keys other than record kinds are refused. */
function readSourcetypes(destination: Destination): Readonly<Partial<Record<Kind, string>>> {
  const raw = destination.settings['sourcetypes'];
  const out: Partial<Record<Kind, string>> = {};
  if (raw === undefined || raw === null) return Object.freeze(out);
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SinkConfigError(`destinations.${destination.name}.sourcetypes: expected a map of record kind to sourcetype`);
  }
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const kind = KINDS.find((candidate) => candidate === key);
    if (kind === undefined) {
      throw new SinkConfigError(`destinations.${destination.name}.sourcetypes.${key}: not a record kind (${KINDS.join(', ')})`);
    }
    if (typeof value !== 'string' || value.trim() === '') {
      throw new SinkConfigError(`destinations.${destination.name}.sourcetypes.${key}: expected a sourcetype`);
    }
    out[kind] = value;
  }
  return Object.freeze(out);
}
