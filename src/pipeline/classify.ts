/**
 * Classify: tells which kind of Defender export record a decoded record is, from its (case-folded) body.
 * Continuous export sets no application properties, so the body is all there is.
 */
import type { Kind } from '../model/finding.js';

/** Alerts come in three shapes; the others have one. */
export type AlertShape = 'eventHub' | 'rest' | 'activityLog';

export type Classification =
  | { readonly ok: true; readonly kind: 'alert'; readonly shape: AlertShape }
  | { readonly ok: true; readonly kind: Exclude<Kind, 'alert'>; readonly shape: 'arm' }
  | { readonly ok: false; readonly reason: string };

/** ARM `type` values (lower-cased: Resource Graph lower-cases them, the REST API does not). */
const KIND_BY_TYPE: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  ['microsoft.security/locations/alerts', 'alert'],
  ['microsoft.security/assessments', 'recommendation'],
  ['microsoft.security/assessments/subassessments', 'finding'],
  ['microsoft.security/securescores', 'secureScore'],
  ['microsoft.security/securescores/securescorecontrols', 'secureScoreControl'],
  [
    'microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols/regulatorycomplianceassessments',
    'regulatoryCompliance',
  ],
]);

const ACTIVITY_LOG_ALERT = /^microsoft\.security\/locations\/alerts(\/|$)/i;

/** Classifies a case-folded record view (see `decodeBody`). */
export function classifyRecord(view: Readonly<Record<string, unknown>>): Classification {
  const type = view['type'];
  if (type === undefined || type === null) {
    if (isPresent(view['systemAlertId']) && isPresent(view['alertType'])) {
      return { ok: true, kind: 'alert', shape: 'eventHub' };
    }
    // The Activity Log route (not continuous export, but users forward it to the same hub).
    const operation = valueOf(view['operationName']);
    const resourceType = valueOf(view['resourceType']);
    if (
      isPresent(view['eventDataId']) &&
      ((operation !== undefined && ACTIVITY_LOG_ALERT.test(operation)) ||
        (resourceType !== undefined && ACTIVITY_LOG_ALERT.test(resourceType)))
    ) {
      return { ok: true, kind: 'alert', shape: 'activityLog' };
    }
    const keys = Object.keys(view).slice(0, 6).join(', ');
    return {
      ok: false,
      reason: `unknown record: no "type" and no SystemAlertId/AlertType (keys: ${keys || 'none'})`,
    };
  }
  if (typeof type !== 'string') {
    return { ok: false, reason: `unknown record: "type" is a ${Array.isArray(type) ? 'array' : typeof type}, expected a string` };
  }
  const kind = KIND_BY_TYPE.get(type.trim().toLowerCase());
  if (kind === undefined) {
    return { ok: false, reason: `unknown record type "${truncate(type, 200)}"` };
  }
  if (kind === 'alert') return { ok: true, kind, shape: 'rest' };
  return { ok: true, kind, shape: 'arm' };
}

function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/** Activity Log fields are `{value, localizedValue}` objects. */
function valueOf(field: unknown): string | undefined {
  if (typeof field === 'string') return field;
  if (field !== null && typeof field === 'object') {
    const value = (field as Record<string, unknown>)['value'];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
