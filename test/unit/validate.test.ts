import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/packageRoot.js';
import { classifyRecord } from '../../src/pipeline/classify.js';
import { decodeBody } from '../../src/pipeline/decode.js';
import { validateRecord } from '../../src/pipeline/validate.js';

const FIXTURES = join(packageRoot(), 'test', 'fixtures', 'defender');
const SCHEMAS = join(packageRoot(), 'schemas', 'defender');
const INVALID_JSON_SAMPLE = 'eh_alert_legacy_SUSPECT_SVCHOST__asc-repo.INVALID-JSON.txt';

/** What each fixture classifies as; a new fixture must be added here, so it is checked on purpose. */
const FIXTURE_KINDS: Readonly<Record<string, string>> = {
  'activitylog_alert_K8S_cluster_admin_role_binding__msdocs.json': 'alert/activityLog',
  'api_alert_SIMULATED_APPS_WpThemeInjection__demisto.json': 'alert/rest',
  'api_alert_VM_EICAR_isIncident__rest-api-specs.json': 'alert/rest',
  'api_secure_score_ascScore__rest-api-specs.json': 'secureScore/arm',
  'api_subassessment_ContainerRegistryVulnerability_qualys_legacy__rest-api-specs.json': 'finding/arm',
  'api_subassessment_SqlServerVulnerability__rest-api-specs.json': 'finding/arm',
  'arg_subassessment_AwsContainerRegistryVulnerability_mdvm__msdocs.json': 'finding/arm',
  'arg_subassessment_AzureContainerRegistryVulnerability_mdvm__msdocs.json': 'finding/arm',
  'eh_alert_K8S_AdmissionController_informational__sumologic.json': 'alert/eventHub',
  'eh_assessment_insert_NotApplicable__sumologic.json': 'recommendation/arm',
  'eh_assessment_legacy_AssessmentEventDataEnrichment__asc-repo.json': 'recommendation/arm',
  'eh_regulatory_compliance_Failed__sumologic.json': 'regulatoryCompliance/arm',
};

const EH_ALERT = 'eh_alert_K8S_AdmissionController_informational__sumologic.json';
const REST_ALERT = 'api_alert_SIMULATED_APPS_WpThemeInjection__demisto.json';
const ACTIVITY_LOG_ALERT = 'activitylog_alert_K8S_cluster_admin_role_binding__msdocs.json';
const RECOMMENDATION = 'eh_assessment_insert_NotApplicable__sumologic.json';
const LEGACY_RECOMMENDATION = 'eh_assessment_legacy_AssessmentEventDataEnrichment__asc-repo.json';
const IMAGE_FINDING = 'arg_subassessment_AwsContainerRegistryVulnerability_mdvm__msdocs.json';
const QUALYS_FINDING = 'api_subassessment_ContainerRegistryVulnerability_qualys_legacy__rest-api-specs.json';
const SECURE_SCORE = 'api_secure_score_ascScore__rest-api-specs.json';
const COMPLIANCE = 'eh_regulatory_compliance_Failed__sumologic.json';

/** A secure score control as documented (no public sample): ARM resource plus the export envelope. */
const CONTROL: Readonly<Record<string, unknown>> = {
  securityEventDataEnrichment: { action: 'Insert', apiVersion: '2020-01-01', isSnapshot: true },
  id: '/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Security/secureScores/ascScore/secureScoreControls/sce-enable-mfa',
  name: 'sce-enable-mfa',
  type: 'Microsoft.Security/secureScores/secureScoreControls',
  properties: {
    displayName: 'Enable MFA',
    healthyResourceCount: 2,
    unhealthyResourceCount: 1,
    notApplicableResourceCount: 0,
    score: { max: 10, current: 6.67, percentage: 0.6667 },
    weight: 3,
  },
};

type Json = Record<string, unknown>;
const REMOVE = Symbol('remove');

function sample(name: string): Json {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Json;
}

/** A deep copy of `record` with the value at `path` replaced (or removed). */
function edit(record: Readonly<Json>, path: readonly (string | number)[], value: unknown): Json {
  const copy = structuredClone(record) as Json;
  let node: unknown = copy;
  for (const key of path.slice(0, -1)) {
    node = (node as Record<string | number, unknown>)[key];
    if (node === null || typeof node !== 'object') throw new Error(`no object at ${path.join('.')}`);
  }
  const container = node as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (value === REMOVE) delete container[last];
  else container[last] = value;
  return copy;
}

