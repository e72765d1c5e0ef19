/**
 * The app settings the Event Hub function reads, validated once at start-up with precise messages. Code
 * downstream sees only the frozen, typed result. Secrets (connection strings) are never echoed back.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { containerNameProblem, DEFAULT_QUARANTINE_CONTAINER } from '../storage/blobQuarantine.js';
import { maskBlobUrl, parseBlobUrl } from '../storage/rulesBlob.js';
import { packageRoot } from './packageRoot.js';
import { Secret } from './secret.js';
import { readTelemetrySettings, type TelemetrySettings } from '../telemetry/azureMonitor.js';

export interface FunctionSettings {
  /** Name of the Event Hub (`EVENTHUB_NAME`); the trigger resolves `%EVENTHUB_NAME%` itself. */
  readonly eventHubName: string;
  /** Dedicated consumer group (`EVENTHUB_CONSUMER_GROUP`). */
  readonly consumerGroup: string;
  /** How the trigger connects: a connection string or identity (`EVENTHUB_CONNECTION__fullyQualifiedNamespace`). */
  readonly eventHubConnection: 'connectionString' | 'identity';
  /**
   * Where the routing rules come from: the blob `ROUTES_BLOB_URL` names when it is set (re-read when its ETag
   * changes), else the file deployed with the app (`ROUTES_FILE`, default `config/routes.yaml` in the app).
   */
  readonly routes: RoutesLocation;
  /**
   * Longest time between two checks of the rules blob's ETag (`ROUTES_REFRESH_SECONDS`, default 60, 5 to
   * 3,600). Read whatever the source; only a blob is checked again.
   */
  readonly routesRefreshMs: number;
  /**
   * Storage connection string for the forwarder's own blobs: quarantine, dead letters, notification ledger
   * (`FORWARDER_STORAGE_CONNECTION`, default `AzureWebJobsStorage`).
   */
  readonly storage: ForwarderStorage;
  /** Blob container of quarantined records (`QUARANTINE_CONTAINER`, default `quarantine`). */
  readonly quarantineContainer: string;
  /** Blob container of dead letters (`DEADLETTER_CONTAINER`, default `deadletter`), same account. */
  readonly deadLetterContainer: string;
  /** Blob container of the notification ledger (`LEDGER_CONTAINER`, default `ledger`), same account. */
  readonly ledgerContainer: string;
  /** Time budget for delivering one batch to one destination (`DELIVERY_BUDGET_SECONDS`, default 120). */
  readonly deliveryBudgetMs: number;
  /**
   * How long a notification claim of a run that stopped (a crash, a kill) blocks that notification before
   * another run may send it (`LEDGER_LEASE_SECONDS`, default 600). Longer than any delivery can take.
   */
  readonly ledgerLeaseMs: number;
  /**
   * When the re-drive timer runs (`REDRIVE_SCHEDULE`): an NCRONTAB expression with seconds, default
   * {@link DEFAULT_REDRIVE_SCHEDULE} (every 5 minutes).
   */
  readonly redriveSchedule: string;
  /** A dead letter older than this that fails again is expired (`REDRIVE_MAX_AGE_HOURS`, default 168: 7 days). */
  readonly redriveMaxAgeMs: number;
  /** Spacing after a letter's first failed re-drive, doubling after each (`REDRIVE_MIN_INTERVAL_SECONDS`, default 60). */
  readonly redriveMinIntervalMs: number;
  /**
   * Metrics export to Application Insights (`APPLICATIONINSIGHTS_CONNECTION_STRING`,
   * `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`, `OTEL_METRIC_EXPORT_INTERVAL`); absent, nothing is exported.
   */
  readonly telemetry?: TelemetrySettings;
}

/** The re-drive timer's schedule when `REDRIVE_SCHEDULE` is not set: every 5 minutes, on the minute. */
export const DEFAULT_REDRIVE_SCHEDULE = '0 */5 * * * *';

/** NCRONTAB field names, in order, for messages. */
const NCRONTAB_FIELDS = ['second', 'minute', 'hour', 'day', 'month', 'day-of-week'] as const;

