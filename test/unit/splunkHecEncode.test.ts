import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SEVERITIES, severityRank, type Finding } from '../../src/model/finding.js';
import { inspectEnvelope } from '../../src/pipeline/run.js';
import type { DeliveryItem } from '../../src/sinks/sink.js';
import type { HecBatchOptions, HecEnvelopeOptions } from '../../src/sinks/splunk-hec/config.js';
import {
  VENDOR_PRODUCT,
  armResourceType,
  buildHecEnvelope,
  encodeHecBatches,
  encodeHecEvent,
  hecFields,
  hecFieldsJson,
} from '../../src/sinks/splunk-hec/encode.js';
import { makeAlert, makeRecommendation, makeSecureScore, makeVulnerability, without } from '../support/findings.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');

const DEFAULTS: HecEnvelopeOptions = { source: 'defender-for-cloud', sourcetypes: {} };

function batchOptions(overrides: Partial<HecBatchOptions> = {}): HecBatchOptions {
  return { ...DEFAULTS, gzip: false, batchMaxEvents: 500, batchMaxBytes: 1_000_000, ...overrides };
}

function item(finding: Finding, overrides: Partial<DeliveryItem> = {}): DeliveryItem {
  return { input: 'test.json', finding, ...overrides };
}

function fixtureItem(file: string): DeliveryItem {
  const body = readFileSync(path.join(fixtures, file), 'utf8');
  const [record] = inspectEnvelope({ input: file, body });
  if (!record?.ok) throw new Error(`${file} was rejected`);
  return item(record.finding);
}

function decode(line: string): Record<string, unknown> {
  const value: unknown = JSON.parse(line);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
  return value as Record<string, unknown>;
}

/** Splits a newline-separated batch body into its envelopes. */
function envelopesOf(body: Buffer): Record<string, unknown>[] {
  return body
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map(decode);
}

describe('encodeHecEvent: one envelope per record', () => {
  it('wraps a real Event Hub alert: time from the record, default source and sourcetype, raw untouched', () => {
    const alert = fixtureItem('eh_alert_K8S_AdmissionController_informational__sumologic.json');
    const line = encodeHecEvent(alert, DEFAULTS);
    expect(line).not.toContain('\n');
    const envelope = decode(line);
    // 2024-11-20T08:32:12.950321Z: milliseconds kept, as epoch seconds.
    expect(envelope['time']).toBe(Date.UTC(2024, 10, 20, 8, 32, 12, 950) / 1000);
    expect(envelope['source']).toBe('defender-for-cloud');
    expect(envelope['sourcetype']).toBe('azure:defender:alert');
    expect(Object.keys(envelope)).toEqual(['time', 'source', 'sourcetype', 'event', 'fields']);
    expect(envelope['event']).toEqual(alert.finding.raw);
    // Byte for byte: the event re-serialised is the original record serialised.
    expect(JSON.stringify(envelope['event'])).toBe(JSON.stringify(alert.finding.raw));
    expect(envelope['fields']).toMatchObject({
      kind: 'alert',
      id: '57963b4b-3cb0-dc3a-16ed-f1e216311809',
      severity: 'informational',
      severity_id: '1',
      signature: 'Creation of admission webhook configuration detected',
      signature_id: 'K8S_AdmissionController',
      type: 'alert',
      mitre_tactic: ['Persistence', 'CredentialAccess'],
      cluster: 'k8s--295-aks1-28-otc-dev-v4',
      dest_type: 'Microsoft.ContainerService/managedClusters',
      vendor_product: VENDOR_PRODUCT,
    });
  });

  it('keeps a record that is a string, and odd keys and unicode, exactly', () => {
    const raw = { 'a key with spaces': 'é ✓ \u2028', nested: { list: [1, 2.5, null, true] }, empty: {} };
    const envelope = decode(encodeHecEvent(item(makeAlert({ raw })), DEFAULTS));
    expect(JSON.stringify(envelope['event'])).toBe(JSON.stringify(raw));
    const text = decode(encodeHecEvent(item(makeAlert({ raw: 'plain text record' })), DEFAULTS));
    expect(text['event']).toBe('plain text record');
  });

  it.each([
    ['a zoned time', '2025-08-21T10:00:00Z', Date.UTC(2025, 7, 21, 10) / 1000],
    ['an offset time', '2025-08-21T12:00:00+02:00', Date.UTC(2025, 7, 21, 10) / 1000],
    ['a zoneless time, read as UTC', '2025-08-21T10:00:00', Date.UTC(2025, 7, 21, 10) / 1000],
    ['a zoneless time with 7 fraction digits', '2025-08-21T10:00:00.1234567', Date.UTC(2025, 7, 21, 10, 0, 0, 123) / 1000],
  ])('time in epoch seconds from %s', (_label, time, expected) => {
    const envelope = decode(encodeHecEvent(item(makeAlert({ time })), DEFAULTS));
    expect(envelope['time']).toBe(expected);
  });

  it('falls back to the enqueued time, then leaves time out', () => {
    const enqueued = item(makeAlert({ time: '' }), { metadata: { enqueuedTimeUtc: '2025-03-04T23:59:59.123' } });
    expect(decode(encodeHecEvent(enqueued, DEFAULTS))['time']).toBe(Date.UTC(2025, 2, 4, 23, 59, 59, 123) / 1000);
    const unreadable = item(makeAlert({ time: 'yesterday' }), { metadata: { partitionId: '0' } });
    expect(decode(encodeHecEvent(unreadable, DEFAULTS))).not.toHaveProperty('time');
  });

  it('sourcetype: per kind over the single override over the default', () => {
    const options: HecEnvelopeOptions = {
      source: 'mdc',
      sourcetype: 'defender:any',
      sourcetypes: { alert: 'mscs:azure:security:alert', recommendation: 'mscs:azure:security:recommendation' },
      host: 'forwarder-01',
      index: 'defender',
    };
    const alert = decode(encodeHecEvent(item(makeAlert()), options));
    expect(alert).toMatchObject({ sourcetype: 'mscs:azure:security:alert', source: 'mdc', host: 'forwarder-01', index: 'defender' });
    expect(Object.keys(alert)).toEqual(['time', 'host', 'source', 'sourcetype', 'index', 'event', 'fields']);
    expect(decode(encodeHecEvent(item(makeRecommendation()), options))['sourcetype']).toBe('mscs:azure:security:recommendation');
    expect(decode(encodeHecEvent(item(makeVulnerability()), options))['sourcetype']).toBe('defender:any');
    expect(decode(encodeHecEvent(item(makeSecureScore()), DEFAULTS))['sourcetype']).toBe('azure:defender:secureScore');
    expect(decode(encodeHecEvent(item(makeVulnerability()), { ...DEFAULTS, sourcetypes: { alert: 'x' } }))['sourcetype']).toBe('azure:defender:finding');
  });
});

