import type { AxiosInstance } from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/model/finding.js';
import type { Destination } from '../../src/routing/types.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { SinkConfigError, type SinkContext } from '../../src/sinks/settings.js';
import { DeliveryError, type AttemptResult, type DeliveryItem, type Sink } from '../../src/sinks/sink.js';
import { createWebhookSink } from '../../src/sinks/webhook/sink.js';
import { makeAlert, makeVulnerability } from '../support/findings.js';
import { answer, CLOSE, HANG, startWebhookReceiver, type WebhookReceiver, type WebhookReceiverOptions } from '../support/webhookReceiver.js';

const API_KEY = 'k3y-0f-the-receiver-5ecret';
const BEARER = 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-value';

let http: AxiosInstance;
const receivers: WebhookReceiver[] = [];

beforeAll(() => {
  http = createHttpClient();
});

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

afterAll(() => {
  closeHttpClient(http);
});

async function receiver(options: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver(options);
  receivers.push(started);
  return started;
}

function destination(settings: Record<string, unknown> = {}): Destination {
  return {
    name: 'soc-hook',
    type: 'webhook',
    notify: true,
    dedupe: true,
    settings: { url: '${HOOK_URL}', headers: { 'X-Api-Key': '${HOOK_KEY}', Authorization: '${HOOK_AUTH}' }, ...settings },
    envRefs: ['HOOK_URL', 'HOOK_KEY', 'HOOK_AUTH'],
    line: 7,
  };
}

function sinkFor(target: WebhookReceiver, settings: Record<string, unknown> = {}): Sink {
  const context: SinkContext = { env: { HOOK_URL: target.url, HOOK_KEY: API_KEY, HOOK_AUTH: BEARER }, http };
  return createWebhookSink(destination(settings), context);
}

const metadata = { partitionId: '0', sequenceNumber: 42, offset: '4096', enqueuedTimeUtc: '2025-08-21T10:00:01.000Z' };