/** Decodes a record the way the pipeline does and returns its case-folded view. */
function viewOf(record: unknown): Json {
  const decoded = decodeBody({ input: 'test', body: JSON.stringify(record) });
  const first = decoded[0];
  if (decoded.length !== 1 || first === undefined || !first.ok) throw new Error(`did not decode: ${JSON.stringify(decoded)}`);
  return first.view;
}

/** Decode, classify, validate: what the pipeline does with one body. */
function validate(record: unknown): ReturnType<typeof validateRecord> {
  const view = viewOf(record);
  const classification = classifyRecord(view);
  if (!classification.ok) throw new Error(`did not classify: ${classification.reason}`);
  return validateRecord(classification.kind, classification.shape, view);
}

function error(path: string, expected: string, got: string): { path: string; message: string; expected: string; got: string } {
  return { path, message: `${path}: expected ${expected}, got ${got}`, expected, got };
}

describe('validate: the real samples', () => {
  const files = readdirSync(FIXTURES).sort();

  it('fixtures are the shared samples with their attribution, each one listed here', () => {
    expect(files).toContain('SOURCES.md');
    expect(files).toContain(INVALID_JSON_SAMPLE);
    const sources = readFileSync(join(FIXTURES, 'SOURCES.md'), 'utf8');
    for (const file of files.filter((name) => name !== 'SOURCES.md')) expect(sources).toContain(file);
    expect(files.filter((name) => name.endsWith('.json')).sort()).toEqual(Object.keys(FIXTURE_KINDS).sort());
  });

  it.each(Object.entries(FIXTURE_KINDS))('%s classifies as %s and validates without errors', (file, kindAndShape) => {
    const decoded = decodeBody({ input: file, body: readFileSync(join(FIXTURES, file), 'utf8') });
    expect(decoded).toHaveLength(1);
    const record = decoded[0];
    if (record === undefined || !record.ok) throw new Error(`${file} did not decode`);
    const classification = classifyRecord(record.view);
    if (!classification.ok) throw new Error(`${file}: ${classification.reason}`);
    expect(`${classification.kind}/${classification.shape}`).toBe(kindAndShape);
    expect(validateRecord(classification.kind, classification.shape, record.view)).toEqual([]);
  });

  it('the invalid-JSON sample is a decode rejection, never reaches validation', () => {
    const decoded = decodeBody({ input: INVALID_JSON_SAMPLE, body: readFileSync(join(FIXTURES, INVALID_JSON_SAMPLE), 'utf8') });
    expect(decoded.map((d) => (d.ok ? 'ok' : d.code))).toEqual(['not-json']);
  });

  it('a documented secure score control validates', () => {
    expect(validate(CONTROL)).toEqual([]);
  });
});

