/**
 * Offline checks of the Bicep templates in infra/ and of azure.yaml. Bicep cannot be compiled on the machines
 * these tests run on, so the checks read the template text: the app settings the code reads are all set (or
 * deliberately left out, and documented), secrets reach the app as Key Vault references, the role ids are the
 * built-in ones and each is assigned, resource types and API versions are known ones, every parameter is
 * described, secret parameters are @secure(), storage refuses shared keys, and azd finds the infra and the
 * Function service. Each check is a function over text, run once on the real files (no problems) and once on
 * a broken copy (the problem is found), so that every check is shown to be able to fail.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const infraDir = path.join(root, 'infra');

function read(relative: string): string {
  return readFileSync(path.join(root, relative), 'utf8');
}

/** Every .bicep file under infra/, concatenated (modules included). */
function readBicep(): string {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.bicep')) files.push(full);
    }
  };
  walk(infraDir);
  return files
    .sort()
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
}

const bicep = readBicep();
// readFunctionSettings reads the telemetry settings through src/telemetry/azureMonitor.ts.
const appSettingsSource = `${read('src/config/appSettings.ts')}\n${read('src/telemetry/azureMonitor.ts')}`;
/** What the code can write to the logs and metrics the alert rules query. */
const emittedSource = ['src/host/eventHubBatch.ts', 'src/pipeline/accounting.ts', 'src/telemetry/metrics.ts'].map(read).join('\n');
const routesExample = read('config/routes.example.yaml');
const azureYaml = read('azure.yaml');
const infraReadme = read('infra/README.md');

// ---------------------------------------------------------------------------------------------------------
// Facts the checks compare against
// ---------------------------------------------------------------------------------------------------------

/** Settings the code can read that the template deliberately does not set, and why (infra/README.md says so too). */
const OMITTED_SETTINGS: Readonly<Record<string, string>> = {
  FORWARDER_STORAGE_CONNECTION: 'a storage connection string; the app reads its blobs through AzureWebJobsStorage__accountName with its identity',
  EVENTHUB_CONNECTION: 'the connection-string variant; EVENTHUB_CONNECTION__fullyQualifiedNamespace (identity) is set instead',
  AzureWebJobsStorage: 'the connection-string variant; AzureWebJobsStorage__accountName (identity) is set instead',
  AzureWebJobsStorage__blobServiceUri: 'an alternative to AzureWebJobsStorage__accountName (sovereign clouds, custom endpoints)',
  AzureWebJobsStorage__credential: 'needed only with a user-assigned identity; the app uses its system-assigned identity',
  AzureWebJobsStorage__clientId: 'needed only with a user-assigned identity; the app uses its system-assigned identity',
  OTEL_METRIC_EXPORT_INTERVAL: 'the metrics export interval; the default (60 s) suits the alert rules',
  WEBSITE_SITE_NAME: "set by the platform to the app's name (the metrics' cloud role name)",
};

/** The rules' ${ENV} names that are not secrets (set as plain values, not Key Vault references). */
const NON_SECRET_RULE_SETTINGS = new Set(['HEC_URL']);

/** Settings the template must never set: connection strings with keys. */
const FORBIDDEN_SETTINGS = ['FORWARDER_STORAGE_CONNECTION', 'EVENTHUB_CONNECTION', 'AzureWebJobsStorage', 'FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_EXTENSION_VERSION'];

/** Built-in role definition ids (Azure built-in roles list). */
const KNOWN_ROLES: Readonly<Record<string, string>> = {
  'a638d3c7-ab3a-418d-83e6-5f17a39d4fde': 'Azure Event Hubs Data Receiver',
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
};