describe('hecFields: flat, CIM-friendly indexed fields', () => {
  const samples: [string, Finding][] = [
    ['alert', makeAlert({ namespace: 'kube-system', action: 'Insert' })],
    ['vulnerability', makeVulnerability()],
    ['recommendation', makeRecommendation()],
    ['secure score', makeSecureScore()],
    ['alert without optional fields', without(makeAlert(), 'cluster', 'alertType')],
  ];

  it.each(samples)('%s: every value is a non-empty string or a list of non-empty strings', (_label, finding) => {
    const fields = hecFields(finding);
    expect(Object.keys(fields).length).toBeGreaterThan(0);
    for (const [key, value] of Object.entries(fields)) {
      const ok = (typeof value === 'string' && value !== '') || (Array.isArray(value) && value.length > 0 && value.every((entry) => typeof entry === 'string' && entry !== ''));
      expect(ok, `fields.${key}`).toBe(true);
    }
  });

  it('names an alert the CIM way', () => {
    expect(hecFields(makeAlert({ namespace: 'kube-system', action: 'Insert' }))).toEqual({
      kind: 'alert',
      id: '2517538088322968242_b6c1a2f0-7d1e-4b52-9a0b-3f3c7c1d9e01',
      severity: 'medium',
      severity_id: '3',
      signature: 'Role binding to the cluster-admin role detected',
      signature_id: 'K8S_ClusterAdminBinding',
      type: 'alert',
      status: 'New',
      dest: '/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-prod-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu',
      dest_type: 'Microsoft.ContainerService/managedClusters',
      subscription: '00000000-1111-2222-3333-444444444444',
      resource_group: 'rg-prod-aks',
      cluster: 'aks-prod-weu',
      namespace: 'kube-system',
      mitre_tactic: ['Persistence', 'PrivilegeEscalation'],
      action: 'Insert',
      vendor_product: 'Microsoft Defender for Cloud',
    });
  });

  it('carries CVEs and CVSS for a vulnerability, as strings, and calls it an event', () => {
    const fields = hecFields(makeVulnerability({ cves: ['CVE-2024-3094', 'CVE-2024-1'], cvss: 9.8 }));
    expect(fields).toMatchObject({ cve: ['CVE-2024-3094', 'CVE-2024-1'], cvss: '9.8', type: 'event', severity: 'high', severity_id: '4' });
    expect(fields).not.toHaveProperty('signature_id');
    expect(fields).not.toHaveProperty('mitre_tactic');
  });

  it('leaves empty values out (a secure score has no status, group, tactics or CVEs)', () => {
    const fields = hecFields(makeSecureScore());
    for (const key of ['status', 'resource_group', 'mitre_tactic', 'cve', 'cvss', 'cluster', 'signature_id']) {
      expect(fields, key).not.toHaveProperty(key);
    }
    expect(fields).toMatchObject({ severity: 'unknown', severity_id: '0', snapshot: 'true', type: 'event', dest_type: 'Microsoft.Security/secureScores' });
  });

  it('severity_id follows the severity: 0 unknown .. 5 critical', () => {
    const ids = SEVERITIES.map((severity) => [hecFields(makeAlert({ severity }))['severity'], hecFields(makeAlert({ severity }))['severity_id']]);
    expect(ids).toEqual([
      ['unknown', '0'],
      ['informational', '1'],
      ['low', '2'],
      ['medium', '3'],
      ['high', '4'],
      ['critical', '5'],
    ]);
  });

  it('signature falls back to the alert type when there is no title', () => {
    expect(hecFields(makeAlert({ title: '' }))['signature']).toBe('K8S_ClusterAdminBinding');
  });

  it.each([
    ['/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1', 'Microsoft.Compute/virtualMachines'],
    ['/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default', 'Microsoft.Network/virtualNetworks/subnets'],
    ['/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/providers/Microsoft.Security/assessments/a', 'Microsoft.Storage/storageAccounts'],
    ['/subscriptions/s', undefined],
    ['/subscriptions/s/providers/Microsoft.Security', undefined],
    ['', undefined],
    ['//subscriptions/s//resourceGroups/rg/PROVIDERS/Microsoft.Web//sites/app/', 'Microsoft.Web/sites'],
    // A site named "providers" is a name, not an extension's segment.
    ['/subscriptions/s/providers/Microsoft.Web/sites/providers/x', 'Microsoft.Web/sites/x'],
    ['/subscriptions/s/providers/Microsoft.Web/providers/sites', undefined],
    ['providers/Microsoft.Web/sites', 'Microsoft.Web/sites'],
  ])('dest_type of %s', (resourceId, expected) => {
    expect(armResourceType(resourceId)).toBe(expected);
  });

  /** The fields as this file's tests and the README describe them, built as an object: the reference. */
  function referenceFields(finding: Finding): Record<string, string | string[]> {
    const fields: Record<string, string | string[]> = {};
    const text = (key: string, value: string | undefined): void => {
      if (value !== undefined && value !== '') fields[key] = value;
    };
    const list = (key: string, values: readonly string[]): void => {
      const present = values.filter((value) => value !== '');
      if (present.length > 0) fields[key] = present;
    };
    text('kind', finding.kind);
    text('id', finding.id);
    text('severity', finding.severity.toLowerCase());
    text('severity_id', String(severityRank(finding.severity)));
    text('signature', finding.title !== '' ? finding.title : finding.alertType);
    text('signature_id', finding.alertType);
    text('type', finding.kind === 'alert' ? 'alert' : 'event');
    text('status', finding.status);
    text('dest', finding.resourceId);
    text('dest_type', armResourceType(finding.resourceId));
    text('subscription', finding.subscriptionId);
    text('resource_group', finding.resourceGroup);
    text('cluster', finding.cluster);
    text('namespace', finding.namespace);
    list('mitre_tactic', finding.tactics);
    list('cve', finding.cves);
    if (finding.cvss !== undefined && Number.isFinite(finding.cvss)) text('cvss', String(finding.cvss));
    text('action', finding.action);
    if (finding.snapshot) text('snapshot', 'true');
    text('vendor_product', 'Microsoft Defender for Cloud');
    return fields;
  }

  it('is written as JSON directly, exactly as JSON.stringify writes the fields, whatever the strings hold', () => {
    const odd = ['quote " and \\ backslash', 'tab\tnew\nline\u0000nul', 'lone \ud800 surrogate', 'pair \ud83d\ude00 and é', '</script>\u2028'];
    const findings: Finding[] = [
      makeAlert(),
      makeAlert({ title: '', tactics: ['', 'Execution', ''], namespace: 'kube-system', action: 'Insert', snapshot: true }),
      makeVulnerability({ cves: ['CVE-2024-3094', ''], cvss: 9.8 }),
      makeVulnerability({ cves: [''], cvss: Number.NaN }),
      makeSecureScore(),
      makeRecommendation(),
      ...odd.map((text, n) => makeAlert({ id: text, title: text, status: text, resourceId: `/subscriptions/${text}/providers/Microsoft.${text}/t/${n}`, tactics: [text, text], cluster: text })),
    ];
    for (const file of readdirSync(fixtures).filter((name) => name.endsWith('.json'))) findings.push(fixtureItem(file).finding);
    for (const finding of findings) {
      expect(hecFieldsJson(finding)).toBe(JSON.stringify(referenceFields(finding)));
    }
  });
});