describe('validate: alerts, Event Hub shape', () => {
  const alert = sample(EH_ALERT);

  it('a missing or empty SystemAlertId is reported at the id', () => {
    expect(validateRecord('alert', 'eventHub', viewOf(edit(alert, ['SystemAlertId'], REMOVE)))).toEqual([
      error('systemAlertId', 'required property "systemAlertId"', 'missing'),
    ]);
    expect(validateRecord('alert', 'eventHub', viewOf(edit(alert, ['SystemAlertId'], '')))).toEqual([
      error('systemAlertId', 'non-empty string', 'string ""'),
    ]);
  });

  it('a missing AlertType is an error', () => {
    expect(validateRecord('alert', 'eventHub', viewOf(edit(alert, ['AlertType'], REMOVE)))).toEqual([
      error('alertType', 'required property "alertType"', 'missing'),
    ]);
  });

  it('a numeric severity is an error', () => {
    expect(validate(edit(alert, ['Severity'], 3))).toEqual([error('severity', 'string or null', 'number 3')]);
  });

  it('tolerates null and empty values, and severities, statuses and tactics outside the documented lists', () => {
    for (const [key, value] of [
      ['Severity', null],
      ['Severity', ''],
      ['Severity', 'Critical'],
      ['Severity', 'Unknown'],
      ['Status', 'Dismissed'],
      ['Status', null],
      ['Intent', 'Persistence, SomeFutureTactic'],
      ['AlertDisplayName', null],
      ['Entities', null],
      ['StartTimeUtc', '2025-08-21T00:00:00'],
    ] as const) {
      expect(validate(edit(alert, [key], value)), `${key}=${JSON.stringify(value)}`).toEqual([]);
    }
    expect(validate(edit(alert, ['BrandNewField'], { anything: [1, 2] }))).toEqual([]);
  });

  it('reports every wrong field once, in schema order', () => {
    let broken = edit(alert, ['Severity'], 3);
    broken = edit(broken, ['Status'], ['New']);
    broken = edit(broken, ['AlertDisplayName'], { value: 'x', localizedValue: 'x', more: 1, andMore: 2 });
    expect(validate(broken)).toEqual([
      error('severity', 'string or null', 'number 3'),
      error('status', 'string or null', 'array of 1 item'),
      error('alertDisplayName', 'string or null', 'object {value, localizedValue, more, …}'),
    ]);
  });

  it('points into arrays with an index', () => {
    const entities = [...(alert['Entities'] as unknown[]), { $id: '9', Type: 42 }];
    expect(validate(edit(alert, ['Entities'], entities))).toEqual([error('entities[2].type', 'string or null', 'number 42')]);
    expect(validate(edit(alert, ['RemediationSteps'], 'do this'))).toEqual([error('remediationSteps', 'array or null', 'string "do this"')]);
  });

  it('quotes long strings truncated', () => {
    expect(validate(edit(alert, ['IsIncident'], 'x'.repeat(100)))).toEqual([
      error('isIncident', 'boolean or null', `string "${'x'.repeat(40)}…"`),
    ]);
  });

  it('caps a wall of repeated errors and counts the rest', () => {
    const entities = Array.from({ length: 120 }, () => ({ Type: 1 }));
    const errors = validate(edit(alert, ['Entities'], entities));
    expect(errors).toHaveLength(51);
    expect(errors[0]).toEqual(error('entities[0].type', 'string or null', 'number 1'));
    expect(errors[49]).toEqual(error('entities[49].type', 'string or null', 'number 1'));
    expect(errors[50]).toEqual({ path: '(root)', message: '70 more schema errors not listed', expected: 'at most 50 reported errors', got: '70 more' });
  });
});

describe('validate: alerts, REST and Activity Log shapes', () => {
  const rest = sample(REST_ALERT);
  const activityLog = sample(ACTIVITY_LOG_ALERT);

  it('REST: `properties` must be an object and carry the id and alert type', () => {
    expect(validate(edit(rest, ['properties'], 'oops'))).toEqual([error('properties', 'object', 'string "oops"')]);
    expect(validate(edit(rest, ['properties'], REMOVE))).toEqual([error('properties', 'required property "properties"', 'missing')]);
    let broken = edit(rest, ['properties', 'systemAlertId'], REMOVE);
    broken = edit(broken, ['properties', 'alertType'], REMOVE);
    expect(validate(broken)).toEqual([
      error('properties.systemAlertId', 'required property "systemAlertId"', 'missing'),
      error('properties.alertType', 'required property "alertType"', 'missing'),
    ]);
  });

  it('REST: severity and status live under properties', () => {
    let broken = edit(rest, ['properties', 'severity'], 3);
    broken = edit(broken, ['properties', 'status'], false);
    expect(validate(broken)).toEqual([
      error('properties.severity', 'string or null', 'number 3'),
      error('properties.status', 'string or null', 'boolean false'),
    ]);
  });

  it('an alert with shape "arm" is checked as the REST shape', () => {
    const view = viewOf(edit(rest, ['properties', 'severity'], 3));
    expect(validateRecord('alert', 'arm', view)).toEqual(validateRecord('alert', 'rest', view));
    expect(validateRecord('alert', 'arm', view)).toHaveLength(1);
  });

  it('Activity Log: the severity is properties.severity, and the id eventDataId', () => {
    expect(validate(edit(activityLog, ['properties', 'severity'], { value: 'High', localizedValue: 'High' }))).toEqual([
      error('properties.severity', 'string or null', 'object {value, localizedValue}'),
    ]);
    expect(validateRecord('alert', 'activityLog', viewOf(edit(activityLog, ['eventDataId'], REMOVE)))).toEqual([
      error('eventDataId', 'required property "eventDataId"', 'missing'),
    ]);
    expect(validate(edit(activityLog, ['status'], 7))).toEqual([error('status', 'object or string or null', 'number 7')]);
  });

  it('Activity Log: plain-string fields of the diagnostic-settings route are accepted', () => {
    expect(validate(edit(activityLog, ['status'], 'Active'))).toEqual([]);
  });
});

