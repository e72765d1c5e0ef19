/**
 * The `splunk-hec` sink: ONE attempt per HEC request it builds, each answer classified by HEC's
 * `{text, code}` table (protocols.md), per record. Retries belong to `src/delivery/`.
 *
 * - Code 6/12/13 with `invalid-event-number: N`: Splunk indexed the events before N. They are delivered;
 *   event N is refused for good; the events after N were never looked at and are handed back as retryable
 *   (`hec-resend-after-invalid`), so that only they are sent again (resending the batch would duplicate).
 * - With `ack: true` (Splunk Enterprise, token with `useACK`), a record counts as delivered only once
 *   `/services/collector/ack` says its request was indexed; unconfirmed at `ackTimeoutMs`: `hec-ack-timeout`,
 *   retryable (a resend may duplicate: Splunk is the system of record and duplicates are searchable by id).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AxiosInstance, AxiosResponse } from 'axios';
import type { Secret } from '../../config/secret.js';
import { redact } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import { classifyHttpFailure, classifyHttpResponse, isRetryableStatus, parseRetryAfterMs } from '../http.js';
import type { SinkContext } from '../settings.js';
import { DeliveryError, type AttemptResult, type DeliveryItem, type PreviewFile, type Sink } from '../sink.js';
import { readSplunkHecConfig, type SplunkHecConfig } from './config.js';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { encodeHecBatches, type HecBatch } from './encode.js';

/** gzip on libuv's thread pool, not the event loop's thread. */
const gzipOffThread = promisify(gzip);

/** The JSON event endpoint (also answers at `/services/collector` and `/services/collector/event/1.0`). */
export const HEC_EVENT_PATH = '/services/collector/event';
/** Indexer acknowledgement polls. */
export const HEC_ACK_PATH = '/services/collector/ack';

export interface HecAnswerClass {
  /** HEC's own text for the code. */
  readonly text: string;
  /** The same request may succeed later. */
  readonly retryable: boolean;
  /** The destination is misconfigured (token, index): logged loudly, never fixed by retrying. */
  readonly configuration: boolean;
  /**
   * The answer names one bad event (`invalid-event-number`): the events before it were indexed, the ones
   * after it were not looked at.
   */
  readonly perEvent: boolean;
}

/**
 * HEC's answer codes (protocols.md; Splunk docs "Troubleshoot HTTP Event Collector") and what each means for
 * delivery. 8 and 9 are the server's trouble and worth retrying (9 asks to back off: `Retry-After` is
 * honoured); 1-4 (token) and 7 (index) are configuration errors; 6, 12 and 13 condemn one event and name it;
 * the rest are permanent. Codes 17-20 answer the health endpoint only.
 */
export const HEC_ANSWERS: Readonly<Record<number, HecAnswerClass>> = Object.freeze({
  0: { text: 'Success', retryable: false, configuration: false, perEvent: false },
  1: { text: 'Token disabled', retryable: false, configuration: true, perEvent: false },
  2: { text: 'Token is required', retryable: false, configuration: true, perEvent: false },
  3: { text: 'Invalid authorization', retryable: false, configuration: true, perEvent: false },
  4: { text: 'Invalid token', retryable: false, configuration: true, perEvent: false },
  5: { text: 'No data', retryable: false, configuration: false, perEvent: false },
  6: { text: 'Invalid data format', retryable: false, configuration: false, perEvent: true },
  7: { text: 'Incorrect index', retryable: false, configuration: true, perEvent: false },
  8: { text: 'Internal server error', retryable: true, configuration: false, perEvent: false },
  9: { text: 'Server is busy', retryable: true, configuration: false, perEvent: false },
  10: { text: 'Data channel is missing', retryable: false, configuration: false, perEvent: false },
  11: { text: 'Invalid data channel', retryable: false, configuration: false, perEvent: false },
  12: { text: 'Event field is required', retryable: false, configuration: false, perEvent: true },
  13: { text: 'Event field cannot be blank', retryable: false, configuration: false, perEvent: true },
  14: { text: 'ACK is disabled', retryable: false, configuration: false, perEvent: false },
  15: { text: 'Error in handling indexed fields', retryable: false, configuration: false, perEvent: false },
  16: { text: 'Query string authorization is not enabled', retryable: false, configuration: false, perEvent: false },
});