describe('encodeHecBatches: concatenated envelopes bounded by count and bytes', () => {
  const items = Array.from({ length: 10 }, (_, index) => item(makeAlert({ id: `alert-${String(index).padStart(2, '0')}`, raw: { n: index } }), { input: `in#${index}` }));
  const lineBytes = Buffer.byteLength(`${encodeHecEvent(items[0] as DeliveryItem, DEFAULTS)}\n`);

  it('every line of a batch is one envelope, in item order', () => {
    const [batch, ...rest] = encodeHecBatches(items, batchOptions());
    expect(rest).toHaveLength(0);
    if (batch === undefined) throw new Error('no batch');
    expect(batch.items).toEqual(items);
    expect(batch.bytes).toBe(batch.body.length);
    expect(envelopesOf(batch.body).map((envelope) => envelope['event'])).toEqual(items.map((entry) => entry.finding.raw));
  });

  it('splits by event count', () => {
    const batches = encodeHecBatches(items, batchOptions({ batchMaxEvents: 3 }));
    expect(batches.map((batch) => batch.items.length)).toEqual([3, 3, 3, 1]);
    expect(batches.flatMap((batch) => batch.items)).toEqual(items);
  });

  it('splits by uncompressed bytes, the bound included', () => {
    // Every line has the same length here: two fit exactly, a third would not.
    const batches = encodeHecBatches(items, batchOptions({ batchMaxBytes: lineBytes * 2 }));
    expect(batches.map((batch) => batch.items.length)).toEqual([2, 2, 2, 2, 2]);
    for (const batch of batches) expect(batch.bytes).toBeLessThanOrEqual(lineBytes * 2);
    const tighter = encodeHecBatches(items, batchOptions({ batchMaxBytes: lineBytes * 2 - 1 }));
    expect(tighter.map((batch) => batch.items.length)).toEqual(Array.from({ length: 10 }, () => 1));
  });

  it('sends an event larger than the byte bound alone, and still sends it', () => {
    const big = item(makeAlert({ id: 'big', raw: { blob: 'x'.repeat(5_000) } }));
    const list = [items[0], items[1], big, items[2]].filter((entry): entry is DeliveryItem => entry !== undefined);
    const batches = encodeHecBatches(list, batchOptions({ batchMaxBytes: lineBytes * 3 }));
    expect(batches.map((batch) => batch.items.map((entry) => entry.finding.id))).toEqual([['alert-00', 'alert-01'], ['big'], ['alert-02']]);
    expect(batches[1]?.bytes).toBeGreaterThan(lineBytes * 3);
  });

  it('applies both bounds at once', () => {
    const batches = encodeHecBatches(items, batchOptions({ batchMaxEvents: 4, batchMaxBytes: lineBytes * 3 }));
    expect(batches.map((batch) => batch.items.length)).toEqual([3, 3, 3, 1]);
  });

  it('gzips the body when asked; bytes stay the uncompressed size', () => {
    const plain = encodeHecBatches(items, batchOptions({ batchMaxEvents: 4 }));
    const zipped = encodeHecBatches(items, batchOptions({ batchMaxEvents: 4, gzip: true }));
    expect(zipped).toHaveLength(plain.length);
    zipped.forEach((batch, index) => {
      const expected = plain[index];
      if (expected === undefined) throw new Error('batch count differs');
      expect(batch.body[0]).toBe(0x1f);
      expect(batch.body[1]).toBe(0x8b);
      expect(gunzipSync(batch.body).equals(expected.body)).toBe(true);
      expect(batch.bytes).toBe(expected.body.length);
    });
  });

  it('builds no batch for no items', () => {
    expect(encodeHecBatches([], batchOptions())).toEqual([]);
  });
});

