/**
 * The `teams` sink: one card per record, POSTed to a Workflows webhook (or a legacy connector), one attempt.
 *
 * Answers (protocols.md):
 * | answer | meaning | retry? |
 * |---|---|---|
 * | 202, any body | Workflows accepted the message | done |
 * | 200, body `1` | legacy connector accepted it | done |
 * | 200, other body | legacy connector error text in a success status (throttling) | yes: `teams-legacy-error` |
 * | 413 | message too large | no |
 * | 400 | malformed message | no |
 * | 429 + `Retry-After` | throttled | yes, after `retryAfterMs` |
 * | anything else | the shared table (`classifyHttpResponse`) | per table |
 * A card that fails `validateTeamsCard` is never sent (Workflows answer 202 even for a card they cannot
 * show): `card-invalid`, permanent.
 */
import type { AxiosResponse } from 'axios';
import { redact, type Secret } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import { classifyHttpFailure, classifyHttpResponse, shortBody } from '../http.js';
import type { SinkContext } from '../settings.js';
import { DeliveryError, type AttemptResult, type DeliveryItem, type PreviewFile, type Sink } from '../sink.js';
import { readTeamsConfig, type TeamsFormat } from './config.js';
import { encodeTeamsPayload, validateTeamsCard } from './encode.js';
import { abortError, previewFileNames, sendInTurn } from '../files.js';

/** Creates the sink; throws SinkConfigError when the destination cannot be used as configured. */
export function createTeamsSink(destination: Destination, context: SinkContext): Sink {
  const config = readTeamsConfig(destination, context);
  const what = `teams destination "${destination.name}"`;
  const secrets: readonly Secret[] = [config.url];

  async function sendOne(item: DeliveryItem, signal: AbortSignal): Promise<AttemptResult> {
    const built = buildBody(item, config.format, what, secrets);
    if (built instanceof DeliveryError) return { ok: false, error: built };
    let response: AxiosResponse<unknown>;
    try {
      response = await context.http.post<unknown>(config.url.reveal(), built, {
        headers: { 'Content-Type': 'application/json' },
        timeout: config.timeoutMs,
        signal,
        responseType: 'text',
      });
    } catch (error: unknown) {
      if (signal.aborted) throw abortError(signal, what);
      return { ok: false, error: classifyHttpFailure(error, what, secrets) };
    }
    const failure = classifyTeamsResponse(response, what, secrets, Buffer.byteLength(built, 'utf8'));
    return failure === undefined ? { ok: true } : { ok: false, error: failure };
  }

  return {
    name: destination.name,
    type: 'teams',
    notify: destination.notify,
    maxBatchItems: 1,
    // Order, and Teams' per-channel throttling: one message at a time.
    maxConcurrency: 1,
    async send(items: readonly DeliveryItem[], signal: AbortSignal): Promise<AttemptResult[]> {
      // One message per record, in turn: Teams throttles per channel, so parallel posts would only trade
      // order for 429s.
      return sendInTurn(items, signal, what, sendOne);
    },
    render(items: readonly DeliveryItem[]): PreviewFile[] {
      const names = previewFileNames(destination.name, items, 'json');
      return items.map((item, index) => ({ name: names[index] ?? '', content: JSON.stringify(encodeTeamsPayload(item.finding, config.format)) }));
    },
    async close(): Promise<void> {
      // The HTTP client is shared and closed by its owner.
    },
  };
}

/**
 * Classifies a Teams answer: undefined for success (202; 200 with body `1`), else the error. `bytes` is the
 * size of what was sent, for the 413 message.
 */
export function classifyTeamsResponse(
  response: Pick<AxiosResponse, 'status' | 'headers' | 'data'>,
  what: string,
  secrets: readonly Secret[],
  bytes?: number,
): DeliveryError | undefined {
  const { status } = response;
  if (status === 202) return undefined;
  if (status === 200) {
    const body = typeof response.data === 'string' ? response.data.trim() : shortBody(response.data);
    if (body === '1') return undefined;
    // Legacy connectors reported throttling (and other failures) as a 200 with the error text as body, and
    // no Retry-After: the delivery loop's own backoff applies.
    return new DeliveryError(`${what}: HTTP 200 with an error instead of "1": ${redact(shortBody(body), secrets) || '(empty body)'}`, {
      reason: 'teams-legacy-error',
      retryable: true,
    });
  }
  if (status === 413) {
    const size = bytes !== undefined ? ` (${bytes} bytes)` : '';
    return new DeliveryError(`${what}: HTTP 413: Teams refused the message as too large${size}`, { reason: 'http-413', retryable: false });
  }
  return classifyHttpResponse(response, what, secrets);
}

/** The JSON body to post, or a permanent `card-invalid` error: a card that fails validation is never sent. */
function buildBody(item: DeliveryItem, format: TeamsFormat, what: string, secrets: readonly Secret[]): string | DeliveryError {
  try {
    const message = encodeTeamsPayload(item.finding, format);
    const problems = validateTeamsCard(message);
    if (problems.length > 0) {
      return new DeliveryError(`${what}: the card for ${item.input} failed validation and was not sent: ${problems.slice(0, 5).join('; ')}`, {
        reason: 'card-invalid',
        retryable: false,
      });
    }
    return JSON.stringify(message);
  } catch (error: unknown) {
    const detail = redact(error instanceof Error ? error.message : String(error), secrets);
    return new DeliveryError(`${what}: could not build the card for ${item.input}: ${detail}`, { reason: 'card-invalid', retryable: false, cause: error });
  }
}