/** Resource types the templates may use, with the API versions looked up for them. */
const KNOWN_RESOURCE_TYPES: Readonly<Record<string, readonly string[]>> = {
  'Microsoft.OperationalInsights/workspaces': ['2023-09-01'],
  'Microsoft.Insights/components': ['2020-02-02'],
  'Microsoft.Insights/actionGroups': ['2023-01-01'],
  'Microsoft.Insights/scheduledQueryRules': ['2023-12-01', '2021-08-01'],
  'Microsoft.Storage/storageAccounts': ['2023-05-01'],
  'Microsoft.Storage/storageAccounts/blobServices': ['2023-05-01'],
  'Microsoft.Storage/storageAccounts/blobServices/containers': ['2023-05-01'],
  'Microsoft.EventHub/namespaces': ['2024-01-01'],
  'Microsoft.EventHub/namespaces/eventhubs': ['2024-01-01'],
  'Microsoft.EventHub/namespaces/eventhubs/consumergroups': ['2024-01-01'],
  'Microsoft.EventHub/namespaces/eventhubs/authorizationRules': ['2024-01-01'],
  'Microsoft.KeyVault/vaults': ['2023-07-01'],
  'Microsoft.KeyVault/vaults/secrets': ['2023-07-01'],
  'Microsoft.Web/serverfarms': ['2024-04-01'],
  'Microsoft.Web/sites': ['2024-04-01'],
  'Microsoft.Web/sites/config': ['2024-04-01'],
  'Microsoft.Authorization/roleAssignments': ['2022-04-01'],
  'Microsoft.Security/automations': ['2023-12-01-preview', '2019-01-01-preview'],
};

/** A parameter name that suggests a secret. */
const SECRET_PARAM = /token|secret|password|passwd|key(?!vault)|connection|smtpurl|teamsurl|webhook|sas/i;

// ---------------------------------------------------------------------------------------------------------
// Readers (text in, facts out)
// ---------------------------------------------------------------------------------------------------------