function item(finding: Finding = makeAlert({ raw: { SystemAlertId: 'a-1', Severity: 'Medium' } }), withMetadata = true): DeliveryItem {
  return withMetadata ? { input: 'eh:0/42', finding, metadata } : { input: 'alerts.json#0', finding };
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

function failure(result: AttemptResult | undefined, target: WebhookReceiver): DeliveryError {
  if (result === undefined || result.ok) throw new Error(`expected a failed attempt, got ${JSON.stringify(result)}`);
  expect(result.error).toBeInstanceOf(DeliveryError);
  for (const secret of [target.token, API_KEY, BEARER]) expect(result.error.message).not.toContain(secret);
  return result.error;
}

describe('webhook sink against a JSON receiver', () => {
  it('posts the normalised finding, the raw record, the input and the event metadata as JSON', async () => {
    const target = await receiver();
    const delivery = item();
    expect(await sinkFor(target).send([delivery], signal())).toEqual([{ ok: true }]);
    const { raw, ...normalised } = delivery.finding;
    expect(target.bodies).toEqual([{ source: 'defender-forwarder', finding: normalised, raw, input: 'eh:0/42', event: metadata }]);
    expect(target.bodies[0]).not.toHaveProperty('finding.raw');
    expect(target.requests[0]?.headers['content-type']).toMatch(/^application\/json/);
  });

  it('leaves event out when the record came from a file', async () => {
    const target = await receiver();
    await sinkFor(target).send([item(makeVulnerability(), false)], signal());
    expect(target.bodies[0]).toMatchObject({ source: 'defender-forwarder', input: 'alerts.json#0' });
    expect(target.bodies[0]).not.toHaveProperty('event');
  });

  it('sends the configured headers, values from ${ENV}, names as written', async () => {
    const target = await receiver();
    await sinkFor(target).send([item()], signal());
    expect(target.requests[0]?.headers['x-api-key']).toBe(API_KEY);
    expect(target.requests[0]?.headers['authorization']).toBe(BEARER);
    expect(target.requests[0]?.status).toBe(200);
  });

  it('any 2xx is success (204 here); several items go one request each, in order', async () => {
    const target = await receiver({ successStatus: 204 });
    const findings = [makeAlert({ id: 'first' }), makeAlert({ id: 'second' })];
    const results = await sinkFor(target).send(
      findings.map((finding) => item(finding)),
      signal(),
    );
    expect(results).toEqual([{ ok: true }, { ok: true }]);
    expect(target.bodies.map((body) => (body as { finding: { id: string } }).finding.id)).toEqual(['first', 'second']);
  });

  it('render shows exactly the body that is posted, and no header value', async () => {
    const target = await receiver();
    const sink = sinkFor(target);
    const delivery = item();
    await sink.send([delivery], signal());
    const [preview] = sink.render([delivery]);
    expect(preview?.name).toMatch(/^soc-hook\/[A-Za-z0-9._-]+\.json$/);
    expect(preview?.content).toBe(target.requests[0]?.text);
    for (const secret of [target.token, API_KEY, BEARER]) expect(String(preview?.content)).not.toContain(secret);
  });

  it.each<[string, number, { reason: string; retryable: boolean; configuration: boolean }]>([
    ['500', 500, { reason: 'http-500', retryable: true, configuration: false }],
    ['503', 503, { reason: 'http-503', retryable: true, configuration: false }],
    ['501', 501, { reason: 'http-501', retryable: false, configuration: false }],
    ['400', 400, { reason: 'http-400', retryable: false, configuration: false }],
    ['401', 401, { reason: 'http-401', retryable: false, configuration: true }],
    ['403', 403, { reason: 'http-403', retryable: false, configuration: true }],
    ['a redirect (not followed)', 301, { reason: 'http-301', retryable: false, configuration: false }],
  ])('%s is classified by the shared table', async (_name, status, expected) => {
    const target = await receiver();
    target.script(answer(status, 'no', status === 301 ? { Location: 'https://elsewhere.example/' } : {}));
    const [result] = await sinkFor(target).send([item()], signal());
    expect(failure(result, target)).toMatchObject(expected);
    expect(target.requests).toHaveLength(1);
  });

  it('429 with Retry-After: retryable, retryAfterMs parsed', async () => {
    const target = await receiver();
    target.script(answer(429, 'slow down', { 'Retry-After': '7' }));
    const [result] = await sinkFor(target).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'http-429', retryable: true, retryAfterMs: 7000 });
  });

  it('the receiver refuses a wrong token in the URL with 401 (the stand-in checks it)', async () => {
    const target = await receiver();
    const context: SinkContext = { env: { HOOK_URL: target.url.replace(target.token, 'wrong-token-value'), HOOK_KEY: API_KEY, HOOK_AUTH: BEARER }, http };
    const [result] = await createWebhookSink(destination(), context).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'http-401', configuration: true });
    expect(target.bodies).toHaveLength(0);
  });

  it('an error body that echoes the URL token and the header values is redacted', async () => {
    const target = await receiver();
    target.script(answer(500, `request ${target.url} with X-Api-Key ${API_KEY} and ${BEARER} failed`));
    const [result] = await sinkFor(target).send([item()], signal());
    const error = failure(result, target);
    expect(error.message).toContain('<redacted>');
  });

  it('a hanging receiver is cut by timeoutMs: retryable timeout', async () => {
    const target = await receiver();
    target.script(HANG);
    const [result] = await sinkFor(target, { timeoutMs: 1000 }).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'timeout', retryable: true });
  });

  it('a connection reset: retryable connection failure', async () => {
    const target = await receiver();
    target.script(CLOSE);
    const [result] = await sinkFor(target).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'connection', retryable: true });
  });

  it('an abort while in flight rejects send', async () => {
    const target = await receiver();
    target.script(HANG);
    const controller = new AbortController();
    const arrived = target.nextRequest();
    const sending = sinkFor(target).send([item()], controller.signal);
    await arrived;
    controller.abort();
    await expect(sending).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('webhook destination settings', () => {
  const base = { HOOK_URL: 'https://hooks.example.com/in?token=abcdef', HOOK_KEY: API_KEY, HOOK_AUTH: BEARER };
  const build = (settings: Record<string, unknown>, env: Record<string, string | undefined> = base): Sink =>
    createWebhookSink(destination(settings), { env, http });

  it('an unset header variable names the header and the variable, not a value', () => {
    expect(() => build({}, { ...base, HOOK_KEY: undefined })).toThrow(SinkConfigError);
    expect(() => build({}, { ...base, HOOK_KEY: undefined })).toThrow(/destinations\.soc-hook\.headers\.X-Api-Key: environment variable HOOK_KEY is not set/);
  });

  it('refuses headers the HTTP client owns, and values with line breaks', () => {
    expect(() => build({ headers: { Host: '${HOOK_KEY}' } })).toThrow(/headers\.Host/);
    expect(() => build({ headers: { 'X-Evil': '${HOOK_KEY}' } }, { ...base, HOOK_KEY: 'a\r\nX-Injected: 1' })).toThrow(/line break/);
    expect(() => build({ headers: { 'Bad Name': '${HOOK_KEY}' } })).toThrow(/not a valid header name/);
  });

  it('refuses http: on a non-loopback host', () => {
    expect(() => build({}, { ...base, HOOK_URL: 'http://hooks.example.com/in' })).toThrow(/must use https:/);
  });

  it('is a notification sink of one record per send', () => {
    expect(build({})).toMatchObject({ name: 'soc-hook', type: 'webhook', notify: true, maxBatchItems: 1 });
  });
});
