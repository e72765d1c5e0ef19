/**
 * A rules blob whose storage (or a proxy on the way) stalls: the read is cut at its deadline, whether no answer
 * comes at all or the body stops half-way, so a rules check can never hold every invocation behind it. And a
 * blip at start-up (a 503) is tried again before the app gives up; a 404 is not.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { createRulesSource } from '../../src/routing/rulesSource.js';
import { connectRulesBlob } from '../../src/storage/rulesBlob.js';

const SAS = 'sv=2024-08-04&sr=b&sp=r&se=2099-01-01T00%3A00%3A00Z&sig=c3RhbGxlZC1zaWduYXR1cmU%3D';
const held: ServerResponse[] = [];
let server: Server | undefined;

afterEach(async () => {
  for (const response of held.splice(0)) response.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A blob endpoint on 127.0.0.1 that answers as `behave` says. */
async function endpoint(behave: (response: ServerResponse) => void): Promise<string> {
  server = createServer((request, response) => {
    request.resume();
    held.push(response);
    behave(response);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}/devstoreaccount1/rules/routes.yaml?${SAS}`;
}

function reader(url: string) {
  return connectRulesBlob({
    url: new Secret(url, 'ROUTES_BLOB_URL'),
    connection: { connectionString: 'UseDevelopmentStorage=true' },
    storageSetting: 'AzureWebJobsStorage',
    readDeadlineMs: 600,
    retryOptions: { maxTries: 1 },
  });
}

describe('a stalled rules blob', () => {
  it('no answer at all: the read fails at its deadline, naming the stall and not the SAS', async () => {
    const url = await endpoint(() => undefined);
    const started = performance.now();
    const failure = await reader(url)
      .read('"0x1"')
      .catch((error: unknown) => error);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/cannot read the rules blob .*: no complete answer within 1 s \(storage or a proxy on the way stalled\)/);
    expect((failure as Error).message).not.toContain('c3RhbGxlZC1zaWduYXR1cmU');
  });

  it('the body stops half-way: the read fails at its deadline instead of waiting for the rest', async () => {
    const url = await endpoint((response) => {
      response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': '1000', ETag: '"0x2"', 'x-ms-blob-type': 'BlockBlob' });
      response.write('destinations:\n');
    });
    const started = performance.now();
    const failure = await reader(url)
      .read()
      .catch((error: unknown) => error);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect((failure as Error).message).toMatch(/no complete answer within 1 s/);
  });
});

describe('the first read at start-up', () => {
  const RULES = 'destinations:\n  hook: {type: webhook, url: "${HOOK_URL}"}\nroutes: []\n';
  const logs: string[] = [];
  const log = { log: (line: string) => logs.push(line), warn: (line: string) => logs.push(line), error: (line: string) => logs.push(line) };

  it('is tried again after a transient failure (503, then the rules): the app starts', async () => {
    logs.length = 0;
    let requests = 0;
    const url = await endpoint((response) => {
      requests += 1;
      if (requests === 1) {
        response.writeHead(503, { 'x-ms-error-code': 'ServerBusy' }).end();
        return;
      }
      response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(Buffer.byteLength(RULES)), ETag: '"0x3"', 'x-ms-blob-type': 'BlockBlob' });
      response.end(RULES);
    });
    const source = await createRulesSource({ reader: reader(url), build: () => ({}), refreshMs: 60_000, log, startRetryDelaysMs: [50, 50] });
    expect(requests).toBe(2);
    expect((await source.current()).version).toBe('0x3');
    expect(logs.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ event: 'rules.startRetry', retryInMs: 50, error: expect.stringMatching(/HTTP 503/) }),
    ]);
    expect(logs.join('\n')).not.toContain('c3RhbGxlZC1zaWduYXR1cmU');
  });

  it('gives up after its retries, and does not retry a 404', async () => {
    let requests = 0;
    const busy = await endpoint((response) => {
      requests += 1;
      response.writeHead(503).end();
    });
    const failure = await createRulesSource({ reader: reader(busy), build: () => ({}), refreshMs: 60_000, log, startRetryDelaysMs: [20, 20] }).catch((error: unknown) => error);
    expect(requests).toBe(3);
    expect((failure as Error).message).toMatch(/ROUTES_BLOB_URL: cannot read the rules blob .*HTTP 503/);
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

    requests = 0;
    const missing = await endpoint((response) => {
      requests += 1;
      response.writeHead(404, { 'x-ms-error-code': 'BlobNotFound' }).end();
    });
    const gone = await createRulesSource({ reader: reader(missing), build: () => ({}), refreshMs: 60_000, log, startRetryDelaysMs: [20, 20] }).catch((error: unknown) => error);
    expect(requests).toBe(1);
    expect((gone as Error).message).toMatch(/the container or the blob does not exist/);
  });
});
