/**
 * Normalise: derives the `Finding` of a classified, validated record from its case-folded view. The mapping
 * follows defender-export.md ("Normalised view the project should derive"); the original record is kept in
 * `raw`, untouched.
 */
import { parseSeverity, severityRank, withRecord, withRecordText, type Draft, type Finding, type Kind, type Severity } from '../model/finding.js';
import type { AlertShape } from './classify.js';

type View = Readonly<Record<string, unknown>>;

/**
 * Builds the Finding for a record. `view` is the case-folded record, `raw` the original. When `text` is given
 * (the record's JSON text, as it arrived alone on one line), the Finding keeps that text instead of `raw`,
 * and parses it again only if `raw` is asked for (see {@link withRecordText}).
 */
export function normaliseRecord(kind: Kind, shape: AlertShape | 'arm', view: View, raw: unknown, text?: string): Finding {
  const draft = draftOf(kind, shape, view);
  return text === undefined ? withRecord(draft, raw) : withRecordText(draft, text);
}

function draftOf(kind: Kind, shape: AlertShape | 'arm', view: View): Draft {
  if (kind === 'alert') {
    if (shape === 'activityLog') return normaliseActivityLogAlert(view);
    return normaliseFlatAlert(shape === 'rest' ? obj(view['properties']) : view, view);
  }
  switch (kind) {
    case 'recommendation':
      return normaliseRecommendation(view);
    case 'finding':
      return normaliseSubAssessment(view);
    case 'regulatoryCompliance':
      return normaliseCompliance(view);
    case 'secureScore':
    case 'secureScoreControl':
      return normaliseScore(kind, view);
  }
}

// ---------------------------------------------------------------------------------------------- alerts

/**
 * The Event Hub alert is flat and PascalCase; the REST alert keeps the same fields, camelCase, under
 * `properties`. Folded, both read alike: `fields` is the record itself or its `properties`.
 */
function normaliseFlatAlert(fields: View, view: View): Draft {
  const extended = obj(fields['extendedProperties']);
  const resourceId =
    text(fields['azureResourceId']) ||
    text(extended['effectiveAzureResourceId']) ||
    firstResourceIdentifier(fields['resourceIdentifiers']) ||
    text(view['id']);
  return alertFinding({
    id: text(fields['systemAlertId']) || text(view['name']),
    severity: parseSeverity(fields['severity']),
    status: text(fields['status']),
    title: text(fields['alertDisplayName']),
    description: text(fields['description']),
    resourceId,
    subscriptionId:
      text(extended['effectiveSubscriptionId']) || subscriptionOf(resourceId) || subscriptionOf(text(view['id'])) || text(fields['workspaceSubscriptionId']),
    alertType: text(fields['alertType']),
    intent: fields['intent'],
    entities: fields['entities'],
    link: text(fields['alertUri']),
    time: text(fields['startTimeUtc']) || text(fields['timeGenerated']) || text(fields['timeGeneratedUtc']),
    remediation: fields['remediationSteps'],
  });
}

/** The Activity Log route: `{value, localizedValue}` fields, and JSON inside strings under `properties`. */
function normaliseActivityLogAlert(view: View): Draft {
  const p = obj(view['properties']);
  const resourceId = text(view['resourceId']) || text(view['id']);
  return alertFinding({
    id: text(view['operationId']) || text(view['correlationId']) || text(view['eventDataId']),
    severity: parseSeverity(text(p['severity']) || view['level']),
    status: valueText(view['status']),
    title: valueText(view['eventName']) || text(p['alertDisplayName']),
    description: text(view['description']),
    resourceId,
    subscriptionId: text(view['subscriptionId']) || subscriptionOf(resourceId),
    resourceGroup: text(view['resourceGroupName']),
    alertType: text(p['alertType']),
    intent: p['intent'],
    entities: undefined,
    link: '',
    time: text(view['eventTimestamp']) || text(view['submissionTimestamp']),
    remediation: p['remediationSteps'],
  });
}

interface AlertParts {
  id: string;
  severity: Severity;
  status: string;
  title: string;
  description: string;
  resourceId: string;
  subscriptionId: string;
  resourceGroup?: string;
  alertType: string;
  intent: unknown;
  entities: unknown;
  link: string;
  time: string;
  remediation: unknown;
}

