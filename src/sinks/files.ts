/**
 * Small pieces every sink shares: preview file names, the abort error a sink rejects with, and sending
 * one record per request in turn.
 */
import { createHash } from 'node:crypto';
import type { Finding } from '../model/finding.js';
import type { AttemptResult, DeliveryItem } from './sink.js';

/**
 * A file name for a record's preview, safe on any file system: the readable tail of its id (an ARM id ends
 * with what is specific: the alert GUID, the CVE) plus a hash of the whole id, so distinct ids never share one.
 */
export function previewFileName(id: string): string {
  const tail = id
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .slice(-80)
    .replace(/^[._-]+|[._-]+$/g, '');
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 12);
  return `${tail || 'record'}-${hash}`;
}

/**
 * `<destination>/<previewFileName(id)>.<extension>` for each item; the same record twice in one call gets
 * `-2`, `-3`... so no preview overwrites another.
 */
export function previewFileNames(destination: string, items: readonly { readonly finding: Pick<Finding, 'id'> }[], extension: string): string[] {
  const used = new Set<string>();
  return items.map((item) => {
    const base = `${destination}/${previewFileName(item.finding.id)}`;
    let name = base;
    for (let n = 2; used.has(name); n += 1) name = `${base}-${n}`;
    used.add(name);
    return `${name}.${extension}`;
  });
}

/**
 * What `send` rejects with when the signal aborts (a sink never turns an abort into a result): the signal's
 * own reason when it is an Error, else an `AbortError`.
 */
export function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(`${what}: aborted`, { cause: reason });
  error.name = 'AbortError';
  return error;
}

/**
 * One request per record, one after the other (Teams, email, webhooks: ordered, and no parallel burst
 * against a receiver that throttles per channel or mailbox), each with its own result; rejects on abort.
 */
export async function sendInTurn(
  items: readonly DeliveryItem[],
  signal: AbortSignal,
  what: string,
  sendOne: (item: DeliveryItem, signal: AbortSignal) => Promise<AttemptResult>,
): Promise<AttemptResult[]> {
  const results: AttemptResult[] = [];
  for (const item of items) {
    if (signal.aborted) throw abortError(signal, what);
    results.push(await sendOne(item, signal));
  }
  return results;
}