/** The app settings `readFunctionSettings` reads: `env[...]` look-ups and the `required`/`container`/`numberSetting` helpers. */
function settingsReadByCode(source: string): Set<string> {
  const constants = new Map<string, string>();
  for (const match of source.matchAll(/\bconst\s+([A-Z][A-Z0-9_]*)\s*=\s*'([^']*)'/g)) constants.set(match[1] ?? '', match[2] ?? '');
  const resolve = (expression: string): string | undefined => {
    const text = expression.trim();
    const quoted = /^'([^']*)'$/.exec(text) ?? /^"([^"]*)"$/.exec(text);
    if (quoted) return quoted[1];
    const template = /^`([^`]*)`$/.exec(text);
    if (template) {
      let unresolved = false;
      const value = (template[1] ?? '').replace(/\$\{([A-Za-z0-9_]+)\}/g, (_whole, name: string) => {
        const constant = constants.get(name);
        if (constant === undefined) unresolved = true;
        return constant ?? '';
      });
      return unresolved ? undefined : value;
    }
    return constants.get(text);
  };
  const names = new Set<string>();
  for (const match of source.matchAll(/\benv\[([^\]]+)\]/g)) {
    const name = resolve(match[1] ?? '');
    if (name !== undefined) names.add(name);
  }
  for (const match of source.matchAll(/\b(?:required|container)\(\s*('[^']*')/g)) names.add(resolve(match[1] ?? '') ?? '');
  for (const match of source.matchAll(/\bnumberSetting\(\s*env\s*,\s*('[^']*')/g)) names.add(resolve(match[1] ?? '') ?? '');
  names.delete('');
  return names;
}

/** The `${NAME}` references of a rules file, comments left out. */
function ruleEnvReferences(rulesYaml: string): Set<string> {
  const names = new Set<string>();
  for (const line of rulesYaml.split('\n')) {
    const code = line.replace(/(^|\s)#.*$/, '');
    for (const match of code.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(match[1] ?? '');
  }
  return names;
}

/** The `var functionAppSettings = { ... }` object of the template: setting name -> value expression. */
function templateAppSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  const start = text.search(/^var functionAppSettings = \{$/m);
  if (start === -1) return settings;
  const lines = text.slice(start).split('\n').slice(1);
  for (const line of lines) {
    if (line.startsWith('}')) break;
    const match = /^ {2}([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+)$/.exec(line);
    if (match) settings.set(match[1] ?? '', (match[2] ?? '').trim());
  }
  return settings;
}

interface ParamDeclaration {
  readonly name: string;
  readonly type: string;
  readonly decorators: string;
  readonly defaultValue: string | undefined;
}

/** Each `param` with the decorators written above it (multi-line decorators such as `@allowed([...])` included). */
function params(text: string): ParamDeclaration[] {
  const found: ParamDeclaration[] = [];
  let decorators = '';
  let depth = 0;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (depth > 0 || trimmed.startsWith('@')) {
      decorators += `${trimmed}\n`;
      for (const char of trimmed) {
        if (char === '(' || char === '[') depth += 1;
        else if (char === ')' || char === ']') depth -= 1;
      }
      continue;
    }
    const param = /^param\s+(\w+)\s+(\w+)(?:\s*=\s*(.*))?$/.exec(trimmed);
    if (param) {
      found.push({ name: param[1] ?? '', type: param[2] ?? '', decorators, defaultValue: param[3] });
      decorators = '';
    } else if (trimmed !== '' && !trimmed.startsWith('//')) {
      decorators = '';
    }
  }
  return found;
}

interface ResourceDeclaration {
  readonly symbol: string;
  readonly type: string;
  readonly apiVersion: string | undefined;
  /** The declaration's text, up to the next top-level declaration. */
  readonly body: string;
}

function resources(text: string): ResourceDeclaration[] {
  const headers = [...text.matchAll(/^resource\s+(\w+)\s+'([^']+)'/gm)];
  return headers.map((header) => {
    const start = header.index;
    const rest = text.slice(start + header[0].length);
    const next = rest.search(/^(?:resource|var|param|output|module|@|\/\/ -{10})/m);
    const [type = '', apiVersion] = (header[2] ?? '').split('@');
    return { symbol: header[1] ?? '', type, apiVersion, body: header[0] + (next === -1 ? rest : rest.slice(0, next)) };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Checks (facts in, problems out: an empty list is a pass)
// ---------------------------------------------------------------------------------------------------------

function settingsProblems(template: string, codeSource: string, rulesYaml: string, readme: string): string[] {
  const problems: string[] = [];
  const set = templateAppSettings(template);
  if (set.size === 0) return ['no `var functionAppSettings = {` block in the template'];
  for (const name of settingsReadByCode(codeSource)) {
    if (set.has(name)) continue;
    if (name in OMITTED_SETTINGS) {
      if (!readme.includes(name)) problems.push(`${name} is left out but infra/README.md does not say so`);
      continue;
    }
    problems.push(`the code reads ${name}, the template does not set it`);
  }
  for (const name of ruleEnvReferences(rulesYaml)) {
    const value = set.get(name);
    if (value === undefined) problems.push(`the example rules refer to \${${name}}, the template does not set it`);
    else if (!NON_SECRET_RULE_SETTINGS.has(name) && !/^'@Microsoft\.KeyVault\(SecretUri=\$\{\w+\.properties\.secretUri\}\)'$/.test(value)) {
      problems.push(`${name} is a secret but not a Key Vault reference: ${value}`);
    }
  }
  for (const name of FORBIDDEN_SETTINGS) if (set.has(name)) problems.push(`the template sets ${name} (a connection string or a setting Flex Consumption refuses)`);
  return problems;
}

/**
 * The alert rules query what the code writes: every log event and metric name a rule's query looks for must
 * appear, quoted, in the code that emits it (a renamed event would silence its alert).
 */
function alertProblems(template: string, emitted: string): string[] {
  const problems: string[] = [];
  const rules = resources(template).filter((resource) => resource.type === 'Microsoft.Insights/scheduledQueryRules');
  if (rules.length === 0) return ['no alert rules'];
  for (const rule of rules) {
    const query = /query:\s*'''([\s\S]*?)'''/.exec(rule.body)?.[1];
    if (query === undefined) {
      problems.push(`alert ${rule.symbol} has no query`);
      continue;
    }
    const names = new Set<string>();
    for (const match of query.matchAll(/'((?:record|destination|run|rules|deadLetter|delivery)\.[A-Za-z.]+|forwarder\.[a-z_.]+)'/g)) names.add(match[1] ?? '');
    if (names.size === 0) problems.push(`alert ${rule.symbol} looks for no event or metric of the forwarder`);
    for (const name of names) if (!emitted.includes(`'${name}'`)) problems.push(`alert ${rule.symbol} looks for ${name}, which the code never writes`);
  }
  return problems;
}

function identityProblems(template: string): string[] {
  const problems: string[] = [];
  const site = resources(template).find((resource) => resource.type === 'Microsoft.Web/sites');
  if (!site) return ['no Microsoft.Web/sites resource'];
  const identityType = /identity:\s*\{\s*type:\s*'([^']+)'/.exec(site.body)?.[1];
  if (!identityType) return ['the Function App has no managed identity'];
  const set = templateAppSettings(template);
  const userAssigned = identityType.includes('UserAssigned');
  if (userAssigned && (set.get('AzureWebJobsStorage__credential') !== "'managedidentity'" || !set.has('AzureWebJobsStorage__clientId'))) {
    problems.push('a user-assigned identity needs AzureWebJobsStorage__credential = managedidentity and AzureWebJobsStorage__clientId');
  }
  if (!set.has('AzureWebJobsStorage__accountName')) problems.push('AzureWebJobsStorage__accountName is not set');
  const deploymentAuth = /authentication:\s*\{\s*type:\s*'([^']+)'/.exec(site.body)?.[1];
  const expected = userAssigned ? 'UserAssignedIdentity' : 'SystemAssignedIdentity';
  if (deploymentAuth !== expected) problems.push(`deployment storage authentication is ${deploymentAuth ?? 'missing'}, expected ${expected}`);
  if (!/runtime:\s*\{\s*name:\s*'node'\s*version:\s*'22'\s*\}/.test(site.body)) problems.push("functionAppConfig.runtime is not {name: 'node', version: '22'}");
  if (!/maximumInstanceCount:/.test(site.body) || !/instanceMemoryMB:/.test(site.body)) problems.push('functionAppConfig.scaleAndConcurrency is incomplete');
  const plan = resources(template).find((resource) => resource.type === 'Microsoft.Web/serverfarms');
  if (!plan || !/name:\s*'FC1'/.test(plan.body)) problems.push('the plan is not Flex Consumption (FC1)');
  return problems;
}

function roleProblems(template: string): string[] {
  const problems: string[] = [];
  const guids = new Set([...template.matchAll(/'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'/gi)].map((match) => (match[1] ?? '').toLowerCase()));
  for (const guid of guids) if (!(guid in KNOWN_ROLES)) problems.push(`unknown role definition id ${guid}`);
  for (const [guid, role] of Object.entries(KNOWN_ROLES)) if (!guids.has(guid)) problems.push(`${role} (${guid}) is missing`);
  const roleVars = new Map<string, string>();
  const block = /^var roles = \{\n([\s\S]*?)\n\}/m.exec(template)?.[1] ?? '';
  for (const match of block.matchAll(/^\s*(\w+):\s*'([0-9a-f-]{36})'/gim)) roleVars.set(match[1] ?? '', (match[2] ?? '').toLowerCase());
  if (roleVars.size === 0) problems.push('no `var roles = {...}` block');
  const assignments = resources(template).filter((resource) => resource.type === 'Microsoft.Authorization/roleAssignments');
  for (const [key, guid] of roleVars) {
    const used = assignments.some((assignment) => new RegExp(`roleDefinitionId:[^\\n]*\\broles\\.${key}\\b`).test(assignment.body));
    if (!used) problems.push(`${KNOWN_ROLES[guid] ?? guid} (roles.${key}) is not used by any role assignment`);
  }
  for (const assignment of assignments) {
    if (!/roleDefinitionId:[^\n]*\broles\.\w+/.test(assignment.body)) problems.push(`role assignment ${assignment.symbol} does not take its role from \`roles\``);
    if (!/principalId:\s*functionApp\.identity\.principalId/.test(assignment.body)) problems.push(`role assignment ${assignment.symbol} is not for the app's identity`);
  }
  return problems;
}