function alertFinding(parts: AlertParts): Draft {
  const kubernetes = kubernetesEntities(parts.entities);
  const cluster = kubernetes.cluster || clusterOf(parts.resourceId);
  const finding: Mutable<Draft> = {
    kind: 'alert',
    id: parts.id,
    severity: parts.severity,
    status: parts.status,
    title: parts.title,
    description: parts.description,
    resourceId: parts.resourceId,
    subscriptionId: parts.subscriptionId,
    resourceGroup: parts.resourceGroup || resourceGroupOf(parts.resourceId),
    tactics: splitTactics(parts.intent),
    cves: [],
    time: parts.time,
    snapshot: false,
    remediation: textList(parts.remediation),
  };
  if (parts.alertType) finding.alertType = parts.alertType;
  if (cluster) finding.cluster = cluster;
  if (kubernetes.namespace) finding.namespace = kubernetes.namespace;
  const link = httpsLink(parts.link);
  if (link) finding.link = link;
  return finding;
}

// ------------------------------------------------------------------------------------ assessments

function normaliseRecommendation(view: View): Draft {
  const p = obj(view['properties']);
  const status = obj(p['status']);
  const metadata = obj(p['metadata']);
  const details = obj(p['resourceDetails']);
  const additional = obj(p['additionalData']);
  const resourceId = text(details['id']) || text(details['azureResourceId']) || text(details['nativeResourceId']) || resourceOfAssessment(text(view['id']));
  const enrichment = envelopeOf(view, 'assessmentEventDataEnrichment');
  const cvss = maxNumber([additional['maxCvss30Score'], additional['maxCvssScore']]);
  const finding: Mutable<Draft> = {
    kind: 'recommendation',
    id: text(view['id']),
    severity: parseSeverity(metadata['severity']),
    status: text(status['code']),
    title: text(p['displayName']) || text(metadata['displayName']),
    description: text(metadata['description']) || text(status['description']),
    resourceId,
    subscriptionId: subscriptionOf(resourceId) || subscriptionOf(text(view['id'])),
    resourceGroup: resourceGroupOf(resourceId) || text(view['resourceGroup']),
    tactics: [],
    cves: collectCves([additional['cves'], additional['cvEs'], additional['cVEs']]),
    time: text(status['statusChangeDate']) || text(status['firstEvaluationDate']) || text(view['timeGenerated']),
    snapshot: enrichment.snapshot,
    remediation: textList(metadata['remediationDescription']),
  };
  const cluster = clusterOf(resourceId);
  if (cluster) finding.cluster = cluster;
  if (cvss !== undefined) finding.cvss = cvss;
  const link = httpsLink(text(obj(p['links'])['azurePortal']));
  if (link) finding.link = link;
  if (enrichment.action) finding.action = enrichment.action;
  return finding;
}

function normaliseSubAssessment(view: View): Draft {
  const p = obj(view['properties']);
  const status = obj(p['status']);
  const details = obj(p['resourceDetails']);
  const additional = obj(p['additionalData']);
  const vulnerability = obj(additional['vulnerabilityDetails']);
  // status.severity knows Low|Medium|High only; the vulnerability's own severity may say Critical.
  const severities = [parseSeverity(status['severity']), parseSeverity(vulnerability['severity'])];
  const severity = severities.reduce((a, b) => (severityRank(b) > severityRank(a) ? b : a));
  const resourceId = text(details['id']) || text(details['azureResourceId']) || resourceOfAssessment(text(view['id']));
  const cveEntries = Array.isArray(additional['cve']) ? additional['cve'] : additional['cve'] ? [additional['cve']] : [];
  const cvss = maxNumber([
    additional['cvssV30Score'],
    additional['cvssV31Score'],
    cvssBase(vulnerability['cvss']),
    cvssBase(additional['cvss']),
    ...cveEntries.map((entry) => obj(entry)['cvssScore']),
  ]);
  const cves = collectCves([p['id'], vulnerability['cveId'], cveEntries.map((entry) => obj(entry)['title']), text(p['displayName'])]);
  const kubernetes = obj(additional['kubernetesDetails'] ?? additional['clusterDetails']);
  const enrichment = envelopeOf(view, 'subAssessmentEventDataEnrichment');
  const armId = text(view['id']);
  const finding: Mutable<Draft> = {
    kind: 'finding',
    id: armId || text(p['id']),
    severity,
    status: text(status['code']),
    title: text(p['displayName']),
    description: text(p['description']),
    resourceId,
    subscriptionId: subscriptionOf(resourceId) || subscriptionOf(armId) || text(view['subscriptionId']),
    resourceGroup: resourceGroupOf(resourceId) || resourceGroupOf(armId) || text(view['resourceGroup']),
    tactics: [],
    cves,
    time: text(p['timeGenerated']) || text(view['timeGenerated']),
    snapshot: enrichment.snapshot,
    remediation: textList(p['remediation']),
  };
  const cluster = text(kubernetes['clusterName']) || text(kubernetes['cluster']) || clusterOf(resourceId);
  if (cluster) finding.cluster = cluster;
  const namespace = text(kubernetes['namespace']);
  if (namespace) finding.namespace = namespace;
  if (cvss !== undefined) finding.cvss = cvss;
  if (enrichment.action) finding.action = enrichment.action;
  return finding;
}

