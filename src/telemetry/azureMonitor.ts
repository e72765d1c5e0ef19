/**
 * Exports the metrics of ./metrics.ts to Application Insights with OpenTelemetry, when
 * `APPLICATIONINSIGHTS_CONNECTION_STRING` is set: an OpenTelemetry `MeterProvider` with a periodic reader and
 * Azure Monitor's metric exporter (`@azure/monitor-opentelemetry-exporter`). The metrics land in
 * `customMetrics` (Application Insights) and `AppMetrics` (its Log Analytics workspace).
 *
 * Why the exporter, not the whole `@azure/monitor-opentelemetry` distro: the distro also installs tracing, a
 * second log pipeline and HTTP auto-instrumentation (the Functions host already sends logs and requests, so
 * they would arrive twice), and its VM resource detector probes the Azure instance metadata endpoint at every
 * start, which cannot be turned off. Its releases that still run on Node 20 pin this same exporter. The
 * exporter's own usage telemetry ("statsbeat", to Microsoft; it also probes that endpoint off Azure) stops
 * with `APPLICATION_INSIGHTS_NO_STATSBEAT=true`, which the command line sets unless it is set already.
 *
 * With `APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD` (what infra/ deploys: local
 * authentication off) the exporter gets a token from the app's managed identity ("Monitoring Metrics
 * Publisher"); `;ClientId=<guid>` picks a user-assigned identity.
 */
import { metrics } from '@opentelemetry/api';
import type { TokenCredential } from '@azure/identity';

type Env = Readonly<Record<string, string | undefined>>;

export const CONNECTION_STRING_SETTING = 'APPLICATIONINSIGHTS_CONNECTION_STRING';
export const AUTHENTICATION_STRING_SETTING = 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING';
/** OpenTelemetry's own name for the export interval, in milliseconds. */
export const EXPORT_INTERVAL_SETTING = 'OTEL_METRIC_EXPORT_INTERVAL';
export const DEFAULT_EXPORT_INTERVAL_MS = 60_000;

export interface TelemetrySettings {
  readonly connectionString: string;
  /** Entra ID authentication (`Authorization=AAD`), with a user-assigned identity's client id if given. */
  readonly entraId?: { readonly clientId?: string };
  readonly exportIntervalMs: number;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Reads the telemetry settings: `undefined` when no connection string is set (metrics are then not exported).
 * Problems are added to `problems`, naming settings, never quoting values.
 */
export function readTelemetrySettings(env: Env, problems: string[]): TelemetrySettings | undefined {
  const connectionString = env[CONNECTION_STRING_SETTING]?.trim();
  const intervalText = env[EXPORT_INTERVAL_SETTING]?.trim();
  let exportIntervalMs = DEFAULT_EXPORT_INTERVAL_MS;
  if (intervalText) {
    const value = Number(intervalText);
    if (!Number.isInteger(value) || value < 1000 || value > 3_600_000) {
      problems.push(`${EXPORT_INTERVAL_SETTING} must be a whole number of milliseconds from 1000 to 3600000 (default ${DEFAULT_EXPORT_INTERVAL_MS})`);
    } else {
      exportIntervalMs = value;
    }
  }
  const authentication = env[AUTHENTICATION_STRING_SETTING]?.trim();
  if (!connectionString) {
    if (authentication) problems.push(`${AUTHENTICATION_STRING_SETTING} is set but ${CONNECTION_STRING_SETTING} is not: metrics need the connection string`);
    return undefined;
  }

  const fields = parseFields(connectionString);
  const key = fields.get('instrumentationkey');
  if (key === undefined) {
    problems.push(`${CONNECTION_STRING_SETTING} has no InstrumentationKey=: copy the connection string from the Application Insights resource's Overview`);
  } else if (!GUID.test(key)) {
    problems.push(`${CONNECTION_STRING_SETTING} has an InstrumentationKey that is not a GUID`);
  }
  const ingestion = fields.get('ingestionendpoint');
  if (ingestion !== undefined && !isAllowedEndpoint(ingestion)) {
    problems.push(`${CONNECTION_STRING_SETTING} has an IngestionEndpoint that is not an https:// URL`);
  }

  let entraId: TelemetrySettings['entraId'];
  if (authentication) {
    const auth = parseFields(authentication);
    if (auth.get('authorization')?.toLowerCase() !== 'aad') {
      problems.push(`${AUTHENTICATION_STRING_SETTING} must be "Authorization=AAD" (optionally ";ClientId=<guid>" for a user-assigned identity)`);
    }
    const clientId = auth.get('clientid');
    if (clientId !== undefined && !GUID.test(clientId)) problems.push(`${AUTHENTICATION_STRING_SETTING} has a ClientId that is not a GUID`);
    entraId = clientId ? { clientId } : {};
  }
  return { connectionString, exportIntervalMs, ...(entraId ? { entraId } : {}) };
}

/** `Key=Value;Key=Value`, keys lower-cased; a value may contain `=`. */
function parseFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  return fields;
}