function resourceTypeProblems(template: string): string[] {
  const problems: string[] = [];
  const declared = resources(template);
  if (declared.length === 0) problems.push('no resources');
  for (const resource of declared) {
    if (resource.apiVersion === undefined) {
      problems.push(`${resource.symbol}: ${resource.type} has no API version`);
      continue;
    }
    const versions = KNOWN_RESOURCE_TYPES[resource.type];
    if (!versions) problems.push(`${resource.symbol}: ${resource.type} is not an allowed resource type`);
    else if (!versions.includes(resource.apiVersion)) problems.push(`${resource.symbol}: ${resource.type}@${resource.apiVersion} is not a known API version (${versions.join(', ')})`);
  }
  return problems;
}

function paramProblems(template: string): string[] {
  const problems: string[] = [];
  const declared = params(template);
  if (declared.length === 0) problems.push('no parameters');
  for (const param of declared) {
    if (!param.decorators.includes('@description(')) problems.push(`param ${param.name} has no @description`);
    const secure = param.decorators.includes('@secure()');
    if (SECRET_PARAM.test(param.name) && !secure) problems.push(`param ${param.name} looks like a secret but is not @secure()`);
    if (secure && param.defaultValue !== undefined && param.defaultValue.trim() !== "''") problems.push(`@secure() param ${param.name} has a default value`);
  }
  return problems;
}