function normaliseCompliance(view: View): Draft {
  const p = obj(view['properties']);
  const id = text(view['id']);
  const enrichment = envelopeOf(view, 'securityEventDataEnrichment');
  const finding: Mutable<Draft> = {
    kind: 'regulatoryCompliance',
    id,
    severity: 'Unknown',
    status: text(p['state']),
    title: text(p['description']) || text(p['displayName']),
    description: complianceDescription(id),
    resourceId: id,
    subscriptionId: subscriptionOf(id),
    resourceGroup: resourceGroupOf(id),
    tactics: [],
    cves: [],
    time: text(view['timeGenerated']),
    snapshot: enrichment.snapshot,
    remediation: [],
  };
  const link = httpsLink(text(p['assessmentDetailsLink']));
  if (link) finding.link = link;
  if (enrichment.action) finding.action = enrichment.action;
  return finding;
}

function normaliseScore(kind: 'secureScore' | 'secureScoreControl', view: View): Draft {
  const p = obj(view['properties']);
  const id = text(view['id']);
  const score = obj(p['score']);
  const enrichment = envelopeOf(view, 'securityEventDataEnrichment');
  const percentage = typeof score['percentage'] === 'number' ? ` (${Math.round(score['percentage'] * 1000) / 10}%)` : '';
  const finding: Mutable<Draft> = {
    kind,
    id,
    severity: 'Unknown',
    status: '',
    title: text(p['displayName']) || text(view['name']),
    description: score['current'] !== undefined ? `score ${String(score['current'])} of ${String(score['max'])}${percentage}` : '',
    resourceId: id,
    subscriptionId: subscriptionOf(id),
    resourceGroup: resourceGroupOf(id),
    tactics: [],
    cves: [],
    time: text(view['timeGenerated']),
    snapshot: enrichment.snapshot,
    remediation: [],
  };
  if (enrichment.action) finding.action = enrichment.action;
  return finding;
}

// ---------------------------------------------------------------------------------------- helpers

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const EMPTY: View = Object.freeze({});

function obj(value: unknown): View {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as View) : EMPTY;
}

function text(value: unknown): string {
  if (typeof value === 'string') return isTrimmed(value) ? value : value.trim();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return '';
}

/** True when `trim()` would give `value` back as it is: it starts and ends with printable ASCII (or is empty). */
function isTrimmed(value: string): boolean {
  if (value.length === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  return first > 0x20 && first < 0x7f && last > 0x20 && last < 0x7f;
}

function valueText(value: unknown): string {
  return typeof value === 'string' ? value.trim() : text(obj(value)['value']);
}

/** Export envelopes: `{action, isSnapshot}` under the kind's own key or `securityEventDataEnrichment`. */
function envelopeOf(view: View, ownKey: string): { snapshot: boolean; action: string } {
  const own = obj(view[ownKey]);
  const security = obj(view['securityEventDataEnrichment']);
  const snapshot = own['isSnapshot'] === true || security['isSnapshot'] === true || own['isSnapshot'] === 'true' || security['isSnapshot'] === 'true';
  return { snapshot, action: text(own['action']) || text(security['action']) };
}

const SUBSCRIPTION = /\/subscriptions\/([^/]+)/i;
const RESOURCE_GROUP = /\/resourcegroups\/([^/]+)/i;
const CLUSTER = /\/providers\/microsoft\.(?:containerservice\/managedclusters|kubernetes\/connectedclusters)\/([^/]+)/i;

function subscriptionOf(armId: string): string {
  return SUBSCRIPTION.exec(armId)?.[1] ?? '';
}

function resourceGroupOf(armId: string): string {
  return RESOURCE_GROUP.exec(armId)?.[1] ?? '';
}

function clusterOf(armId: string): string {
  return CLUSTER.exec(armId)?.[1] ?? '';
}

/** An assessment's id is `<resource id>/providers/Microsoft.Security/assessments/<key>[/subAssessments/..]`. */
function resourceOfAssessment(armId: string): string {
  const at = armId.toLowerCase().lastIndexOf('/providers/microsoft.security/assessments/');
  return at > 0 ? armId.slice(0, at) : armId;
}

function firstResourceIdentifier(identifiers: unknown): string {
  if (!Array.isArray(identifiers)) return '';
  for (const identifier of identifiers) {
    const id = text(obj(identifier)['azureResourceId']);
    if (id) return id;
  }
  return '';
}

/** `Intent` is "Persistence, CredentialAccess", a JSON array in a string, or (rarely) an array. */
export function splitTactics(intent: unknown): string[] {
  const tokens = textList(intent).flatMap((item) => item.split(/[,;|]/));
  const out: string[] = [];
  for (const token of tokens) {
    const tactic = token.trim();
    if (tactic && !out.some((seen) => seen.toLowerCase() === tactic.toLowerCase())) out.push(tactic);
  }
  return out;
}

/** A list of texts from an array, a JSON array inside a string, or a single string. */
function textList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(text).filter((item) => item !== '');
  if (typeof value !== 'string') return [];
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed)) return parsed.map(text).filter((item) => item !== '');
    } catch {
      // Not JSON after all: keep it as one text.
    }
  }
  return trimmed ? [trimmed] : [];
}

