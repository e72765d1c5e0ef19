/**
 * What the standalone consumer's tests share: a rules file that sends everything to Splunk, and valid
 * alerts told apart by their SystemAlertId (which HEC's `fields.id` carries).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const alertTemplate = JSON.parse(readFileSync(path.join(root, 'samples/01-alert-k8s-admission-webhook.json'), 'utf8')) as Record<string, unknown>;

/** Writes `<folder>/routes.yaml`: every record to the `splunk` destination (`${HEC_URL}`, `${HEC_TOKEN}`). */
export function writeSplunkOnlyRules(folder: string): string {
  const file = path.join(folder, 'routes.yaml');
  writeFileSync(
    file,
    ['destinations:', '  splunk: {type: splunk-hec, url: "${HEC_URL}", token: "${HEC_TOKEN}"}', 'routes:', '  - name: all', '    match: {}', '    to: [splunk]', ''].join('\n'),
  );
  return file;
}

/** A valid Defender alert body (Event Hub shape) whose SystemAlertId is `id`. */
export function alertBody(id: string): string {
  return JSON.stringify({ ...alertTemplate, SystemAlertId: id });
}

/** The id HEC's indexed `fields.id` holds for an event. */
export function hecEventId(event: Record<string, unknown>): string {
  return String((event['fields'] as Record<string, unknown> | undefined)?.['id'] ?? '');
}
