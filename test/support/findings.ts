/**
 * Small factories for normalised `Finding`s in routing tests: realistic defaults (a Medium Kubernetes alert, a
 * container image vulnerability...), every field overridable.
 */
import type { Finding } from '../../src/model/finding.js';

const SUBSCRIPTION = '00000000-1111-2222-3333-444444444444';

/** A Defender for Containers alert on an AKS cluster in rg-prod-aks. */
export function makeAlert(overrides: Partial<Finding> = {}): Finding {
  return {
    kind: 'alert',
    id: '2517538088322968242_b6c1a2f0-7d1e-4b52-9a0b-3f3c7c1d9e01',
    severity: 'Medium',
    status: 'New',
    title: 'Role binding to the cluster-admin role detected',
    description: 'Kubernetes audit log analysis detected a new binding to the cluster-admin role.',
    resourceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-prod-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu`,
    subscriptionId: SUBSCRIPTION,
    resourceGroup: 'rg-prod-aks',
    cluster: 'aks-prod-weu',
    alertType: 'K8S_ClusterAdminBinding',
    tactics: ['Persistence', 'PrivilegeEscalation'],
    cves: [],
    time: '2025-08-21T10:00:00Z',
    snapshot: false,
    remediation: [],
    raw: {},
    ...overrides,
  };
}

/** A container image vulnerability (sub-assessment) in an Azure Container Registry. */
export function makeVulnerability(overrides: Partial<Finding> = {}): Finding {
  return {
    kind: 'finding',
    id: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-prod-acr/providers/Microsoft.ContainerRegistry/registries/acrprod/providers/Microsoft.Security/assessments/c0b7cfc6-3172-465a-b378-53c7ff2cc0d5/subAssessments/CVE-2024-3094`,
    severity: 'High',
    status: 'Unhealthy',
    title: 'CVE-2024-3094',
    description: 'xz-utils backdoor',
    resourceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-prod-acr/providers/Microsoft.ContainerRegistry/registries/acrprod`,
    subscriptionId: SUBSCRIPTION,
    resourceGroup: 'rg-prod-acr',
    tactics: [],
    cves: ['CVE-2024-3094'],
    cvss: 10,
    time: '2025-08-21T00:00:00',
    snapshot: false,
    remediation: [],
    raw: {},
    ...overrides,
  };
}

/** A recommendation (assessment) on a storage account. */
export function makeRecommendation(overrides: Partial<Finding> = {}): Finding {
  return {
    kind: 'recommendation',
    id: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stdev/providers/Microsoft.Security/assessments/1c5de8e1-f68d-6a17-e0d2-ec259c42768c`,
    severity: 'Low',
    status: 'Unhealthy',
    title: 'Storage accounts should restrict network access',
    description: '',
    resourceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stdev`,
    subscriptionId: SUBSCRIPTION,
    resourceGroup: 'rg-dev',
    tactics: [],
    cves: [],
    time: '2025-08-21T00:00:00Z',
    snapshot: true,
    remediation: [],
    raw: {},
    ...overrides,
  };
}

/** A secure score: no severity (Unknown) and no status. */
export function makeSecureScore(overrides: Partial<Finding> = {}): Finding {
  return {
    kind: 'secureScore',
    id: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Security/secureScores/ascScore`,
    severity: 'Unknown',
    status: '',
    title: 'ASC score',
    description: '',
    resourceId: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Security/secureScores/ascScore`,
    subscriptionId: SUBSCRIPTION,
    resourceGroup: '',
    tactics: [],
    cves: [],
    time: '2025-08-21T00:00:00Z',
    snapshot: true,
    remediation: [],
    raw: {},
    ...overrides,
  };
}

/** Drops optional fields (`cluster`, `cvss`...) from a finding, since `exactOptionalPropertyTypes` forbids `undefined`. */
export function without<K extends 'cluster' | 'cvss' | 'alertType' | 'namespace' | 'link' | 'action'>(
  finding: Finding,
  ...keys: K[]
): Finding {
  const copy: Record<string, unknown> = { ...finding };
  for (const key of keys) delete copy[key];
  return copy as unknown as Finding;
}