describe('validate: recommendations', () => {
  const recommendation = sample(RECOMMENDATION);

  it('status.code as an array is an error at its path', () => {
    expect(validate(edit(recommendation, ['properties', 'status', 'code'], ['Unhealthy']))).toEqual([
      error('properties.status.code', 'string or null', 'array of 1 item'),
    ]);
  });

  it('the id is required', () => {
    expect(validate(edit(recommendation, ['id'], REMOVE))).toEqual([error('id', 'required property "id"', 'missing')]);
    expect(validate(edit(recommendation, ['id'], 42))).toEqual([error('id', 'string', 'number 42')]);
  });

  it('the export action is text (kept open: a new action must not be quarantined), isSnapshot a boolean', () => {
    let broken = edit(recommendation, ['assessmentEventDataEnrichment', 'action'], 7);
    broken = edit(broken, ['securityEventDataEnrichment', 'isSnapshot'], 'false');
    expect(validate(broken)).toEqual([
      error('assessmentEventDataEnrichment.action', 'string or null', 'number 7'),
      error('securityEventDataEnrichment.isSnapshot', 'boolean', 'string "false"'),
    ]);
    expect(validate(edit(recommendation, ['assessmentEventDataEnrichment', 'action'], 'Upsert'))).toEqual([]);
    expect(validate(edit(recommendation, ['assessmentEventDataEnrichment', 'action'], 'Delete'))).toEqual([]);
  });

  it('the 2019 PascalCase envelope is checked through the folded view', () => {
    const legacy = sample(LEGACY_RECOMMENDATION);
    expect(validate(edit(legacy, ['AssessmentEventDataEnrichment', 'Action'], 3))).toEqual([
      error('assessmentEventDataEnrichment.action', 'string or null', 'number 3'),
    ]);
  });

  it('metadata.severity must be text; properties an object', () => {
    expect(validate(edit(recommendation, ['properties', 'metadata', 'severity'], 2))).toEqual([
      error('properties.metadata.severity', 'string or null', 'number 2'),
    ]);
    expect(validate(edit(recommendation, ['properties'], []))).toEqual([error('properties', 'object', 'empty array')]);
  });

  it('free-form additionalData with strings holding numbers and JSON is fine', () => {
    const data = { CvesCount: '2', CVEs: '["CVE-2024-0001","CVE-2024-0002"]', maxCvss30Score: '9.8' };
    expect(validate(edit(recommendation, ['properties', 'additionalData'], data))).toEqual([]);
  });
});

/** The PascalCase, Newtonsoft-annotated form of a camelCase record: `$type` on every object, arrays wrapped. */
function toNewtonsoft(value: unknown, type = 'Microsoft.Security.SubAssessment'): unknown {
  if (Array.isArray(value)) return { $type: 'System.Collections.Generic.List`1[[System.Object]]', $values: value.map((item) => toNewtonsoft(item)) };
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = { $type: type };
  for (const [key, inner] of Object.entries(value)) {
    out[key.charAt(0).toUpperCase() + key.slice(1)] = toNewtonsoft(inner, `Microsoft.Security.${key}`);
  }
  return out;
}

