import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectEnvelope, type AcceptedRecord } from '../../src/pipeline/run.js';
import { splitTactics } from '../../src/pipeline/normalise.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/defender');

function accept(file: string): AcceptedRecord {
  const body = readFileSync(path.join(fixtures, file), 'utf8');
  const [record, ...rest] = inspectEnvelope({ input: file, body });
  expect(rest).toHaveLength(0);
  if (!record?.ok) throw new Error(`${file} was rejected: ${record?.entry.reason}`);
  return record;
}

describe('normalise: every sample becomes the Finding the design describes', () => {
  it('Event Hub alert (Defender for Containers, Informational, two tactics, $ref entities)', () => {
    const { finding, shape } = accept('eh_alert_K8S_AdmissionController_informational__sumologic.json');
    expect(shape).toBe('eventHub');
    expect(finding).toMatchObject({
      kind: 'alert',
      id: '57963b4b-3cb0-dc3a-16ed-f1e216311809',
      severity: 'Informational',
      status: 'New',
      title: 'Creation of admission webhook configuration detected',
      alertType: 'K8S_AdmissionController',
      tactics: ['Persistence', 'CredentialAccess'],
      subscriptionId: '1111111-1111-1111-111-11111111',
      resourceGroup: 'qek8dm0-azure-k8stest',
      cluster: 'k8s--295-aks1-28-otc-dev-v4',
      time: '2024-11-20T08:32:12.950321Z',
      snapshot: false,
      cves: [],
    });
    expect(finding.link).toMatch(/^https:\/\/portal\.azure\.com\/#blade\/.*alertId\/57963b4b/);
    expect(finding.remediation[0]).toMatch(/^Review the admission controller webhook/);
    expect(finding.resourceId).toMatch(/managedClusters\/k8s--295-aks1-28-otc-dev-v4$/);
  });

  it('finds the Kubernetes cluster and namespace among nested entities, whatever their type names\' case and padding', () => {
    const file = 'eh_alert_K8S_AdmissionController_informational__sumologic.json';
    const record = JSON.parse(readFileSync(path.join(fixtures, file), 'utf8')) as Record<string, unknown>;
    const entities = [
      { $id: '1', Type: 'K8s-pod', Name: 'web-0', Namespace: { $id: '2', Type: ' k8s-NAMESPACE ', Name: 'payments' } },
      { $id: '3', Type: 'K8s-Cluster', Name: 'aks-entities', Extra: [{ Deeper: { Type: 'K8s-namespace', Name: 'too-late' } }] },
      { $id: '4', Type: 'K8s-cluster', Name: 'second-cluster' },
    ];
    const [accepted] = inspectEnvelope({ input: file, body: JSON.stringify({ ...record, Entities: entities }) });
    if (!accepted?.ok) throw new Error(`rejected: ${accepted?.entry.reason}`);
    expect(accepted.finding.namespace).toBe('payments');
    expect(accepted.finding.cluster).toBe('aks-entities');

    // Arrays inside an entity are not looked into, even when nothing else names a namespace.
    const inArrays = [{ Type: 'K8s-pod', Containers: [{ Type: 'K8s-cluster', Name: 'from-array' }, { Type: 'K8s-namespace', Name: 'ns-from-array' }] }];
    const [listed] = inspectEnvelope({ input: file, body: JSON.stringify({ ...record, Entities: inArrays }) });
    if (!listed?.ok) throw new Error(`rejected: ${listed?.entry.reason}`);
    expect(listed.finding.namespace).toBeUndefined();
    expect(listed.finding.cluster).toBe('k8s--295-aks1-28-otc-dev-v4'); // from the resource id
    const before = [{ Type: 'K8s-pod', Items: [{ Type: 'K8s-namespace', Name: 'first-in-array' }], Namespace: { Type: 'K8s-namespace', Name: 'real' } }];
    const [sibling] = inspectEnvelope({ input: file, body: JSON.stringify({ ...record, Entities: before }) });
    if (!sibling?.ok) throw new Error(`rejected: ${sibling?.entry.reason}`);
    expect(sibling.finding.namespace).toBe('real');

    // Nested deeper than four levels is not looked at.
    const deep = [{ Type: 'x', A: { B: { C: { D: { E: { Type: 'K8s-namespace', Name: 'too-deep' } } } } } }];
    const shallower = [{ Type: 'x', A: { B: { C: { D: { Type: 'K8s-namespace', Name: 'deep-enough' } } } } }];
    const [near] = inspectEnvelope({ input: file, body: JSON.stringify({ ...record, Entities: shallower }) });
    if (!near?.ok) throw new Error(`rejected: ${near?.entry.reason}`);
    expect(near.finding.namespace).toBe('deep-enough');
    const [far] = inspectEnvelope({ input: file, body: JSON.stringify({ ...record, Entities: deep }) });
    if (!far?.ok) throw new Error(`rejected: ${far?.entry.reason}`);
    expect(far.finding.namespace).toBeUndefined();
  });

  it('keeps the original record untouched in raw', () => {
    const file = 'eh_alert_K8S_AdmissionController_informational__sumologic.json';
    const { finding } = accept(file);
    expect(finding.raw).toEqual(JSON.parse(readFileSync(path.join(fixtures, file), 'utf8')));
    expect(Object.keys(finding.raw as object)).toContain('SystemAlertId');
  });

  it('REST alert with an upper-cased resource id', () => {
    const { finding, shape } = accept('api_alert_SIMULATED_APPS_WpThemeInjection__demisto.json');
    expect(shape).toBe('rest');
    expect(finding).toMatchObject({
      kind: 'alert',
      id: '2517396773188188817_5c67ef0a-f746-44f5-8922-dfd4e92ac6cb',
      severity: 'High',
      status: 'Active',
      alertType: 'SIMULATED_APPS_WpThemeInjection',
      subscriptionId: '0f907ea4-bc8b-4c11-9d7e-805c2fd144fb',
      resourceGroup: 'Sample-RG',
      tactics: ['Unknown'],
    });
    expect(finding.cluster).toBeUndefined();
  });

  it('REST alert: EICAR incident', () => {
    const { finding } = accept('api_alert_VM_EICAR_isIncident__rest-api-specs.json');
    expect(finding).toMatchObject({
      severity: 'High',
      status: 'Active',
      tactics: ['Execution'],
      resourceGroup: 'myRg1',
      remediation: ['No further action is needed.'],
      time: '2020-02-22T00:00:00.0000000Z',
    });
    expect(finding.resourceId).toMatch(/virtualMachines\/vm1$/);
  });

  it('Activity Log alert: JSON inside strings', () => {
    const { finding, shape } = accept('activitylog_alert_K8S_cluster_admin_role_binding__msdocs.json');
    expect(shape).toBe('activityLog');
    expect(finding).toMatchObject({
      kind: 'alert',
      id: '2518250008431989649_e7313e05-edf4-466d-adfd-35974921aeff',
      severity: 'Low',
      status: 'Active',
      tactics: ['Persistence'],
      resourceGroup: 'RESOURCE_GROUP_NAME',
      subscriptionId: 'SUBSCRIPTION_ID',
      title: 'PREVIEW - Role binding to the cluster-admin role detected',
    });
    expect(finding.remediation[0]).toMatch(/^Review the user in the alert details/);
  });

  it('recommendation (Insert, NotApplicable) with an https portal link', () => {
    const { finding } = accept('eh_assessment_insert_NotApplicable__sumologic.json');
    expect(finding).toMatchObject({ kind: 'recommendation', status: 'NotApplicable', snapshot: false, action: 'Insert', resourceGroup: 'AppServiceEnvV3_group' });
    expect(finding.resourceId).toMatch(/virtualMachines\/ase-ext-test$/);
    expect(finding.link).toMatch(/^https:\/\/portal\.azure\.com\/#blade\/Microsoft_Azure_Security\/RecommendationsBlade\/assessmentKey\//);
  });

  it('legacy PascalCase assessment envelope', () => {
    const { finding } = accept('eh_assessment_legacy_AssessmentEventDataEnrichment__asc-repo.json');
    expect(finding).toMatchObject({ kind: 'recommendation', severity: 'Low', status: 'Unhealthy', action: 'Insert', snapshot: false });
    expect(finding.link).toMatch(/^https:\/\/ms\.portal\.azure\.com\//);
    expect(finding.subscriptionId).toBe('a27e854a-8578-4395-8eaf-6fc7849f3050');
  });

  it('regulatory compliance: status from state, link, standard and control from the id', () => {
    const { finding } = accept('eh_regulatory_compliance_Failed__sumologic.json');
    expect(finding).toMatchObject({
      kind: 'regulatoryCompliance',
      severity: 'Unknown',
      status: 'Failed',
      title: 'Azure Kubernetes Service clusters should have Defender profile enabled',
      description: 'Microsoft-cloud-security-benchmark control LT.2',
      action: 'Write',
    });
    expect(finding.link).toMatch(/^https:\/\/portal\.azure\.com\//);
  });

  it('container registry finding (current scanner): CVE and CVSS 3.0', () => {
    const { finding } = accept('arg_subassessment_AzureContainerRegistryVulnerability_mdvm__msdocs.json');
    expect(finding).toMatchObject({ kind: 'finding', severity: 'High', status: 'NotApplicable', cves: ['CVE-2022-42969'], cvss: 7.5 });
  });

  it('AWS ECR finding', () => {
    const { finding } = accept('arg_subassessment_AwsContainerRegistryVulnerability_mdvm__msdocs.json');
    expect(finding.kind).toBe('finding');
    expect(finding.cves.length).toBeGreaterThan(0);
    expect(finding.cvss).toBeGreaterThan(0);
  });

  it('older registry scanner finding: cve list and cvss object', () => {
    const { finding } = accept('api_subassessment_ContainerRegistryVulnerability_qualys_legacy__rest-api-specs.json');
    expect(finding).toMatchObject({ kind: 'finding', severity: 'High', status: 'Unhealthy', cves: ['CVE-2019-12345'], cvss: 10, resourceGroup: 'myRg' });
  });

  it('SQL finding without CVEs', () => {
    const { finding } = accept('api_subassessment_SqlServerVulnerability__rest-api-specs.json');
    expect(finding).toMatchObject({ kind: 'finding', severity: 'High', status: 'Healthy', cves: [], resourceGroup: 'ascdemoRG' });
    expect(finding.cvss).toBeUndefined();
  });

  it('secure score', () => {
    const { finding } = accept('api_secure_score_ascScore__rest-api-specs.json');
    expect(finding).toMatchObject({ kind: 'secureScore', severity: 'Unknown', status: '', title: 'ASC score', subscriptionId: '20ff7fc3-e762-44dd-bd96-b71116dcdc23' });
    expect(finding.description).toBe('score 23.53 of 39 (60.3%)');
  });

  it('finding severity: the vulnerability may say Critical where status.severity cannot', () => {
    const record = JSON.parse(readFileSync(path.join(fixtures, 'arg_subassessment_AzureContainerRegistryVulnerability_mdvm__msdocs.json'), 'utf8')) as {
      properties: { additionalData: { vulnerabilityDetails: { severity: string } } };
    };
    record.properties.additionalData.vulnerabilityDetails.severity = 'Critical';
    const [inspected] = inspectEnvelope({ input: 'x', body: record });
    expect(inspected?.ok && inspected.finding.severity).toBe('Critical');
  });

  it('cvss: 3.x is preferred over 2.0 within a cvss block, and the highest score named wins', () => {
    const file = 'arg_subassessment_AzureContainerRegistryVulnerability_mdvm__msdocs.json';
    const record = JSON.parse(readFileSync(path.join(fixtures, file), 'utf8')) as {
      properties: { additionalData: { cvssV30Score?: number; vulnerabilityDetails: { cvss: Record<string, unknown> } } };
    };
    delete record.properties.additionalData.cvssV30Score;
    record.properties.additionalData.vulnerabilityDetails.cvss = { '2.0': { base: 9.3 }, '3.0': { base: 5.1 } };
    const [v3] = inspectEnvelope({ input: 'x', body: record });
    expect(v3?.ok && v3.finding.cvss).toBe(5.1);
    record.properties.additionalData.vulnerabilityDetails.cvss = { '2.0': { base: 9.3 }, '3.0': null };
    const [v2] = inspectEnvelope({ input: 'x', body: record });
    expect(v2?.ok && v2.finding.cvss).toBe(9.3);
    record.properties.additionalData.cvssV30Score = 6.4;
    record.properties.additionalData.vulnerabilityDetails.cvss = { '3.0': { base: 'high' } };
    const [text] = inspectEnvelope({ input: 'x', body: record });
    expect(text?.ok && text.finding.cvss).toBe(6.4);
  });

  it('snapshot flag from the export envelope', () => {
    const record = JSON.parse(readFileSync(path.join(fixtures, 'eh_assessment_insert_NotApplicable__sumologic.json'), 'utf8')) as {
      assessmentEventDataEnrichment: { isSnapshot: boolean };
    };
    record.assessmentEventDataEnrichment.isSnapshot = true;
    const [inspected] = inspectEnvelope({ input: 'x', body: record });
    expect(inspected?.ok && inspected.finding.snapshot).toBe(true);
  });

  it('splits Intent in its three spellings', () => {
    expect(splitTactics('Persistence, CredentialAccess')).toEqual(['Persistence', 'CredentialAccess']);
    expect(splitTactics('["Persistence","Execution"]')).toEqual(['Persistence', 'Execution']);
    expect(splitTactics(['Discovery'])).toEqual(['Discovery']);
    expect(splitTactics('')).toEqual([]);
    expect(splitTactics(null)).toEqual([]);
    expect(splitTactics('Execution, execution')).toEqual(['Execution']);
  });
});
