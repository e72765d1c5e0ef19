/**
 * The `webhook` destination's settings: the URL (a Secret: receivers put tokens in it), headers whose values
 * are Secrets (`Authorization: ${HOOK_TOKEN}`), and the per-request time limit.
 */
import type { Secret } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import { numberSetting, secretMapSetting, SinkConfigError, urlSetting, type SinkContext } from '../settings.js';

/** Default time allowed for one request, connect to last byte, in milliseconds (as the schema says). */
export const WEBHOOK_DEFAULT_TIMEOUT_MS = 30_000;

/** HTTP header names (RFC 9110 tokens), as the rules schema checks them. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers the HTTP client owns: setting them would corrupt the request or send it elsewhere. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);

export interface WebhookConfig {
  /** The URL, reveal only to send. */
  readonly url: Secret;
  /** Extra headers, names as written in the rules file. */
  readonly headers: ReadonlyMap<string, Secret>;
  readonly timeoutMs: number;
}

/** Reads and checks a `webhook` destination; throws SinkConfigError naming the key, never a value. */
export function readWebhookConfig(destination: Destination, context: SinkContext): WebhookConfig {
  const url = urlSetting(destination, 'url', context);
  const headers = secretMapSetting(destination, 'headers', context);
  for (const [name, value] of headers) {
    const at = `destinations.${destination.name}.headers.${name}`;
    if (!HEADER_NAME.test(name)) throw new SinkConfigError(`destinations.${destination.name}.headers: "${name}" is not a valid header name`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new SinkConfigError(`${at}: set by the HTTP client, cannot be configured`);
    // A line break in a value would split it into another header (and Node refuses it at send time).
    if (/[\r\n\0]/.test(value.reveal())) throw new SinkConfigError(`${at} (${value.source}): the value contains a line break or NUL`);
  }
  const timeoutMs = numberSetting(destination, 'timeoutMs', WEBHOOK_DEFAULT_TIMEOUT_MS);
  if (timeoutMs <= 0) throw new SinkConfigError(`destinations.${destination.name}.timeoutMs: must be a positive number of milliseconds`);
  return Object.freeze({ url, headers, timeoutMs });
}