describe('validate: findings', () => {
  const finding = sample(IMAGE_FINDING);
  const qualys = sample(QUALYS_FINDING);

  it('a CVSS score is a number or short text; text that is not a number is tolerated (normalise ignores it)', () => {
    for (const score of [7.8, '7.8', ' 10 ', null, '', 'high']) {
      expect(validate(edit(finding, ['properties', 'additionalData', 'cvssV30Score'], score)), JSON.stringify(score)).toEqual([]);
    }
    expect(validate(edit(finding, ['properties', 'additionalData', 'cvssV30Score'], true))).toEqual([
      error('properties.additionalData.cvssV30Score', 'number or string or null', 'boolean true'),
    ]);
  });

  // A backtracking pattern took minutes on this value (the test timeout catches a return of it).
  it('a huge CVSS text is refused by its length, without a regular expression over it', () => {
    const huge = `${' '.repeat(1_000_000)}x`;
    const errors = validate(edit(finding, ['properties', 'additionalData', 'cvssV30Score'], huge));
    expect(errors).toHaveLength(1);
    expect(errors[0]?.path).toBe('properties.additionalData.cvssV30Score');
    expect(errors[0]?.expected).toMatch(/64/);
  });

  it('neighbouring errors stay apart', () => {
    let broken = edit(finding, ['properties', 'additionalData', 'assessedResourceType'], 5);
    broken = edit(broken, ['properties', 'additionalData', 'cvssV30Score'], false);
    broken = edit(broken, ['properties', 'additionalData', 'vulnerabilityDetails', 'severity'], 9);
    expect(validate(broken)).toEqual([
      error('properties.additionalData.assessedResourceType', 'string or null', 'number 5'),
      error('properties.additionalData.cvssV30Score', 'number or string or null', 'boolean false'),
      error('properties.additionalData.vulnerabilityDetails.severity', 'string or null', 'number 9'),
    ]);
  });

  it('cvss keys that are not identifiers are bracketed', () => {
    expect(validate(edit(finding, ['properties', 'additionalData', 'vulnerabilityDetails', 'cvss', '3.0', 'base'], [7]))).toEqual([
      error('properties.additionalData.vulnerabilityDetails.cvss["3.0"].base', 'number or string or null', 'array of 1 item'),
    ]);
    expect(validate(edit(finding, ['properties', 'additionalData', 'vulnerabilityDetails', 'cvss', '2.0'], 5))).toEqual([
      error('properties.additionalData.vulnerabilityDetails.cvss["2.0"]', 'object or null', 'number 5'),
    ]);
  });

  it('status.severity must be text, and may be Unknown or Critical', () => {
    expect(validate(edit(finding, ['properties', 'status', 'severity'], 7))).toEqual([
      error('properties.status.severity', 'string or null', 'number 7'),
    ]);
    expect(validate(edit(finding, ['properties', 'status', 'severity'], 'Unknown'))).toEqual([]);
    expect(validate(edit(finding, ['properties', 'additionalData', 'vulnerabilityDetails', 'severity'], 'Critical'))).toEqual([]);
  });

  it('cve may be a list or an object, nothing else', () => {
    expect(validate(edit(qualys, ['properties', 'additionalData', 'cve'], { title: 'CVE-2019-12345', link: 'http://contoso.com' }))).toEqual([]);
    expect(validate(edit(qualys, ['properties', 'additionalData', 'cve'], 'CVE-2019-12345'))).toEqual([
      error('properties.additionalData.cve', 'object or array or null', 'string "CVE-2019-12345"'),
    ]);
    expect(validate(edit(qualys, ['properties', 'additionalData', 'cve', 0, 'cvssScore'], { score: 1 }))).toEqual([
      error('properties.additionalData.cve[0].cvssScore', 'number or string or null', 'object {score}'),
    ]);
  });

  it('the id is required; the sub-assessment envelope action is text', () => {
    expect(validate(edit(finding, ['id'], REMOVE))).toEqual([error('id', 'required property "id"', 'missing')]);
    const enveloped = { subAssessmentEventDataEnrichment: { action: ['Insert'], apiVersion: '2019-01-01-preview', isSnapshot: false }, ...finding };
    expect(validate(enveloped)).toEqual([error('subAssessmentEventDataEnrichment.action', 'string or null', 'array of 1 item')]);
  });

  it('the PascalCase variant with $type annotations validates the same as camelCase', () => {
    const pascal = toNewtonsoft(finding) as Json;
    expect(pascal['Properties']).toBeDefined();
    expect(viewOf(pascal)).toEqual(viewOf(finding));
    expect(validate(pascal)).toEqual([]);

    const broken = edit(finding, ['properties', 'status', 'code'], ['Unhealthy']);
    const brokenPascal = toNewtonsoft(broken);
    const expected = [error('properties.status.code', 'string or null', 'array of 1 item')];
    expect(validate(broken)).toEqual(expected);
    expect(validate(brokenPascal)).toEqual(expected);
  });
});