/**
 * How the forwarder reaches its blob storage (quarantine, dead letters, ledger): a connection string, or an
 * account reached with an Entra ID credential (the app's managed identity, "Storage Blob Data Owner").
 * `setting` names where it came from, for messages.
 */
export type ForwarderStorage =
  | { readonly kind: 'connectionString'; readonly setting: string; readonly connectionString: string }
  | { readonly kind: 'identity'; readonly setting: string; readonly accountUrl: string; readonly clientId?: string };

/**
 * The routing rules' location. A blob's URL may carry a SAS, so it is a {@link Secret} (it prints as
 * `<redacted>`); `origin` is the URL with its query string masked, for messages, logs and the health report.
 */
export type RoutesLocation =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'blob'; readonly url: Secret; readonly origin: string; readonly hasSas: boolean };

/** `ROUTES_REFRESH_SECONDS` when unset. */
export const DEFAULT_ROUTES_REFRESH_SECONDS = 60;

export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid app settings:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'SettingsError';
  }
}

/** Prefix of the trigger's `connection` setting. */
export const EVENTHUB_CONNECTION_SETTING = 'EVENTHUB_CONNECTION';

type Env = Readonly<Record<string, string | undefined>>;

export function readFunctionSettings(env: Env = process.env): FunctionSettings {
  const problems: string[] = [];
  const required = (name: string, what: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is not set: ${what}`);
    return value ?? '';
  };

  const eventHubName = required('EVENTHUB_NAME', 'the name of the Event Hub Defender exports to');
  const consumerGroup = required('EVENTHUB_CONSUMER_GROUP', 'a consumer group dedicated to the forwarder (not $Default)');
  if (consumerGroup.toLowerCase() === '$default') {
    problems.push('EVENTHUB_CONSUMER_GROUP is $Default: create a consumer group for the forwarder so other readers do not steal its events');
  }

  let eventHubConnection: FunctionSettings['eventHubConnection'] = 'connectionString';
  const connectionString = env[EVENTHUB_CONNECTION_SETTING]?.trim();
  const namespace = env[`${EVENTHUB_CONNECTION_SETTING}__fullyQualifiedNamespace`]?.trim();
  if (namespace) {
    eventHubConnection = 'identity';
    if (!/^[a-z0-9.-]+(:\d+)?$/i.test(namespace)) {
      problems.push(`${EVENTHUB_CONNECTION_SETTING}__fullyQualifiedNamespace must be a host name like contoso.servicebus.windows.net`);
    }
  } else if (!connectionString) {
    problems.push(
      `${EVENTHUB_CONNECTION_SETTING} is not set: give a connection string (Listen rights), or ${EVENTHUB_CONNECTION_SETTING}__fullyQualifiedNamespace for a managed identity with "Azure Event Hubs Data Receiver"`,
    );
  } else if (!/(^|;)\s*Endpoint\s*=\s*sb:\/\//i.test(connectionString)) {
    problems.push(`${EVENTHUB_CONNECTION_SETTING} is not an Event Hubs connection string (no Endpoint=sb://...)`);
  }

  const routes = readRoutesLocation(env, problems);
  // Bounds: more often than every 5 s is a request per invocation on a busy hub for no gain; an hour is as
  // long as anyone should wait for a rules change to take effect.
  const routesRefreshSeconds = numberSetting(env, 'ROUTES_REFRESH_SECONDS', DEFAULT_ROUTES_REFRESH_SECONDS, 5, 3_600, 'seconds', 'an hour', problems);

  const storage = readForwarderStorage(env, problems);
  const quarantineContainer = env['QUARANTINE_CONTAINER']?.trim() || DEFAULT_QUARANTINE_CONTAINER;
  const containerProblem = containerNameProblem(quarantineContainer);
  if (containerProblem !== undefined) problems.push(`QUARANTINE_CONTAINER "${quarantineContainer}" ${containerProblem}`);

  const container = (setting: string, fallback: string): string => {
    const name = env[setting]?.trim() || fallback;
    const problem = containerNameProblem(name);
    if (problem !== undefined) problems.push(`${setting} "${name}" ${problem}`);
    return name;
  };
  const deadLetterContainer = container('DEADLETTER_CONTAINER', 'deadletter');
  const ledgerContainer = container('LEDGER_CONTAINER', 'ledger');
  const budget = deliveryBudgetSeconds(env);
  const budgetSeconds = budget ?? DEFAULT_DELIVERY_BUDGET_SECONDS;
  if (budget === undefined) {
    problems.push(`DELIVERY_BUDGET_SECONDS must be a number of seconds from 5 to 300 (the function timeout is 10 minutes)`);
  }

  const redriveSchedule = env['REDRIVE_SCHEDULE']?.trim() || DEFAULT_REDRIVE_SCHEDULE;
  const scheduleProblem = ncrontabProblem(redriveSchedule);
  if (scheduleProblem !== undefined) problems.push(`REDRIVE_SCHEDULE "${redriveSchedule}" ${scheduleProblem}`);
  // The widest spacing between two re-drives of a letter is 6 hours (DEFAULT_REDRIVE_MAX_INTERVAL_MS): the
  // first spacing cannot be wider.
  const redriveMaxAgeHours = readRedriveMaxAgeHours(env, problems);
  const redriveMinIntervalSeconds = numberSetting(env, 'REDRIVE_MIN_INTERVAL_SECONDS', 60, 1, 21_600, 'seconds', 'the widest spacing, 6 hours', problems);

  const ledgerLeaseSeconds = readLedgerLeaseSeconds(env, problems);
  const telemetry = readTelemetrySettings(env, problems);

  if (problems.length > 0) throw new SettingsError(problems);
  return Object.freeze({
    ledgerLeaseMs: ledgerLeaseSeconds * 1000,
    eventHubName,
    consumerGroup,
    eventHubConnection,
    routes,
    routesRefreshMs: Math.round(routesRefreshSeconds * 1000),
    storage,
    quarantineContainer,
    deadLetterContainer,
    ledgerContainer,
    deliveryBudgetMs: Math.round(budgetSeconds * 1000),
    redriveSchedule,
    redriveMaxAgeMs: Math.round(redriveMaxAgeHours * 3_600_000),
    redriveMinIntervalMs: Math.round(redriveMinIntervalSeconds * 1000),
    ...(telemetry ? { telemetry } : {}),
  });
}

/**
 * The rules' location: `ROUTES_BLOB_URL` when set (the deployed file is then not needed), else `ROUTES_FILE`
 * (relative to the app root), which must exist. Problems are added to `problems`; a blob URL's query string
 * (a SAS) is never repeated.
 */
function readRoutesLocation(env: Env, problems: string[]): RoutesLocation {
  const blobUrl = env['ROUTES_BLOB_URL']?.trim();
  if (blobUrl) {
    const problem = routesBlobUrlProblem(blobUrl);
    if (problem !== undefined) problems.push(problem);
    const hasSas = problem === undefined && new URL(blobUrl).searchParams.has('sig');
    return { kind: 'blob', url: new Secret(blobUrl, 'ROUTES_BLOB_URL'), origin: maskBlobUrl(blobUrl), hasSas };
  }
  const routesSetting = env['ROUTES_FILE']?.trim();
  const routesFile = path.resolve(packageRoot(), routesSetting || path.join('config', 'routes.yaml'));
  if (!existsSync(routesFile)) {
    problems.push(
      routesSetting
        ? `ROUTES_FILE points to ${routesFile}, which does not exist`
        : `no routing rules: deploy config/routes.yaml with the app (start from config/routes.example.yaml), set ROUTES_FILE, or set ROUTES_BLOB_URL to a blob holding them`,
    );
  }
  return { kind: 'file', path: routesFile };
}

const BLOB_URL_EXAMPLE = 'https://<account>.blob.core.windows.net/<container>/routes.yaml';

/**
 * Why `text` cannot be `ROUTES_BLOB_URL`, or undefined. Messages show the URL with its query string masked
 * (a SAS is a secret); what a SAS says about itself (`sp`, `se`) is not secret and is checked here, so an
 * expired or write-only SAS is named at start-up rather than reported as a bare 403.
 */
export function routesBlobUrlProblem(text: string, now: Date = new Date()): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `ROUTES_BLOB_URL is not a URL: give the rules blob's URL, such as ${BLOB_URL_EXAMPLE}`;
  }
  const shown = `ROUTES_BLOB_URL (${maskBlobUrl(text)})`;
  if (url.username !== '' || url.password !== '') return `ROUTES_BLOB_URL must not hold a user name or password: authenticate with a SAS in the query string, or the forwarder's storage identity`;
  const loopback = ['127.0.0.1', 'localhost'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    return `${shown} must use https:// (http:// only for 127.0.0.1 or localhost, such as Azurite)`;
  }
  if (url.hash !== '') return `${shown} must not have a #fragment`;
  if (parseBlobUrl(url) === undefined) {
    return `${shown} does not name a container and a blob: use ${BLOB_URL_EXAMPLE}${loopback ? ' (Azurite: http://127.0.0.1:<port>/<account>/<container>/<blob>)' : ''}`;
  }
  if (url.search !== '') {
    const query = url.searchParams;
    if (!query.has('sig')) {
      return `${shown} has a query string that is not a SAS (no sig=): give the URL alone, for the forwarder's storage identity or connection, or with a read SAS`;
    }
    const permissions = query.get('sp');
    if (permissions !== null && !permissions.includes('r')) return `${shown}: the SAS does not allow reading (sp=${permissions}): it needs r`;
    const expiry = query.get('se');
    const expiresAt = expiry !== null ? Date.parse(expiry) : Number.NaN;
    if (Number.isFinite(expiresAt) && expiresAt <= now.getTime()) {
      return `${shown}: the SAS expired at ${new Date(expiresAt).toISOString()}: issue a new one`;
    }
  }
  return undefined;
}