const CVE = /CVE-\d{4}-\d{4,}/gi;

function collectCves(sources: readonly unknown[]): string[] {
  const out = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(CVE)) out.add(match[0].toUpperCase());
    } else if (Array.isArray(value)) {
      value.forEach(visit);
    }
  };
  sources.forEach(visit);
  return [...out];
}

/** `cvss: {"2.0": {base}, "3.0": {base}}`: the highest 3.x base, else the 2.0 one. */
function cvssBase(cvss: unknown): number | undefined {
  const versions = obj(cvss);
  const v3 = maxNumber([obj(versions['3.1'])['base'], obj(versions['3.0'])['base']]);
  return v3 ?? maxNumber([obj(versions['2.0'])['base']]);
}

function maxNumber(values: readonly unknown[]): number | undefined {
  let best: number | undefined;
  for (const value of values) {
    const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
    if (Number.isFinite(number) && number >= 0 && number <= 10 && (best === undefined || number > best)) best = number;
  }
  return best;
}

/** Portal links come without a scheme (`portal.azure.com/#blade/...`) or with http: always answer https. */
function httpsLink(link: string): string {
  if (!link) return '';
  if (/^https:\/\//i.test(link)) return link;
  if (/^http:\/\//i.test(link)) return `https://${link.slice(7)}`;
  if (/^[a-z0-9.-]+\.[a-z]{2,}(\/|$)/i.test(link)) return `https://${link}`;
  return '';
}

/**
 * Alert entities: find the Kubernetes cluster and namespace names, following nested entities (four levels at
 * most: a parsed record is a tree, so the bound is also all that is needed against walking forever).
 */
function kubernetesEntities(entities: unknown): { cluster: string; namespace: string } {
  const found = { cluster: '', namespace: '' };
  if (!Array.isArray(entities)) return found;
  // Entities are objects; arrays inside them (lists of containers, addresses) are not looked into.
  const visit = (entity: unknown, depth: number): void => {
    if (depth > 4 || entity === null || typeof entity !== 'object' || Array.isArray(entity)) return;
    const e = entity as View;
    const type = e['type'];
    // Only `K8s-cluster` (11 characters) and `K8s-namespace` (13) matter: other types are not lower-cased.
    if (typeof type === 'string' && (type.length === 11 || type.length === 13 || type.trim() !== type)) {
      const kind = type.trim().toLowerCase();
      if (kind === 'k8s-cluster' && !found.cluster) {
        found.cluster = text(e['name']) || text(obj(e['cloudResource'])['resourceName']) || clusterOf(text(e['resourceId']));
      } else if (kind === 'k8s-namespace' && !found.namespace) {
        found.namespace = text(e['name']);
      }
    }
    for (const key in entity) {
      if (!Object.prototype.hasOwnProperty.call(entity, key)) continue;
      const value = (entity as Record<string, unknown>)[key];
      if (value !== null && typeof value === 'object') visit(value, depth + 1);
    }
  };
  for (const entity of entities) visit(entity, 0);
  return found;
}

/** Standard and control names live only in the id path. */
function complianceDescription(id: string): string {
  const standard = /regulatoryComplianceStandards\/([^/]+)/i.exec(id)?.[1];
  const control = /regulatoryComplianceControls\/([^/]+)/i.exec(id)?.[1];
  return standard && control ? `${standard} control ${control}` : '';
}