describe('encodeHecEvent: the record as received', () => {
  const file = 'eh_alert_K8S_AdmissionController_informational__sumologic.json';
  const pretty = readFileSync(path.join(fixtures, file), 'utf8');
  const compact = JSON.stringify(JSON.parse(pretty)).replace('"ConfidenceScore":0', '"ConfidenceScore":0.0');

  it('puts a one-line body into the event as it arrived, not serialised again (0.0 stays 0.0)', () => {
    const [record] = inspectEnvelope({ input: 'eh:0/1', body: compact });
    if (!record?.ok) throw new Error('the fixture no longer passes');
    expect(record.finding.rawText).toBe(compact);
    expect(Object.keys(record.finding)).not.toContain('rawText'); // never in reports or comparisons
    const line = encodeHecEvent(item(record.finding), DEFAULTS);
    expect(line).toContain(`"event":${compact},"fields":`);
    expect(line).toContain('"ConfidenceScore":0.0');
    const envelope = decode(line);
    expect(Object.keys(envelope)).toEqual(['time', 'source', 'sourcetype', 'event', 'fields']);
    expect(envelope['event']).toEqual(JSON.parse(compact));
  });

  it('keeps the text of a body handed over as bytes, as the Function gets its events (dataType binary)', () => {
    const [record] = inspectEnvelope({ input: 'eh:0/1', body: Buffer.from(compact) });
    if (!record?.ok) throw new Error('the fixture no longer passes');
    expect(record.finding.rawText).toBe(compact);
    expect(encodeHecEvent(item(record.finding), DEFAULTS)).toContain(`"event":${compact},"fields":`);
  });

  it('serialises a pretty-printed body (a line per event), and a record of a multi-record body', () => {
    const [record] = inspectEnvelope({ input: 'file.json', body: pretty });
    if (!record?.ok) throw new Error('the fixture no longer passes');
    expect(record.finding.rawText).toBeUndefined();
    const line = encodeHecEvent(item(record.finding), DEFAULTS);
    expect(line).not.toContain('\n');
    expect(decode(line)['event']).toEqual(JSON.parse(pretty));

    const [first] = inspectEnvelope({ input: 'many.json', body: `[${compact},${compact}]` });
    if (!first?.ok) throw new Error('the fixture no longer passes');
    expect(first.finding.rawText).toBeUndefined();
    expect(decode(encodeHecEvent(item(first.finding), DEFAULTS))['event']).toEqual(JSON.parse(compact));
  });

  it('a record kept as its text still shows its record as `raw`: parsed from the text once, when first read', () => {
    const [record] = inspectEnvelope({ input: 'eh:0/1', body: compact });
    const [fromPretty] = inspectEnvelope({ input: 'file.json', body: pretty });
    if (!record?.ok || !fromPretty?.ok) throw new Error('the fixture no longer passes');
    const { finding } = record;
    expect(Object.keys(finding)).toContain('raw');
    expect(finding.raw).toEqual(JSON.parse(compact));
    expect(finding.raw).toBe(finding.raw); // the same object each time: parsed once
    // Spread, compared, or serialised, it is the same Finding as one that held its parsed record all along.
    expect({ ...finding }).toEqual(fromPretty.finding);
    expect(finding).toEqual(fromPretty.finding);
    expect(JSON.parse(JSON.stringify(finding))).toEqual(JSON.parse(JSON.stringify(fromPretty.finding)));
    expect(() => {
      (finding as { raw: unknown }).raw = {};
    }).toThrow(TypeError); // read-only, as the type says
  });
});