/**
 * The forwarder's storage, first found of: `FORWARDER_STORAGE_CONNECTION` (a connection string);
 * `FORWARDER_STORAGE__blobServiceUri` or `FORWARDER_STORAGE__accountName` (identity); `AzureWebJobsStorage`
 * (a connection string); `AzureWebJobsStorage__blobServiceUri` or `AzureWebJobsStorage__accountName`
 * (identity, the host's own storage, as Flex Consumption deploys it). `<prefix>__clientId` picks a
 * user-assigned identity. Problems are added to `problems`; values are never echoed (they may hold keys).
 */
export function readForwarderStorage(env: Env, problems: string[]): ForwarderStorage {
  const fallback: ForwarderStorage = { kind: 'connectionString', setting: 'AzureWebJobsStorage', connectionString: '' };
  for (const prefix of ['FORWARDER_STORAGE', 'AzureWebJobsStorage']) {
    const connectionSetting = prefix === 'FORWARDER_STORAGE' ? 'FORWARDER_STORAGE_CONNECTION' : prefix;
    const connectionString = env[connectionSetting]?.trim();
    if (connectionString) {
      if (connectionString !== 'UseDevelopmentStorage=true' && !/AccountName=|BlobEndpoint=/i.test(connectionString)) {
        problems.push(`${connectionSetting} is not a storage connection string (no AccountName= or BlobEndpoint=)`);
      } else if (!parsesAsStorageConnection(connectionString)) {
        // The SDK's own message is not repeated: it is about the value, which holds the account key.
        problems.push(`${connectionSetting} cannot be read as a storage connection string (check AccountName, AccountKey, BlobEndpoint or SharedAccessSignature)`);
      }
      return { kind: 'connectionString', setting: connectionSetting, connectionString };
    }
    const serviceUri = env[`${prefix}__blobServiceUri`]?.trim();
    const accountName = env[`${prefix}__accountName`]?.trim();
    const clientId = env[`${prefix}__clientId`]?.trim();
    const withClient = clientId ? { clientId } : {};
    if (serviceUri) {
      let url: URL | undefined;
      try {
        url = new URL(serviceUri);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(url.hostname)))) {
        problems.push(`${prefix}__blobServiceUri must be an https:// URL such as https://<account>.blob.core.windows.net`);
      }
      return { kind: 'identity', setting: `${prefix}__blobServiceUri`, accountUrl: serviceUri.replace(/\/+$/, ''), ...withClient };
    }
    if (accountName) {
      if (!/^[a-z0-9]{3,24}$/.test(accountName)) {
        problems.push(`${prefix}__accountName must be a storage account name (3 to 24 lower-case letters and digits)`);
      }
      return { kind: 'identity', setting: `${prefix}__accountName`, accountUrl: `https://${accountName}.blob.core.windows.net`, ...withClient };
    }
  }
  problems.push(
    'storage: set FORWARDER_STORAGE_CONNECTION or AzureWebJobsStorage to a connection string, or AzureWebJobsStorage__accountName (or FORWARDER_STORAGE__accountName) for the app\'s managed identity with "Storage Blob Data Owner"',
  );
  return fallback;
}

