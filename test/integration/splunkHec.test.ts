import type { AxiosInstance } from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/model/finding.js';
import type { Destination } from '../../src/routing/types.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { SinkConfigError, type SinkContext } from '../../src/sinks/settings.js';
import type { AttemptResult, DeliveryError, DeliveryItem } from '../../src/sinks/sink.js';
import { readSplunkHecConfig } from '../../src/sinks/splunk-hec/config.js';
import { encodeHecBatches } from '../../src/sinks/splunk-hec/encode.js';
import {
  HEC_ANSWERS,
  classifyHecResponse,
  createSplunkHecSink,
  createSplunkHecSinkFromConfig,
  hecEndpoint,
} from '../../src/sinks/splunk-hec/sink.js';
import { startHecReceiver, type HecReceiver, type HecReceiverOptions } from '../support/hecReceiver.js';
import { makeAlert } from '../support/findings.js';

const TOKEN = '7e57c0de-1111-4222-8333-944444444444';
const DISABLED_TOKEN = 'd15ab1ed-1111-4222-8333-944444444444';

let http: AxiosInstance;
let receiver: HecReceiver | undefined;

beforeAll(() => {
  http = createHttpClient();
});
afterAll(() => {
  closeHttpClient(http);
});
afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

async function start(options: Partial<HecReceiverOptions> = {}): Promise<HecReceiver> {
  receiver = await startHecReceiver({ token: TOKEN, disabledTokens: [DISABLED_TOKEN], ...options });
  return receiver;
}

function destination(settings: Record<string, unknown> = {}): Destination {
  return {
    name: 'splunk',
    type: 'splunk-hec',
    notify: false,
    dedupe: false,
    settings: { url: '${HEC_URL}', token: '${HEC_TOKEN}', ...settings },
    envRefs: ['HEC_URL', 'HEC_TOKEN'],
    line: 1,
  };
}

function context(hec: HecReceiver, token = TOKEN): SinkContext {
  return { env: { HEC_URL: hec.url, HEC_TOKEN: token }, http };
}

