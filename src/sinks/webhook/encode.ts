/**
 * The webhook body for one record: the normalised finding, the original record beside it (not inside it, so
 * receivers that only want the summary can ignore it), the run report's input label and the event metadata.
 * Pure.
 */
import type { Finding } from '../../model/finding.js';
import type { EventMetadata } from '../../pipeline/decode.js';
import type { DeliveryItem } from '../sink.js';

export const WEBHOOK_SOURCE = 'defender-forwarder';

export interface WebhookBody {
  readonly source: typeof WEBHOOK_SOURCE;
  /** The normalised finding without `raw`. */
  readonly finding: Omit<Finding, 'raw'>;
  /** The original Defender record, untouched. */
  readonly raw: unknown;
  /** The run report's input label (`eh:0/42`, `file.json#3`). */
  readonly input: string;
  /** Where the event came from on the Event Hub; absent for files. */
  readonly event?: EventMetadata;
}

export function encodeWebhookBody(item: DeliveryItem): WebhookBody {
  const { raw, ...finding } = item.finding;
  return {
    source: WEBHOOK_SOURCE,
    finding,
    raw,
    input: item.input,
    ...(item.metadata !== undefined ? { event: item.metadata } : {}),
  };
}