function storageProblems(template: string): string[] {
  const problems: string[] = [];
  const accounts = resources(template).filter((resource) => resource.type === 'Microsoft.Storage/storageAccounts');
  if (accounts.length === 0) problems.push('no storage account');
  for (const account of accounts) {
    if (!/^\s*allowSharedKeyAccess:\s*false\s*$/m.test(account.body)) problems.push(`${account.symbol}: allowSharedKeyAccess is not false`);
    if (!/^\s*allowBlobPublicAccess:\s*false\s*$/m.test(account.body)) problems.push(`${account.symbol}: allowBlobPublicAccess is not false`);
    if (!/^\s*minimumTlsVersion:\s*'TLS1_2'\s*$/m.test(account.body)) problems.push(`${account.symbol}: minimumTlsVersion is not TLS1_2`);
  }
  // Keys are read once, for Defender's Send-only rule (continuous export cannot use an identity).
  for (const match of template.matchAll(/(\w+)\.listKeys\(/g)) {
    if (match[1] !== 'defenderSendRule') problems.push(`listKeys() on ${match[1]}: only the Send rule's keys may be read`);
  }
  return problems;
}

function azureYamlProblems(text: string, exists: (relative: string) => boolean): string[] {
  const problems: string[] = [];
  const document: unknown = parseYaml(text);
  if (!isRecord(document)) return ['azure.yaml is not a mapping'];
  const infra = document['infra'];
  const infraPath = isRecord(infra) && typeof infra['path'] === 'string' ? infra['path'] : undefined;
  if (infraPath !== 'infra') problems.push(`infra.path is ${String(infraPath)}, expected infra`);
  else {
    const module = isRecord(infra) && typeof infra['module'] === 'string' ? infra['module'] : 'main';
    if (!exists(path.join(infraPath, `${module}.bicep`))) problems.push(`${infraPath}/${module}.bicep does not exist`);
  }
  const services = document['services'];
  const functions = isRecord(services)
    ? Object.entries(services).filter(([, service]) => isRecord(service) && service['host'] === 'function' && service['language'] === 'js' && service['project'] === '.')
    : [];
  if (functions.length === 0) problems.push('no service with host: function, language: js, project: .');
  return problems;
}

/**
 * Interpolations `${name...}` in single-quoted strings whose root is not a declared symbol (param, var,
 * resource, module, loop or lambda variable): Bicep would refuse to compile. Write `\${` for a literal.
 */
function interpolationProblems(template: string): string[] {
  const code = template.replace(/'''[\s\S]*?'''/g, '').replace(/^\s*\/\/.*$/gm, '');
  const declared = new Set<string>();
  for (const match of code.matchAll(/^(?:param|var|resource|module|output)\s+(\w+)/gm)) declared.add(match[1] ?? '');
  for (const match of code.matchAll(/\bfor\s+(\w+)\s+in\b/g)) declared.add(match[1] ?? '');
  for (const match of code.matchAll(/\b(\w+)\s*=>/g)) declared.add(match[1] ?? '');
  const problems: string[] = [];
  for (const match of code.matchAll(/(?<!\\)\$\{\s*(\w+)/g)) {
    const name = match[1] ?? '';
    if (!declared.has(name) && !['resourceGroup', 'subscription', 'tenant', 'environment', 'deployment'].includes(name)) {
      problems.push(`\${${name}} interpolates an undeclared name (escape it as \\\${ if it is literal text)`);
    }
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

/** `text` with `search` replaced; fails loudly when `search` is not there (a mutation that changes nothing proves nothing). */
function mutate(text: string, search: string | RegExp, replacement: string): string {
  const changed = text.replace(search, replacement);
  expect(changed, `mutation ${String(search)} changed nothing`).not.toBe(text);
  return changed;
}

describe('readers', () => {
  it('finds the settings readFunctionSettings reads', () => {
    const names = settingsReadByCode(appSettingsSource);
    for (const name of ['EVENTHUB_NAME', 'EVENTHUB_CONSUMER_GROUP', 'EVENTHUB_CONNECTION', 'EVENTHUB_CONNECTION__fullyQualifiedNamespace', 'ROUTES_FILE', 'ROUTES_BLOB_URL', 'ROUTES_REFRESH_SECONDS', 'QUARANTINE_CONTAINER', 'DEADLETTER_CONTAINER', 'LEDGER_CONTAINER', 'DELIVERY_BUDGET_SECONDS', 'LEDGER_LEASE_SECONDS', 'REDRIVE_SCHEDULE', 'REDRIVE_MAX_AGE_HOURS', 'REDRIVE_MIN_INTERVAL_SECONDS', 'APPLICATIONINSIGHTS_CONNECTION_STRING', 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', 'OTEL_METRIC_EXPORT_INTERVAL']) {
      expect(names, name).toContain(name);
    }
  });

  it("finds the example rules' ${ENV} names, not the commented-out ones", () => {
    expect([...ruleEnvReferences(routesExample)].sort()).toEqual(['HEC_TOKEN', 'HEC_URL', 'ONCALL_TEAMS_URL', 'PLATFORM_TEAMS_URL', 'SMTP_URL']);
  });

  it('reads parameters with multi-line decorators', () => {
    const found = params("@description('x')\n@allowed([\n  1\n  2\n])\nparam a int = 1\n\nparam b string\n");
    expect(found.map((param) => [param.name, param.decorators.includes('@description(')])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });
});

describe('app settings', () => {
  it('sets every setting the code and the example rules read, or documents why not', () => {
    expect(settingsProblems(bicep, appSettingsSource, routesExample, infraReadme)).toEqual([]);
  });

  it('fails when a setting the rules need is missing', () => {
    expect(settingsProblems(mutate(bicep, /^ {2}SMTP_URL: .*\n/m, ''), appSettingsSource, routesExample, infraReadme)).toEqual([
      'the example rules refer to ${SMTP_URL}, the template does not set it',
    ]);
  });

  it('fails when the code reads a new setting', () => {
    const code = `${appSettingsSource}\nconst extra = (env: Env) => env['NEW_SETTING'];\n`;
    expect(settingsProblems(bicep, code, routesExample, infraReadme)).toEqual(['the code reads NEW_SETTING, the template does not set it']);
  });

  it('fails when a secret is not a Key Vault reference', () => {
    const problems = settingsProblems(mutate(bicep, /^ {2}HEC_TOKEN: .*$/m, '  HEC_TOKEN: hecToken'), appSettingsSource, routesExample, infraReadme);
    expect(problems).toEqual(['HEC_TOKEN is a secret but not a Key Vault reference: hecToken']);
  });

  it('fails when a connection-string setting is set', () => {
    const problems = settingsProblems(mutate(bicep, /^ {2}EVENTHUB_NAME: /m, "  FORWARDER_STORAGE_CONNECTION: 'x'\n  EVENTHUB_NAME: "), appSettingsSource, routesExample, infraReadme);
    expect(problems.some((problem) => problem.includes('sets FORWARDER_STORAGE_CONNECTION'))).toBe(true);
  });

  it('fails when an omission is not documented', () => {
    const code = `${appSettingsSource}\nconst extra = (env: Env) => env['AzureWebJobsStorage__clientId'];\n`;
    expect(settingsProblems(bicep, code, routesExample, infraReadme.replaceAll('AzureWebJobsStorage__clientId', 'the client id'))).toEqual([
      'AzureWebJobsStorage__clientId is left out but infra/README.md does not say so',
    ]);
  });

  it('uses identity-based connections that match the identity type', () => {
    expect(identityProblems(bicep)).toEqual([]);
    expect(identityProblems(mutate(bicep, "type: 'SystemAssigned'\n", "type: 'UserAssigned'\n"))).toContain(
      'a user-assigned identity needs AzureWebJobsStorage__credential = managedidentity and AzureWebJobsStorage__clientId',
    );
    expect(identityProblems(mutate(bicep, "version: '22'", "version: '20'"))).toEqual(["functionAppConfig.runtime is not {name: 'node', version: '22'}"]);
  });
});

describe('alert rules', () => {
  it('look for events and metrics the code writes, and include the batch-age alert', () => {
    expect(alertProblems(bicep, emittedSource)).toEqual([]);
    expect(bicep).toMatch(/customMetrics\s*\n\| where name == 'forwarder\.batch\.age'/);
  });

  it('fail when a queried event or metric is renamed in the code', () => {
    expect(alertProblems(bicep, emittedSource.replace("'forwarder.batch.age'", "'forwarder.batch.lag'"))).toEqual([
      'alert batchAgeAlert looks for forwarder.batch.age, which the code never writes',
    ]);
    expect(alertProblems(bicep, emittedSource.replaceAll("'record.deadLettered'", "'record.deadlettered'"))).toEqual([
      'alert deadLetterAlert looks for record.deadLettered, which the code never writes',
    ]);
  });
});

describe('role assignments', () => {
  it('uses exactly the four built-in role ids, each in a role assignment for the app', () => {
    expect(roleProblems(bicep)).toEqual([]);
  });

  it('fails on a wrong role id', () => {
    const problems = roleProblems(mutate(bicep, '4633458b-17de-408a-b874-0445c86b69e6', '4633458b-17de-408a-b874-0445c86b69e7'));
    expect(problems).toContain('unknown role definition id 4633458b-17de-408a-b874-0445c86b69e7');
    expect(problems).toContain('Key Vault Secrets User (4633458b-17de-408a-b874-0445c86b69e6) is missing');
  });

  it('fails when a role is declared but not assigned', () => {
    const broken = bicep.replaceAll(
      "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)",
      "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)",
    );
    expect(broken).not.toBe(bicep);
    expect(roleProblems(broken)).toEqual(['Monitoring Metrics Publisher (roles.monitoringMetricsPublisher) is not used by any role assignment']);
  });
});

describe('resources', () => {
  it('uses only known resource types and API versions', () => {
    expect(resourceTypeProblems(bicep)).toEqual([]);
  });

  it('fails on an unknown type, an unknown API version, or none', () => {
    expect(resourceTypeProblems(`${bicep}\nresource x 'Microsoft.Sql/servers@2023-08-01' = {\n}\n`)).toEqual(['x: Microsoft.Sql/servers is not an allowed resource type']);
    expect(resourceTypeProblems(mutate(bicep, "'Microsoft.KeyVault/vaults@2023-07-01'", "'Microsoft.KeyVault/vaults@2015-06-01'"))).toEqual([
      'keyVault: Microsoft.KeyVault/vaults@2015-06-01 is not a known API version (2023-07-01)',
    ]);
    expect(resourceTypeProblems(mutate(bicep, "'Microsoft.KeyVault/vaults@2023-07-01'", "'Microsoft.KeyVault/vaults'"))).toEqual(['keyVault: Microsoft.KeyVault/vaults has no API version']);
  });

  it('storage refuses shared keys and public blobs, and only the Send rule\'s keys are read', () => {
    expect(storageProblems(bicep)).toEqual([]);
    expect(storageProblems(mutate(bicep, 'allowSharedKeyAccess: false', 'allowSharedKeyAccess: true'))).toEqual(['storage: allowSharedKeyAccess is not false']);
    expect(storageProblems(`${bicep}\nvar leak = storage.listKeys().keys[0].value\n`)).toEqual(["listKeys() on storage: only the Send rule's keys may be read"]);
  });
});

describe('interpolation', () => {
  it('interpolates only declared names', () => {
    expect(interpolationProblems(bicep)).toEqual([]);
  });

  it('fails on an unescaped ${...} in a string', () => {
    expect(interpolationProblems(mutate(bicep, 'other \\${ENV} names', 'other ${ENV} names'))).toEqual([
      '${ENV} interpolates an undeclared name (escape it as \\${ if it is literal text)',
    ]);
  });
});

describe('parameters', () => {
  it('are all described, and secrets are @secure() without defaults', () => {
    expect(paramProblems(bicep)).toEqual([]);
  });

  it('fails on a parameter without @description', () => {
    expect(paramProblems(mutate(bicep, /^@description\('Name of the Event Hub Defender exports to.*\n/m, ''))).toEqual(['param eventHubName has no @description']);
  });

  it('fails on a secret parameter without @secure()', () => {
    expect(paramProblems(mutate(bicep, /@secure\(\)\n(@description\('HEC_TOKEN)/, '$1'))).toEqual(['param hecToken looks like a secret but is not @secure()']);
  });

  it('fails on a secret parameter with a default', () => {
    expect(paramProblems(mutate(bicep, /^param smtpUrl string$/m, "param smtpUrl string = 'smtps://u:p@h'"))).toEqual(['@secure() param smtpUrl has a default value']);
  });
});

/** The README's "Deploy to Azure" section: from its heading to the next `## ` heading. */
function readmeDeploySection(readme: string): string {
  const start = readme.indexOf('### Deploy to Azure');
  if (start === -1) return '';
  const end = readme.indexOf('\n## ', start);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** What the README's deployment section must name to match the template: required parameters and outputs. */
function readmeProblems(template: string, readme: string): string[] {
  const section = readmeDeploySection(readme);
  if (section === '') return ['the README has no "### Deploy to Azure" section'];
  const problems: string[] = [];
  for (const param of params(template)) {
    if (param.defaultValue === undefined && param.name !== 'environmentName' && !section.includes(`\`${param.name}\``)) {
      problems.push(`required parameter ${param.name} is not in the README's deployment section`);
    }
  }
  for (const match of template.matchAll(/^output\s+(\w+)\s/gm)) {
    if (!section.includes(`\`${match[1] ?? ''}\``)) problems.push(`output ${match[1] ?? ''} is not in the README's deployment section`);
  }
  for (const command of ['az bicep build', 'azd provision --preview', 'azd up']) if (!section.includes(command)) problems.push(`the README's deployment section does not show \`${command}\``);
  return problems;
}

describe("the README's deployment section", () => {
  const readme = read('README.md');
  it('names every required parameter and every output of the template, and how to validate it', () => {
    expect(readmeProblems(bicep, readme)).toEqual([]);
  });

  it('fails when the template gains a required parameter or an output the README does not name', () => {
    const grown = `${bicep}\n@description('x')\nparam splunkAckChannel string\n\noutput SOMETHING_NEW string = 'x'\n`;
    expect(readmeProblems(grown, readme)).toEqual([
      "required parameter splunkAckChannel is not in the README's deployment section",
      "output SOMETHING_NEW is not in the README's deployment section",
    ]);
  });
});

describe('azure.yaml', () => {
  const exists = (relative: string): boolean => existsSync(path.join(root, relative));

  it('names the infra folder and a Function service', () => {
    expect(azureYamlProblems(azureYaml, exists)).toEqual([]);
  });

  it('fails without the infra path or the function service', () => {
    expect(azureYamlProblems(mutate(azureYaml, 'path: infra', 'path: deploy'), exists)).toEqual(['infra.path is deploy, expected infra']);
    expect(azureYamlProblems(mutate(azureYaml, 'host: function', 'host: appservice'), exists)).toEqual(['no service with host: function, language: js, project: .']);
  });
});