function items(count: number, finding: (index: number) => Partial<Finding> = () => ({})): DeliveryItem[] {
  return Array.from({ length: count }, (_, index) => ({
    input: `test.jsonl:${index + 1}`,
    finding: makeAlert({ id: `alert-${index}`, raw: { SystemAlertId: `alert-${index}`, n: index }, ...finding(index) }),
  }));
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

/** `ok`, or `retry:<reason>` / `fail:<reason>` per item; also checks that no message holds the token. */
function outcomes(results: readonly AttemptResult[]): string[] {
  return results.map((result) => {
    if (result.ok) return 'ok';
    expect(result.error.message).not.toContain(TOKEN);
    expect(result.error.message).toContain('splunk');
    return `${result.error.retryable ? 'retry' : 'fail'}:${result.error.reason}`;
  });
}

function errorOf(result: AttemptResult | undefined): DeliveryError {
  if (result === undefined || result.ok) throw new Error('expected a failure');
  return result.error;
}

function receivedIds(hec: HecReceiver): unknown[] {
  return hec.events.map((event) => (event['event'] as { SystemAlertId?: unknown }).SystemAlertId);
}

describe('splunk-hec sink against the HEC stand-in', () => {
  it('delivers a batch in one gzipped request with the token, and Splunk indexes the records untouched', async () => {
    const hec = await start();
    const sink = createSplunkHecSink(destination({ index: 'defender' }), context(hec));
    const batch = items(3);
    expect(outcomes(await sink.send(batch, signal()))).toEqual(['ok', 'ok', 'ok']);
    expect(hec.eventRequests()).toHaveLength(1);
    const request = hec.eventRequests()[0];
    expect(request?.path).toBe('/services/collector/event');
    expect(request?.headers.authorization).toBe(`Splunk ${TOKEN}`);
    expect(request?.headers['content-encoding']).toBe('gzip');
    expect(request?.headers['x-splunk-request-channel']).toBeUndefined();
    expect(request?.bodyBytes).toBeLessThan(request?.uncompressedBytes ?? 0);
    expect(hec.events.map((event) => event['event'])).toEqual(batch.map((entry) => entry.finding.raw));
    expect(hec.events.map((event) => event['index'])).toEqual(['defender', 'defender', 'defender']);
    expect(sink).toMatchObject({ name: 'splunk', type: 'splunk-hec', notify: false, maxBatchItems: 500 });
  });

  it('sends plain JSON when gzip is off, to a base URL given with the collector path', async () => {
    const hec = await start();
    const sink = createSplunkHecSink(destination({ gzip: false, url: `${hec.url}/services/collector/` }), { env: { HEC_TOKEN: TOKEN }, http });
    expect(outcomes(await sink.send(items(2), signal()))).toEqual(['ok', 'ok']);
    const request = hec.eventRequests()[0];
    expect(request?.path).toBe('/services/collector/event');
    expect(request?.headers['content-encoding']).toBeUndefined();
    expect(request?.bodyBytes).toBe(request?.uncompressedBytes);
    expect(hec.events).toHaveLength(2);
  });

  it('previews exactly what it sends, uncompressed, without the token', async () => {
    const hec = await start();
    const sink = createSplunkHecSink(destination({ batchMaxEvents: 2 }), context(hec));
    const batch = items(3);
    const files = sink.render(batch);
    expect(files.map((file) => file.name)).toEqual(['splunk/batch-0001.json', 'splunk/batch-0002.json']);
    const previewed = files.flatMap((file) =>
      String(file.content)
        .split('\n')
        .filter((line) => line !== '')
        .map((line): unknown => JSON.parse(line)),
    );
    for (const file of files) expect(String(file.content)).not.toContain(TOKEN);
    expect(hec.requests).toHaveLength(0); // rendering does no I/O
    await sink.send(batch, signal());
    expect(previewed).toEqual(hec.events);
  });

  it('503 code 9: retryable, with Retry-After read; the next attempt succeeds', async () => {
    const hec = await start();
    hec.script({ fail: 'busy', retryAfter: '2', times: 2 });
    const sink = createSplunkHecSink(destination(), context(hec));
    const batch = items(2);
    const first = await sink.send(batch, signal());
    expect(outcomes(first)).toEqual(['retry:hec-9', 'retry:hec-9']);
    expect(errorOf(first[0]).retryAfterMs).toBe(2000);
    expect(errorOf(first[0]).configuration).toBe(false);
    expect(outcomes(await sink.send(batch, signal()))).toEqual(['retry:hec-9', 'retry:hec-9']);
    expect(outcomes(await sink.send(batch, signal()))).toEqual(['ok', 'ok']);
    expect(receivedIds(hec)).toEqual(['alert-0', 'alert-1']);
  });

  it('500 code 8: retryable, without Retry-After', async () => {
    const hec = await start();
    hec.script({ fail: 'internal' });
    const sink = createSplunkHecSink(destination(), context(hec));
    const results = await sink.send(items(1), signal());
    expect(outcomes(results)).toEqual(['retry:hec-8']);
    expect(errorOf(results[0]).retryAfterMs).toBeUndefined();
    expect(hec.events).toHaveLength(0);
  });

  it.each([
    ['an unknown token', 'not-the-token-0000', 'fail:hec-4'],
    ['a disabled token', DISABLED_TOKEN, 'fail:hec-1'],
  ])('%s: a permanent configuration error for every record', async (_label, token, expected) => {
    const hec = await start();
    const sink = createSplunkHecSink(destination({ batchMaxEvents: 1 }), context(hec, token));
    const results = await sink.send(items(3), signal());
    expect(outcomes(results)).toEqual([expected, expected, expected]);
    for (const result of results) {
      expect(errorOf(result).configuration).toBe(true);
      expect(errorOf(result).message).not.toContain(token);
    }
    // The first answer says the token is wrong: the other requests of the attempt are not sent.
    expect(hec.eventRequests()).toHaveLength(1);
    expect(hec.events).toHaveLength(0);
  });

  it.each([
    ['no Authorization header', {}, 401, 2],
    ['a header without the Splunk prefix', { Authorization: `Bearer ${TOKEN}` }, 401, 3],
    ['an unknown token', { Authorization: 'Splunk 00000000-0000-4000-8000-000000000000' }, 403, 4],
    ['a disabled token', { Authorization: `Splunk ${DISABLED_TOKEN}` }, 403, 1],
  ])('auth answer for %s is classified as a configuration error', async (_label, headers, status, code) => {
    const hec = await start();
    const response = await http.post(`${hec.url}/services/collector/event`, '{"event":"x"}', { headers });
    expect(response.status).toBe(status);
    expect(JSON.parse(String(response.data))).toEqual({ text: HEC_ANSWERS[code]?.text, code });
    const { results } = classifyHecResponse(response, 2, 'splunk-hec "splunk"', []);
    expect(outcomes(results)).toEqual([`fail:hec-${code}`, `fail:hec-${code}`]);
    expect(errorOf(results[0]).configuration).toBe(true);
    expect(hec.events).toHaveLength(0);
  });

  it('code 7 (an index the token may not write to): permanent configuration error', async () => {
    const hec = await start({ indexes: ['defender'] });
    const wrong = await createSplunkHecSink(destination({ index: 'main' }), context(hec)).send(items(2), signal());
    expect(outcomes(wrong)).toEqual(['fail:hec-7', 'fail:hec-7']);
    expect(errorOf(wrong[0]).configuration).toBe(true);
    expect(hec.events).toHaveLength(0);
    const right = await createSplunkHecSink(destination({ index: 'defender' }), context(hec)).send(items(2), signal());
    expect(outcomes(right)).toEqual(['ok', 'ok']);
  });

  it('code 6 mid-batch: the records before are delivered, the bad one refused, only the ones after are resent', async () => {
    const hec = await start();
    hec.script({ fail: 'invalid-event', at: 2 });
    const sink = createSplunkHecSink(destination(), context(hec));
    const batch = items(5);
    const results = await sink.send(batch, signal());
    expect(outcomes(results)).toEqual(['ok', 'ok', 'fail:hec-6', 'retry:hec-resend-after-invalid', 'retry:hec-resend-after-invalid']);
    expect(errorOf(results[2]).configuration).toBe(false);
    expect(receivedIds(hec)).toEqual(['alert-0', 'alert-1']);

    const resend = batch.filter((_, index) => {
      const result = results[index];
      return result !== undefined && !result.ok && result.error.retryable;
    });
    expect(outcomes(await sink.send(resend, signal()))).toEqual(['ok', 'ok']);
    // No duplicates: every record but the refused one, once.
    expect(receivedIds(hec)).toEqual(['alert-0', 'alert-1', 'alert-3', 'alert-4']);
  });

  it('codes 12 and 13 come from the records themselves (no event, a blank event) and name them', async () => {
    const hec = await start();
    const sink = createSplunkHecSink(destination(), context(hec));
    const missing = items(3, (index) => (index === 1 ? { raw: undefined } : {}));
    expect(outcomes(await sink.send(missing, signal()))).toEqual(['ok', 'fail:hec-12', 'retry:hec-resend-after-invalid']);
    const blank = items(3, (index) => (index === 0 ? { raw: '   ' } : {}));
    expect(outcomes(await sink.send(blank, signal()))).toEqual(['fail:hec-13', 'retry:hec-resend-after-invalid', 'retry:hec-resend-after-invalid']);
    expect(receivedIds(hec)).toEqual(['alert-0']);
  });

  it('answers per record across the several requests of one attempt', async () => {
    const hec = await start();
    // First request answered normally, the second busy, the third normally.
    hec.script({ fail: 'none' }, { fail: 'busy' });
    const sink = createSplunkHecSink(destination({ batchMaxEvents: 2 }), context(hec));
    const results = await sink.send(items(5), signal());
    expect(outcomes(results)).toEqual(['ok', 'ok', 'retry:hec-9', 'retry:hec-9', 'ok']);
    expect(hec.eventRequests()).toHaveLength(3);
    expect(receivedIds(hec)).toEqual(['alert-0', 'alert-1', 'alert-4']);
  });

  it('a dropped connection is retryable', async () => {
    const hec = await start();
    hec.script({ fail: 'close' });
    const sink = createSplunkHecSink(destination(), context(hec));
    expect(outcomes(await sink.send(items(2), signal()))).toEqual(['retry:connection', 'retry:connection']);
    expect(outcomes(await sink.send(items(2), signal()))).toEqual(['ok', 'ok']);
  });

  it('a request with no answer is cut by timeoutMs (retryable), and the rest of the attempt is not sent', async () => {
    const hec = await start();
    hec.script({ fail: 'hang' });
    const sink = createSplunkHecSink(destination({ timeoutMs: 1000, batchMaxEvents: 1 }), context(hec));
    const results = await sink.send(items(3), signal());
    expect(outcomes(results)).toEqual(['retry:timeout', 'retry:timeout', 'retry:timeout']);
    expect(hec.eventRequests()).toHaveLength(1);
  });

  it('an abort rejects the attempt (a sink rejects only for an abort)', async () => {
    const hec = await start();
    hec.script({ fail: 'hang' });
    const sink = createSplunkHecSink(destination(), context(hec));
    const controller = new AbortController();
    const sending = sink.send(items(2), controller.signal);
    await hec.waitForRequests(1);
    controller.abort(new Error('shutting down'));
    await expect(sending).rejects.toThrow('shutting down');

    const aborted = new AbortController();
    aborted.abort(new Error('already gone'));
    await expect(sink.send(items(1), aborted.signal)).rejects.toThrow('already gone');
    expect(hec.requests).toHaveLength(1);
  });

  it('a refused connection is retryable', async () => {
    const hec = await start();
    const sink = createSplunkHecSink(destination(), context(hec));
    await hec.stop();
    receiver = undefined;
    expect(outcomes(await sink.send(items(1), signal()))).toEqual(['retry:connection']);
  });
});

describe('splunk-hec indexer acknowledgement', () => {
  async function ackSink(hec: HecReceiver, settings: Record<string, unknown> = {}, ackTimeoutMs = 5_000) {
    const config = readSplunkHecConfig(destination({ ack: true, ...settings }), context(hec));
    return { config, sink: createSplunkHecSinkFromConfig({ ...config, ackPollIntervalMs: 20, ackTimeoutMs }, http) };
  }

  it('delivered once Splunk acknowledges, on the channel of the sink', async () => {
    const hec = await start({ acks: true });
    const { config, sink } = await ackSink(hec, { batchMaxEvents: 2 });
    expect(outcomes(await sink.send(items(3), signal()))).toEqual(['ok', 'ok', 'ok']);
    const events = hec.eventRequests();
    expect(events).toHaveLength(2);
    for (const request of events) expect(request.headers['x-splunk-request-channel']).toBe(config.channel);
    const polls = hec.requests.filter((request) => request.path === '/services/collector/ack');
    expect(polls.length).toBeGreaterThanOrEqual(1);
    for (const poll of polls) {
      expect(poll.headers['x-splunk-request-channel']).toBe(config.channel);
      expect(poll.headers.authorization).toBe(`Splunk ${TOKEN}`);
    }
    expect(hec.events).toHaveLength(3);
  });

  it('uses the configured channel', async () => {
    const hec = await start({ acks: true });
    const channel = '0aa1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b';
    const { sink } = await ackSink(hec, { channel });
    expect(outcomes(await sink.send(items(1), signal()))).toEqual(['ok']);
    expect(hec.eventRequests()[0]?.headers['x-splunk-request-channel']).toBe(channel);
  });

  it('not acknowledged in time: retryable hec-ack-timeout, only for the request left unconfirmed', async () => {
    const hec = await start({ acks: true });
    hec.script({ fail: 'hold-ack' });
    const { sink } = await ackSink(hec, { batchMaxEvents: 2 }, 300);
    const results = await sink.send(items(3), signal());
    expect(outcomes(results)).toEqual(['retry:hec-ack-timeout', 'retry:hec-ack-timeout', 'ok']);
    expect(errorOf(results[0]).message).toMatch(/not acknowledged within 300 ms/);
    expect(hec.events).toHaveLength(3);
  });

  it('a token with acks on refuses requests without a channel: code 10, permanent', async () => {
    const hec = await start({ acks: true });
    const sink = createSplunkHecSink(destination(), context(hec));
    expect(outcomes(await sink.send(items(1), signal()))).toEqual(['fail:hec-10']);
  });
});

describe('splunk-hec volume', () => {
  it('10,000 records travel in batches of at most 1 MB and 500 events, never one request per record', async () => {
    const hec = await start();
    const sink = createSplunkHecSink(destination(), context(hec));
    // About 2.5 KB per record: 500 of them would pass 1 MB, so both bounds matter.
    const padding = 'p'.repeat(2_300);
    const batch = items(10_000, (index) => ({ raw: { SystemAlertId: `alert-${index}`, padding } }));
    const results = await sink.send(batch, signal());
    expect(results.every((result) => result.ok)).toBe(true);
    const requests = hec.eventRequests();
    const expected = encodeHecBatches(batch, readSplunkHecConfig(destination(), context(hec)));
    expect(requests).toHaveLength(expected.length);
    expect(requests.length).toBeLessThanOrEqual(40);
    for (const request of requests) {
      expect(request.uncompressedBytes).toBeLessThanOrEqual(1_000_000);
      expect(request.bodyBytes).toBeLessThan(request.uncompressedBytes);
    }
    for (const planned of expected) expect(planned.items.length).toBeLessThanOrEqual(500);
    expect(hec.events).toHaveLength(10_000);
    expect(receivedIds(hec)).toEqual(Array.from({ length: 10_000 }, (_, index) => `alert-${index}`));
  });
});

describe('splunk-hec configuration', () => {
  const env = { HEC_URL: 'https://splunk.example.com:8088', HEC_TOKEN: TOKEN };

  it('applies the defaults', () => {
    const config = readSplunkHecConfig(destination(), { env, http });
    expect(config).toMatchObject({
      name: 'splunk',
      source: 'defender-for-cloud',
      gzip: true,
      batchMaxEvents: 500,
      batchMaxBytes: 1_000_000,
      ack: false,
      ackTimeoutMs: 60_000,
      ackPollIntervalMs: 1_000,
      timeoutMs: 30_000,
      sourcetypes: {},
    });
    expect(config.channel).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(config.token.reveal()).toBe(TOKEN);
    expect(JSON.stringify(config)).not.toContain(TOKEN);
    expect(config).not.toHaveProperty('index');
    expect(config).not.toHaveProperty('host');
  });

  it('reads the overrides', () => {
    const config = readSplunkHecConfig(
      destination({ index: 'defender', host: 'fw-1', source: 'mdc', sourcetype: 'st', sourcetypes: { alert: 'mscs:azure:security:alert' }, gzip: false, batchMaxEvents: 10, batchMaxBytes: 2048, ack: true, ackTimeoutMs: 5000, timeoutMs: 1000 }),
      { env, http },
    );
    expect(config).toMatchObject({ index: 'defender', host: 'fw-1', source: 'mdc', sourcetype: 'st', sourcetypes: { alert: 'mscs:azure:security:alert' }, gzip: false, batchMaxEvents: 10, batchMaxBytes: 2048, ack: true, ackTimeoutMs: 5000, timeoutMs: 1000 });
  });

  it.each([
    ['an unset token variable', { token: '${MISSING}' }, /destinations\.splunk\.token: environment variable MISSING is not set/],
    ['plain http to a remote host', { url: 'http://splunk.example.com:8088' }, /destinations\.splunk\.url .*must use https:/],
    ['a URL with a query', { url: 'https://splunk.example.com:8088/?token=abc' }, /destinations\.splunk\.url .*without a query/],
    ['a channel that is not a GUID', { channel: 'chan-1' }, /destinations\.splunk\.channel: must be a GUID/],
    ['a sourcetype for an unknown kind', { sourcetypes: { alarm: 'x' } }, /destinations\.splunk\.sourcetypes\.alarm: not a record kind/],
    ['a zero batch size', { batchMaxEvents: 0 }, /destinations\.splunk\.batchMaxEvents/],
  ])('refuses %s, naming the key', (_label, settings, message) => {
    const read = (): unknown => readSplunkHecConfig(destination(settings), { env, http });
    expect(read).toThrow(SinkConfigError);
    expect(read).toThrow(message);
  });

  it('previews without the variables set', () => {
    const sink = createSplunkHecSink(destination(), { env: {}, http, previewOnly: true });
    const [file] = sink.render(items(1));
    expect(file?.name).toBe('splunk/batch-0001.json');
  });

  it.each([
    ['https://splunk.example.com:8088', 'https://splunk.example.com:8088/services/collector/event'],
    ['https://splunk.example.com:8088/', 'https://splunk.example.com:8088/services/collector/event'],
    ['https://splunk.example.com/splunk-hec/', 'https://splunk.example.com/splunk-hec/services/collector/event'],
    ['https://splunk.example.com:8088/services/collector', 'https://splunk.example.com:8088/services/collector/event'],
    ['https://splunk.example.com:8088/services/collector/event', 'https://splunk.example.com:8088/services/collector/event'],
  ])('endpoint from base URL %s', (base, expected) => {
    expect(hecEndpoint(base, '/services/collector/event')).toBe(expected);
  });
});

describe('HEC answer table', () => {
  const what = 'splunk-hec "splunk"';
  const cases: [number, number, string][] = [
    [1, 403, 'fail-config'],
    [2, 401, 'fail-config'],
    [3, 401, 'fail-config'],
    [4, 403, 'fail-config'],
    [5, 400, 'fail'],
    [6, 400, 'fail'],
    [7, 400, 'fail-config'],
    [8, 500, 'retry'],
    [9, 503, 'retry'],
    [10, 400, 'fail'],
    [11, 400, 'fail'],
    [12, 400, 'fail'],
    [13, 400, 'fail'],
    [14, 400, 'fail'],
    [15, 400, 'fail'],
    [16, 400, 'fail'],
  ];

  it.each(cases)('code %i (HTTP %i): %s for the whole request when no event is named', (code, status, expected) => {
    const { results } = classifyHecResponse({ status, headers: {}, data: JSON.stringify({ text: 'x', code }) }, 2, what, []);
    const error = errorOf(results[1]);
    expect(error.reason).toBe(`hec-${code}`);
    const kind = error.retryable ? 'retry' : error.configuration ? 'fail-config' : 'fail';
    expect(kind).toBe(expected);
    expect(results).toHaveLength(2);
    expect(results[0]).toEqual(results[1]);
  });

  it('success, with and without an ackId', () => {
    expect(classifyHecResponse({ status: 200, headers: {}, data: '{"text":"Success","code":0,"ackId":7}' }, 1, what, [])).toEqual({ results: [{ ok: true }], ackId: 7 });
    expect(classifyHecResponse({ status: 200, headers: {}, data: '{"text":"Success","code":0}' }, 2, what, [])).toEqual({ results: [{ ok: true }, { ok: true }] });
  });

  it('an answer that is not HEC falls back to the HTTP status table', () => {
    const gateway = classifyHecResponse({ status: 502, headers: { 'retry-after': '3' }, data: '<html>Bad gateway</html>' }, 1, what, []);
    expect(outcomes(gateway.results)).toEqual(['retry:http-502']);
    expect(errorOf(gateway.results[0]).retryAfterMs).toBe(3000);
    const notFound = classifyHecResponse({ status: 404, headers: {}, data: '{"text":"The requested URL was not found on this server.","code":404}' }, 1, what, []);
    expect(outcomes(notFound.results)).toEqual(['fail:http-404']);
  });

  it('an invalid-event-number outside the request condemns the whole request', () => {
    const { results } = classifyHecResponse({ status: 400, headers: {}, data: '{"text":"Invalid data format","code":6,"invalid-event-number":5}' }, 2, what, []);
    expect(outcomes(results)).toEqual(['fail:hec-6', 'fail:hec-6']);
  });

  it('the HEC stand-in answers its health endpoint, and code 14 for ack polls when acks are off', async () => {
    const hec = await start();
    const health = await http.get(`${hec.url}/services/collector/health`);
    expect(health.status).toBe(200);
    expect(JSON.parse(String(health.data))).toEqual({ text: 'HEC is healthy', code: 17 });
    const ack = await http.post(`${hec.url}/services/collector/ack`, '{"acks":[0]}', { headers: { Authorization: `Splunk ${TOKEN}` } });
    expect(ack.status).toBe(400);
    expect(JSON.parse(String(ack.data))).toEqual({ text: 'ACK is disabled', code: 14 });
  });
});