describe('validate: secure scores, controls, regulatory compliance', () => {
  const score = sample(SECURE_SCORE);
  const compliance = sample(COMPLIANCE);

  it('secure score: id non-empty, numbers numbers, properties an object', () => {
    expect(validate(edit(score, ['id'], ''))).toEqual([error('id', 'non-empty string', 'string ""')]);
    expect(validate(edit(score, ['properties', 'score', 'percentage'], '60%'))).toEqual([
      error('properties.score.percentage', 'number or null', 'string "60%"'),
    ]);
    expect(validate(edit(score, ['properties'], 5))).toEqual([error('properties', 'object', 'number 5')]);
  });

  it('secure score control: counts are integers; the envelope action is text', () => {
    expect(validate(edit(CONTROL, ['properties', 'healthyResourceCount'], 2.5))).toEqual([
      error('properties.healthyResourceCount', 'integer or null', 'number 2.5'),
    ]);
    expect(validate(edit(CONTROL, ['securityEventDataEnrichment', 'action'], true))).toEqual([
      error('securityEventDataEnrichment.action', 'string or null', 'boolean true'),
    ]);
    expect(validate(edit(CONTROL, ['id'], REMOVE))).toEqual([error('id', 'required property "id"', 'missing')]);
  });

  it('regulatory compliance: state and description are text, the id is required', () => {
    let broken = edit(compliance, ['properties', 'state'], 1);
    broken = edit(broken, ['properties', 'description'], { text: 'x' });
    expect(validate(broken)).toEqual([
      error('properties.description', 'string or null', 'object {text}'),
      error('properties.state', 'string or null', 'number 1'),
    ]);
    expect(validate(edit(compliance, ['properties', 'state'], 'Unsupported'))).toEqual([]);
    expect(validate(edit(compliance, ['id'], REMOVE))).toEqual([error('id', 'required property "id"', 'missing')]);
  });
});

describe('validate: the schemas follow the rules in their own descriptions', () => {
  const files = readdirSync(SCHEMAS).filter((name) => name.endsWith('.schema.json'));

  /** Every [keyword path, value] of a schema, depth first. */
  function* walk(node: unknown, path: string): Generator<[string, unknown]> {
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      yield [`${path}/${key}`, value];
      yield* walk(value, `${path}/${key}`);
    }
  }

  it('there is one schema per kind plus the shared definitions', () => {
    expect(files.sort()).toEqual(
      ['alert', 'common', 'finding', 'recommendation', 'regulatoryCompliance', 'secureScore', 'secureScoreControl'].map((n) => `${n}.schema.json`),
    );
  });

  it.each(files)('%s: $id, title, description; no format, no closed objects, enums only on export actions', (file) => {
    const schema = JSON.parse(readFileSync(join(SCHEMAS, file), 'utf8')) as Json;
    expect(schema['$id']).toBe(`https://defender-forwarder.example/schemas/defender/${file}`);
    expect(typeof schema['title']).toBe('string');
    expect(typeof schema['description']).toBe('string');
    for (const [path, value] of walk(schema, '#')) {
      expect(path, 'no format checks').not.toMatch(/\/format$/);
      if (path.endsWith('/additionalProperties')) expect(value, path).not.toBe(false);
      if (path.endsWith('/enum')) expect(path).toMatch(/\/enrichment\w+\/properties\/action\/enum$/);
    }
  });
});

describe('packageRoot', () => {
  it('finds the folder holding package.json from any file below it', () => {
    const root = packageRoot();
    expect((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name).toBe('defender-forwarder');
    expect(packageRoot(pathToFileURL(join(root, 'dist', 'src', 'pipeline', 'validate.js')))).toBe(root);
    expect(packageRoot(join(root, 'src', 'pipeline', 'validate.ts'))).toBe(root);
  });
});

describe("validate: paths in the record's own spelling", () => {
  it('names PascalCase keys as the record writes them, through $values wrappers', () => {
    const record = {
      SystemAlertId: 'a',
      AlertType: 'K8S_X',
      Severity: 5,
      Entities: { $type: 'List', $values: [{ $type: 'E', Type: 7 }] },
    };
    const [decoded] = decodeBody({ input: 'x', body: record });
    if (!decoded?.ok) throw new Error('decode failed');
    const paths = validateRecord('alert', 'eventHub', decoded.view, decoded.record).map((error) => error.path);
    expect(paths).toEqual(['Severity', 'Entities[0].Type']);
    // Without the original, the folded spelling.
    expect(validateRecord('alert', 'eventHub', decoded.view).map((error) => error.path)).toEqual(['severity', 'entities[0].type']);
  });
});
