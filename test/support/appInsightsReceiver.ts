/**
 * A stand-in for Application Insights' ingestion endpoint (`POST <IngestionEndpoint>/v2.1/track`): it takes
 * the JSON array of envelopes (gzip or not) that Azure Monitor's exporters send, keeps them, and answers as
 * the service does (`itemsReceived`, `itemsAccepted`, `errors`). Only 127.0.0.1, ephemeral port.
 *
 * HTTPS only, as the service: the exporter rewrites an `http://` ingestion endpoint to `https://`. The
 * certificate is test/support/tls/localhost.crt, which the test processes trust through NODE_EXTRA_CA_CERTS
 * (set by the vitest configs before any worker starts; see {@link TEST_CA_FILE}).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One metric data point as the exporter writes it (`data.baseData.metrics[0]` and its properties). */
export interface MetricPoint {
  readonly name: string;
  readonly value: number;
  readonly count?: number;
  readonly min?: number;
  readonly max?: number;
  readonly properties: Readonly<Record<string, string>>;
  readonly roleName?: string;
}

export interface AppInsightsReceiver {
  /** A connection string pointing at this receiver. */
  readonly connectionString: string;
  readonly instrumentationKey: string;
  /** Every envelope received, in order. */
  readonly envelopes: Record<string, unknown>[];
  /** Request headers of every request, in order (to check authentication and encoding). */
  readonly requests: { readonly path: string; readonly headers: IncomingMessage['headers'] }[];
  /** The metric data points received, flattened. */
  metrics(): MetricPoint[];
  /** The sum of the values of `name` whose properties include `where`. */
  total(name: string, where?: Readonly<Record<string, string>>): number;
  close(): Promise<void>;
}

export const TEST_INSTRUMENTATION_KEY = '00000000-1111-2222-3333-444444444444';

const TLS_FOLDER = path.resolve(import.meta.dirname, 'tls');
/** The self-signed certificate (CN for 127.0.0.1 and localhost) of the stand-ins that speak HTTPS. */
export const TEST_CA_FILE = path.join(TLS_FOLDER, 'localhost.crt');

export async function startAppInsightsReceiver(): Promise<AppInsightsReceiver> {
  const envelopes: Record<string, unknown>[] = [];
  const requests: { path: string; headers: IncomingMessage['headers'] }[] = [];
  const tls = { cert: readFileSync(TEST_CA_FILE), key: readFileSync(path.join(TLS_FOLDER, 'localhost.key')) };
  const server: Server = createServer(tls, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({ path: request.url ?? '', headers: request.headers });
      if (request.method !== 'POST' || !(request.url ?? '').endsWith('/track')) {
        response.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      try {
        if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const parsed: unknown = JSON.parse(body.toString('utf8'));
        const items = Array.isArray(parsed) ? parsed : [parsed];
        for (const item of items) if (item && typeof item === 'object') envelopes.push(item as Record<string, unknown>);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, appId: null, errors: [] }));
      } catch {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ itemsReceived: 0, itemsAccepted: 0, errors: [{ index: 0, statusCode: 400, message: 'invalid JSON' }] }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const metrics = (): MetricPoint[] =>
    envelopes.flatMap((envelope) => {
      const data = envelope['data'] as { baseType?: string; baseData?: { metrics?: { name: string; value: number; count?: number; min?: number; max?: number }[]; properties?: Record<string, string> } } | undefined;
      if (data?.baseType !== 'MetricData') return [];
      const tags = (envelope['tags'] ?? {}) as Record<string, string>;
      const roleName = tags['ai.cloud.role'];
      return (data.baseData?.metrics ?? []).map((metric) => ({
        ...metric,
        properties: data.baseData?.properties ?? {},
        ...(roleName !== undefined ? { roleName } : {}),
      }));
    });

  return {
    connectionString: `InstrumentationKey=${TEST_INSTRUMENTATION_KEY};IngestionEndpoint=https://127.0.0.1:${port}/`,
    instrumentationKey: TEST_INSTRUMENTATION_KEY,
    envelopes,
    requests,
    metrics,
    total: (name, where = {}) =>
      metrics()
        .filter((point) => point.name === name && Object.entries(where).every(([key, value]) => point.properties[key] === value))
        .reduce((sum, point) => sum + point.value, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
