/**
 * The `webhook` sink: one JSON POST per record, one attempt. Any 2xx is success; everything else is
 * classified by the shared table (`classifyHttpResponse`: 408/429/5xx retryable except 501/505, 401/403/404
 * configuration errors, other 4xx permanent; redirects are not followed, so a 3xx is permanent too).
 */
import type { AxiosResponse } from 'axios';
import type { Secret } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import { classifyHttpFailure, classifyHttpResponse } from '../http.js';
import type { SinkContext } from '../settings.js';
import type { AttemptResult, DeliveryItem, PreviewFile, Sink } from '../sink.js';
import { abortError, previewFileNames, sendInTurn } from '../files.js';
import { readWebhookConfig } from './config.js';
import { encodeWebhookBody } from './encode.js';

/** Creates the sink; throws SinkConfigError when the destination cannot be used as configured. */
export function createWebhookSink(destination: Destination, context: SinkContext): Sink {
  const config = readWebhookConfig(destination, context);
  const what = `webhook destination "${destination.name}"`;
  const secrets: readonly Secret[] = [config.url, ...config.headers.values()];

  async function sendOne(item: DeliveryItem, signal: AbortSignal): Promise<AttemptResult> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    for (const [name, value] of config.headers) headers[name] = value.reveal();
    let response: AxiosResponse<unknown>;
    try {
      response = await context.http.post<unknown>(config.url.reveal(), JSON.stringify(encodeWebhookBody(item)), {
        headers,
        timeout: config.timeoutMs,
        signal,
        responseType: 'text',
      });
    } catch (error: unknown) {
      if (signal.aborted) throw abortError(signal, what);
      return { ok: false, error: classifyHttpFailure(error, what, secrets) };
    }
    if (response.status >= 200 && response.status <= 299) return { ok: true };
    return { ok: false, error: classifyHttpResponse(response, what, secrets) };
  }

  return {
    name: destination.name,
    type: 'webhook',
    notify: destination.notify,
    maxBatchItems: 1,
    maxConcurrency: 4,
    async send(items: readonly DeliveryItem[], signal: AbortSignal): Promise<AttemptResult[]> {
      return sendInTurn(items, signal, what, sendOne);
    },
    render(items: readonly DeliveryItem[]): PreviewFile[] {
      const names = previewFileNames(destination.name, items, 'json');
      return items.map((item, index) => ({ name: names[index] ?? '', content: JSON.stringify(encodeWebhookBody(item)) }));
    },
    async close(): Promise<void> {
      // The HTTP client is shared and closed by its owner.
    },
  };
}