/** What a HEC answer body says, as far as it is readable. */
export interface HecAnswer {
  readonly code?: number;
  readonly text?: string;
  readonly ackId?: number;
  readonly invalidEventNumber?: number;
}

/** Reads a HEC answer body (JSON text); fields that are missing or of the wrong type are left out. */
export function parseHecAnswer(data: unknown): HecAnswer {
  let value: unknown = data;
  if (typeof data === 'string' || Buffer.isBuffer(data)) {
    try {
      value = JSON.parse(data.toString());
    } catch {
      return {};
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  const record = value as Record<string, unknown>;
  const integer = (key: string): number | undefined => {
    const raw = record[key];
    const number = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
    return typeof number === 'number' && Number.isInteger(number) && number >= 0 ? number : undefined;
  };
  const code = integer('code');
  const ackId = integer('ackId');
  const invalidEventNumber = integer('invalid-event-number');
  return {
    ...(code !== undefined ? { code } : {}),
    ...(typeof record['text'] === 'string' ? { text: record['text'] } : {}),
    ...(ackId !== undefined ? { ackId } : {}),
    ...(invalidEventNumber !== undefined ? { invalidEventNumber } : {}),
  };
}

/**
 * The outcome of one HEC request for each of its `count` events: `'ok'` or the error. `what` names the
 * destination; `secrets` are removed from messages.
 */
export function classifyHecResponse(
  response: Pick<AxiosResponse, 'status' | 'headers' | 'data'>,
  count: number,
  what: string,
  secrets: readonly Secret[],
): { results: AttemptResult[]; ackId?: number } {
  const answer = parseHecAnswer(response.data);
  const status = response.status;
  const success = status >= 200 && status < 300 && (answer.code === undefined || answer.code === 0);
  if (success) {
    return { results: Array.from({ length: count }, () => OK), ...(answer.ackId !== undefined ? { ackId: answer.ackId } : {}) };
  }
  const known = answer.code === undefined ? undefined : HEC_ANSWERS[answer.code];
  if (answer.code === undefined || known === undefined) {
    const error = classifyHttpResponse(response, what, secrets);
    return { results: Array.from({ length: count }, () => ({ ok: false, error })) };
  }
  const code = answer.code;
  const text = redact(answer.text ?? known.text, secrets);
  const retryAfterMs = parseRetryAfterMs(headerValue(response.headers, 'retry-after'));
  const base = `${what}: HEC code ${code} (${text}), HTTP ${status}`;
  const bad = answer.invalidEventNumber;
  if (known.perEvent && bad !== undefined && bad < count) {
    const refused = new DeliveryError(`${base}, at event ${bad} of ${count} in the request: Splunk refused this record`, {
      reason: `hec-${code}`,
      retryable: false,
    });
    const resend = new DeliveryError(
      `${what}: not processed: Splunk stopped at the invalid event ${bad} of the same request (HEC code ${code}); only the events after it are to be sent again`,
      { reason: 'hec-resend-after-invalid', retryable: true },
    );
    return {
      results: Array.from({ length: count }, (_, index): AttemptResult => {
        if (index < bad) return OK;
        return { ok: false, error: index === bad ? refused : resend };
      }),
    };
  }
  const error = new DeliveryError(
    `${base}${known.perEvent ? ' (no invalid-event-number: the whole request is refused)' : ''}`,
    {
      reason: `hec-${code}`,
      // A 5xx/429/408 is worth another try whatever the code says; the code alone decides otherwise.
      retryable: known.retryable || isRetryableStatus(status),
      configuration: known.configuration || status === 401 || status === 403,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    },
  );
  return { results: Array.from({ length: count }, () => ({ ok: false, error })) };
}

const OK: AttemptResult = Object.freeze({ ok: true });

function headerValue(headers: unknown, name: string): unknown {
  if (headers === null || typeof headers !== 'object') return undefined;
  const record = headers as Record<string, unknown> & { get?: (name: string) => unknown };
  return typeof record.get === 'function' ? record.get(name) : record[name];
}

/**
 * The full URL of a HEC endpoint from the configured base URL. A base that already ends with a collector
 * path (`.../services/collector`, `.../services/collector/event`) is tolerated; a path prefix before it (a
 * reverse proxy) is kept.
 */
export function hecEndpoint(baseUrl: string, path: string): string {
  const url = new URL(baseUrl);
  let prefix = url.pathname.replace(/\/+$/, '');
  prefix = prefix.replace(/\/services\/collector(\/event(\/1\.0)?|\/raw|\/ack|\/health)?$/i, '');
  return `${url.origin}${prefix}${path}`;
}

/** The `splunk-hec` sink for a destination of the rules file. */
export function createSplunkHecSink(destination: Destination, context: SinkContext): Sink {
  return createSplunkHecSinkFromConfig(readSplunkHecConfig(destination, context), context.http, destination.notify);
}

/**
 * The sink from a read configuration: what `createSplunkHecSink` does after reading the settings. Tests use
 * it to shorten `ackPollIntervalMs` and `ackTimeoutMs` below what the rules file allows.
 */
export function createSplunkHecSinkFromConfig(config: SplunkHecConfig, http: AxiosInstance, notify = false): Sink {
  const what = `splunk-hec "${config.name}"`;
  const secrets = [config.token];
  const baseHeaders = (): Record<string, string> => ({
    Authorization: `Splunk ${config.token.reveal()}`,
    ...(config.ack ? { 'X-Splunk-Request-Channel': config.channel } : {}),
  });

  async function post(path: string, body: Buffer | string, headers: Record<string, string>, signal: AbortSignal): Promise<AxiosResponse<unknown>> {
    return http.post<unknown>(hecEndpoint(config.url.reveal(), path), body, {
      headers: { ...baseHeaders(), ...headers },
      timeout: config.timeoutMs,
      signal,
    });
  }

  /** One request for one batch: one result per item of the batch, and the ackId when acks are on. */
  async function sendBatch(batch: HecBatch, signal: AbortSignal): Promise<{ results: AttemptResult[]; ackId?: number }> {
    let response: AxiosResponse<unknown>;
    try {
      const body = config.gzip ? await gzipOffThread(batch.body) : batch.body;
      response = await post(
        HEC_EVENT_PATH,
        body,
        { 'Content-Type': 'application/json', ...(config.gzip ? { 'Content-Encoding': 'gzip' } : {}) },
        signal,
      );
    } catch (error) {
      if (signal.aborted) throw abortReason(signal, error);
      const failure = classifyHttpFailure(error, what, secrets);
      return { results: batch.items.map(() => ({ ok: false, error: failure })) };
    }
    return classifyHecResponse(response, batch.items.length, what, secrets);
  }

  /**
   * Polls the acknowledgements of the `pending` ackIds until all are true, a poll fails for good, or
   * `ackTimeoutMs` passes. Answers the errors of the ackIds not confirmed. Consumes `pending`.
   */
  async function awaitAcks(pending: Set<number>, signal: AbortSignal): Promise<Map<number, DeliveryError>> {
    const failed = new Map<number, DeliveryError>();
    const deadlineMs = Date.now() + config.ackTimeoutMs;
    let lastProblem = '';
    while (pending.size > 0) {
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0) break;
      await sleep(Math.min(config.ackPollIntervalMs, remainingMs), undefined, { signal }).catch((error: unknown) => {
        throw abortReason(signal, error);
      });
      const ids = [...pending];
      let response: AxiosResponse<unknown>;
      try {
        response = await post(HEC_ACK_PATH, JSON.stringify({ acks: ids }), { 'Content-Type': 'application/json' }, signal);
      } catch (error) {
        if (signal.aborted) throw abortReason(signal, error);
        lastProblem = classifyHttpFailure(error, what, secrets).message;
        continue;
      }
      if (response.status !== 200) {
        const { results } = classifyHecResponse(response, 1, what, secrets);
        const first = results[0];
        const error = first !== undefined && !first.ok ? first.error : undefined;
        if (error !== undefined && !error.retryable) {
          for (const id of ids) failed.set(id, new DeliveryError(`${error.message} (acknowledgement poll)`, { reason: error.reason, retryable: false, configuration: error.configuration }));
          return failed;
        }
        lastProblem = error?.message ?? `HTTP ${response.status}`;
        continue;
      }
      for (const id of acknowledged(response.data)) pending.delete(id);
    }
    for (const id of pending) {
      failed.set(
        id,
        new DeliveryError(
          `${what}: not acknowledged within ${config.ackTimeoutMs} ms (ackId ${id}, channel ${config.channel}); Splunk may still index it, so a resend can duplicate${lastProblem ? `; last poll problem: ${redact(lastProblem, secrets)}` : ''}`,
          { reason: 'hec-ack-timeout', retryable: true },
        ),
      );
    }
    return failed;
  }

  return {
    name: config.name,
    type: 'splunk-hec',
    notify,
    maxBatchItems: config.batchMaxEvents,
    maxConcurrency: 4,

    async send(items: readonly DeliveryItem[], signal: AbortSignal): Promise<AttemptResult[]> {
      signal.throwIfAborted();
      // Compressed in sendBatch, on libuv's thread pool: gzip stays off the event loop's thread.
      const batches = encodeHecBatches(items, { ...config, gzip: false });
      const perBatch: AttemptResult[][] = [];
      /** ackId -> batch index. */
      const pendingAcks = new Map<number, number>();
      let stopWith: DeliveryError | undefined;
      for (const [index, batch] of batches.entries()) {
        const skipped = stopWith;
        if (skipped !== undefined) {
          perBatch.push(batch.items.map(() => ({ ok: false, error: skipped })));
          continue;
        }
        signal.throwIfAborted();
        const { results, ackId } = await sendBatch(batch, signal);
        perBatch.push(results);
        stopWith = stopReason(results, what);
        if (config.ack && ackId !== undefined && results.every((result) => result.ok)) pendingAcks.set(ackId, index);
      }
      if (pendingAcks.size > 0) {
        const failed = await awaitAcks(new Set(pendingAcks.keys()), signal);
        for (const [ackId, error] of failed) {
          const index = pendingAcks.get(ackId);
          const results = index === undefined ? undefined : perBatch[index];
          if (index !== undefined && results !== undefined) perBatch[index] = results.map(() => ({ ok: false, error }));
        }
      }
      return perBatch.flat();
    },

    render(items: readonly DeliveryItem[]): PreviewFile[] {
      return encodeHecBatches(items, { ...config, gzip: false }).map((batch, index) => ({
        name: `${config.name}/batch-${String(index + 1).padStart(4, '0')}.json`,
        content: batch.body.toString('utf8'),
      }));
    },

    async close(): Promise<void> {
      // The HTTP client is shared and belongs to the caller.
    },
  };
}

/**
 * After a failure that concerns the destination rather than the batch (bad token or index, no connection,
 * no answer in time), the remaining requests of this call would fail the same way or wait as long: they are
 * not sent, and their items get an error saying so (permanent for configuration errors, else retryable).
 */
function stopReason(results: readonly AttemptResult[], what: string): DeliveryError | undefined {
  const first = results[0];
  if (first === undefined || first.ok) return undefined;
  const error = first.error;
  if (error.configuration) return error;
  if (error.reason === 'timeout' || error.reason === 'connection') {
    return new DeliveryError(`${what}: not sent: an earlier request of the same attempt failed (${error.message})`, {
      reason: error.reason,
      retryable: true,
    });
  }
  return undefined;
}

/** The ackIds an ack poll answer marks `true` (`{"acks":{"0":true,"1":false}}`). */
function acknowledged(data: unknown): number[] {
  let value: unknown = data;
  if (typeof data === 'string') {
    try {
      value = JSON.parse(data);
    } catch {
      return [];
    }
  }
  if (value === null || typeof value !== 'object') return [];
  const acks = (value as Record<string, unknown>)['acks'];
  if (acks === null || typeof acks !== 'object' || Array.isArray(acks)) return [];
  return Object.entries(acks as Record<string, unknown>)
    .filter(([id, done]) => done === true && /^\d+$/.test(id))
    .map(([id]) => Number(id));
}

/** The abort as the caller gave it (a sink rejects only for an abort). */
function abortReason(signal: AbortSignal, fallback: unknown): unknown {
  return signal.reason ?? fallback;
}