describe('encodeHecEvent writes what buildHecEnvelope describes', () => {
  const files = readdirSync(fixtures).filter((name) => name.endsWith('.json'));
  const variants: readonly HecEnvelopeOptions[] = [
    DEFAULTS,
    { source: 'src "quoted"', sourcetypes: { alert: 'alerts' }, sourcetype: 'other', host: 'forwarder-01', index: 'defender' },
  ];

  it('for every fixture, pretty or on one line, with and without host and index: the same keys in the same order and values', () => {
    expect(files.length).toBeGreaterThan(5);
    let checked = 0;
    for (const file of files) {
      const pretty = readFileSync(path.join(fixtures, file), 'utf8');
      for (const body of [pretty, JSON.stringify(JSON.parse(pretty))]) {
        for (const [decoded] of [inspectEnvelope({ input: file, body, metadata: { enqueuedTimeUtc: '2026-11-28T00:00:00Z' } })]) {
          if (!decoded?.ok) continue;
          for (const options of variants) {
            const entry = item(decoded.finding, { metadata: { enqueuedTimeUtc: '2026-11-28T00:00:00Z' } });
            const line = encodeHecEvent(entry, options);
            const parsed = JSON.parse(line) as Record<string, unknown>;
            const expected = buildHecEnvelope(entry, options);
            expect(Object.keys(parsed)).toEqual(Object.keys(expected));
            expect(parsed).toEqual(JSON.parse(JSON.stringify(expected)));
            expect(line).not.toContain('\n');
            checked += 1;
          }
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(20);
  });
});