function isAllowedEndpoint(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
  } catch {
    return false;
  }
}

/** A running export: `flush` sends what was recorded so far, `shutdown` flushes and stops. */
export interface MetricsExport {
  /** One line for logs: where metrics go and how often, without the key. */
  readonly description: string;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface MetricsExportOptions {
  /** Defaults to the managed identity (`DefaultAzureCredential`) when the settings ask for Entra ID. */
  readonly credential?: TokenCredential;
  /** Where the exporter keeps telemetry it could not send yet (default: its own folder under the OS temp). */
  readonly storageDirectory?: string;
  readonly disableOfflineStorage?: boolean;
  /** `service.name` (Application Insights `cloud_RoleName`); default the Function App's name, else `defender-forwarder`. */
  readonly serviceName?: string;
}

let running: MetricsExport | undefined;

/**
 * Starts exporting: registers a global meter provider, so every instrument of ./metrics.ts records into it.
 * One export per process; a second call returns the first.
 */
export async function startMetricsExport(settings: TelemetrySettings, options: MetricsExportOptions = {}): Promise<MetricsExport> {
  if (running) return running;
  const [{ AzureMonitorMetricExporter }, { MeterProvider, PeriodicExportingMetricReader }, { resourceFromAttributes }] = await Promise.all([
    import('@azure/monitor-opentelemetry-exporter'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/resources'),
  ]);
  let credential = options.credential;
  if (credential === undefined && settings.entraId) {
    const { DefaultAzureCredential } = await import('@azure/identity');
    credential = new DefaultAzureCredential(settings.entraId.clientId ? { managedIdentityClientId: settings.entraId.clientId } : {});
  }
  const exporter = new AzureMonitorMetricExporter({
    connectionString: settings.connectionString,
    ...(credential ? { credential } : {}),
    ...(options.storageDirectory !== undefined ? { storageDirectory: options.storageDirectory } : {}),
    ...(options.disableOfflineStorage !== undefined ? { disableOfflineStorage: options.disableOfflineStorage } : {}),
  });
  const serviceName = options.serviceName ?? (process.env['WEBSITE_SITE_NAME']?.trim() || 'defender-forwarder');
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: settings.exportIntervalMs, exportTimeoutMillis: Math.min(30_000, settings.exportIntervalMs) })],
  });
  metrics.setGlobalMeterProvider(provider);
  const export_: MetricsExport = {
    description: `metrics exported to Application Insights every ${Math.round(settings.exportIntervalMs / 1000)} s${credential ? ' with Entra ID authentication' : ''}`,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      if (running === export_) running = undefined;
      try {
        await provider.shutdown();
      } finally {
        metrics.disable();
      }
    },
  };
  running = export_;
  return export_;
}

/**
 * Sends what was recorded since the last export and stops exporting; nothing when no export runs. For a host
 * that is shutting down (the Functions `appTerminate` hook), so that the last interval is not lost.
 */
export async function stopMetricsExport(): Promise<void> {
  await running?.shutdown();
}