/** Delivery budget when DELIVERY_BUDGET_SECONDS is unset, in seconds. */
export const DEFAULT_DELIVERY_BUDGET_SECONDS = 120;

/**
 * `DELIVERY_BUDGET_SECONDS` (5 to 300; the default when unset), or undefined when it is out of range. The
 * same bounds for the Function and the command line: host.json's functionTimeout is 10 minutes, destinations
 * are delivered in parallel, then dead letters are written, and 5 minutes at most leaves room for both.
 */
export function deliveryBudgetSeconds(env: Env): number | undefined {
  const text = env['DELIVERY_BUDGET_SECONDS']?.trim();
  if (!text) return DEFAULT_DELIVERY_BUDGET_SECONDS;
  const seconds = Number(text);
  return Number.isFinite(seconds) && seconds >= 5 && seconds <= 300 ? seconds : undefined;
}

/**
 * `LEDGER_LEASE_SECONDS` (10 to 86,400, default 600), read by the Function and the command line alike; a
 * problem is added to `problems`.
 */
/** `REDRIVE_MAX_AGE_HOURS` (default 168: 7 days), for the re-drive timer and `redrive`'s default `--max-age`. */
export function readRedriveMaxAgeHours(env: Env, problems: string[]): number {
  return numberSetting(env, 'REDRIVE_MAX_AGE_HOURS', 168, 1, 8_760, 'hours', 'a year', problems);
}

export function readLedgerLeaseSeconds(env: Env, problems: string[]): number {
  return numberSetting(env, 'LEDGER_LEASE_SECONDS', 600, 10, 86_400, 'seconds', 'a day', problems);
}

/** A number setting from `min` to `max` (`maxMeaning` says why the limit), or `fallback` when unset. */
function numberSetting(env: Env, name: string, fallback: number, min: number, max: number, unit: string, maxMeaning: string, problems: string[]): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    problems.push(`${name} must be a number of ${unit} from ${min} to ${max} (${maxMeaning}); it is "${text}"`);
    return fallback;
  }
  return value;
}

/**
 * Why `expression` is not a timer schedule the Functions host accepts, or undefined: six fields
 * (NCRONTAB with seconds), each digits, names (`MON`, `JAN`), `*`, `/`, `,` and `-` only.
 */
export function ncrontabProblem(expression: string): string | undefined {
  const fields = expression.split(/\s+/);
  if (fields.length !== NCRONTAB_FIELDS.length) {
    return `must be an NCRONTAB expression with six fields (${NCRONTAB_FIELDS.join(' ')}), such as "${DEFAULT_REDRIVE_SCHEDULE}"; it has ${fields.length}`;
  }
  const bad = fields.findIndex((field) => !/^[0-9A-Za-z*/,-]+$/.test(field) || /^[/,-]|[/,-]$/.test(field));
  if (bad === -1) return undefined;
  return `has a malformed ${NCRONTAB_FIELDS[bad]} field "${fields[bad]}": use digits, names, *, / (step), , (list) and - (range)`;
}

/** Whether the storage SDK accepts the connection string (it parses; nothing is sent). */
function parsesAsStorageConnection(connectionString: string): boolean {
  try {
    BlobServiceClient.fromConnectionString(connectionString);
    return true;
  } catch {
    return false;
  }
}
