import axios, { type AxiosInstance } from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/model/finding.js';
import type { Destination } from '../../src/routing/types.js';
import { closeHttpClient, createHttpClient } from '../../src/sinks/http.js';
import { SinkConfigError, type SinkContext } from '../../src/sinks/settings.js';
import { DeliveryError, type AttemptResult, type DeliveryItem, type Sink } from '../../src/sinks/sink.js';
import { encodeTeamsMessage } from '../../src/sinks/teams/encode.js';
import { classifyTeamsResponse, createTeamsSink } from '../../src/sinks/teams/sink.js';
import { makeAlert, makeRecommendation, makeVulnerability } from '../support/findings.js';
import { answer, CLOSE, HANG, legacyError, startTeamsReceiver, type TeamsReceiver, type TeamsReceiverOptions } from '../support/teamsReceiver.js';

let http: AxiosInstance;
const receivers: TeamsReceiver[] = [];

beforeAll(() => {
  http = createHttpClient();
});

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

afterAll(() => {
  closeHttpClient(http);
});

async function receiver(options: TeamsReceiverOptions = {}): Promise<TeamsReceiver> {
  const started = await startTeamsReceiver(options);
  receivers.push(started);
  return started;
}

function destination(settings: Record<string, unknown> = {}): Destination {
  return { name: 'oncall-teams', type: 'teams', notify: true, dedupe: true, settings: { url: '${TEAMS_URL}', ...settings }, envRefs: ['TEAMS_URL'], line: 3 };
}

function sinkFor(target: TeamsReceiver, settings: Record<string, unknown> = {}, url: string = target.url): Sink {
  const context: SinkContext = { env: { TEAMS_URL: url }, http };
  return createTeamsSink(destination(settings), context);
}

function item(finding: Finding = makeAlert({ link: 'https://portal.azure.com/#blade/alert/1' }), input = 'eh:0/42'): DeliveryItem {
  return { input, finding };
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

/** The error of a failed attempt, with the checks every failure must pass. */
function failure(result: AttemptResult | undefined, target: TeamsReceiver): DeliveryError {
  if (result === undefined || result.ok) throw new Error(`expected a failed attempt, got ${JSON.stringify(result)}`);
  expect(result.error).toBeInstanceOf(DeliveryError);
  expect(result.error.message).not.toContain(target.signature);
  expect(result.error.message).not.toContain(target.url);
  return result.error;
}

describe('teams sink against the Workflows stand-in', () => {
  it('posts one Adaptive Card message; 202 is success; what was posted is exactly what render shows', async () => {
    const target = await receiver();
    const sink = sinkFor(target);
    const delivery = item();
    expect(await sink.send([delivery], signal())).toEqual([{ ok: true }]);
    expect(target.messages).toHaveLength(1);
    expect(target.requests[0]?.status).toBe(202);
    expect(target.requests[0]?.headers['content-type']).toMatch(/^application\/json/);
    const [preview] = sink.render([delivery]);
    expect(preview?.name).toMatch(/^oncall-teams\/[A-Za-z0-9._-]+\.json$/);
    expect(target.requests[0]?.text).toBe(preview?.content);
    expect(target.messages[0]).toEqual(encodeTeamsMessage(delivery.finding));
    expect(String(preview?.content)).not.toContain(target.signature);
  });

  it('describes itself as a notification sink of one record per send', async () => {
    const sink = sinkFor(await receiver());
    expect(sink).toMatchObject({ name: 'oncall-teams', type: 'teams', notify: true, maxBatchItems: 1 });
  });

  it('sends several items one message each, in order, each with its own result', async () => {
    const target = await receiver();
    target.script(answer(202), answer(500, 'flow failed'));
    const findings = [makeAlert({ title: 'first' }), makeVulnerability({ title: 'second' }), makeRecommendation({ title: 'third' })];
    const results = await sinkFor(target).send(
      findings.map((finding, index) => item(finding, `f.json#${index}`)),
      signal(),
    );
    expect(results.map((result) => result.ok)).toEqual([true, false, true]);
    expect(failure(results[1], target)).toMatchObject({ reason: 'http-500', retryable: true });
    expect(target.requests.map((request) => request.text)).toEqual(findings.map((finding) => JSON.stringify(encodeTeamsMessage(finding))));
  });

  it('429 with Retry-After twice, then 202: retryable with retryAfterMs, then delivered', async () => {
    const target = await receiver();
    target.throttle(2, 1);
    const sink = sinkFor(target);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const [result] = await sink.send([item()], signal());
      expect(failure(result, target)).toMatchObject({ reason: 'http-429', retryable: true, retryAfterMs: 1000, configuration: false });
    }
    expect(await sink.send([item()], signal())).toEqual([{ ok: true }]);
    expect(target.requests.map((request) => request.status)).toEqual([429, 429, 202]);
    expect(target.messages).toHaveLength(1);
  });

  it('413 when the message is over the receiver limit: permanent', async () => {
    const target = await receiver({ maxBodyBytes: 1_000 });
    const [result] = await sinkFor(target).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'http-413', retryable: false });
    expect(target.requests[0]?.status).toBe(413);
  });

  it('400 for a card the flow refuses: permanent, with the flow error in the message', async () => {
    const target = await receiver();
    target.script(answer(400, '{"error":{"code":"InvalidRequestContent","message":"The card could not be parsed."}}'));
    const [result] = await sinkFor(target).send([item()], signal());
    const error = failure(result, target);
    expect(error).toMatchObject({ reason: 'http-400', retryable: false, configuration: false });
    expect(error.message).toContain('InvalidRequestContent');
  });

  it('500: retryable', async () => {
    const target = await receiver();
    target.script(answer(500, 'internal'));
    const [result] = await sinkFor(target).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'http-500', retryable: true });
  });

  it('a hanging receiver is cut by the destination timeoutMs: retryable timeout', async () => {
    const target = await receiver();
    target.script(HANG);
    const [result] = await sinkFor(target, { timeoutMs: 1000 }).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'timeout', retryable: true });
    expect(target.requests).toHaveLength(1);
  });

  it('a connection closed without an answer: retryable connection failure', async () => {
    const target = await receiver();
    target.script(CLOSE);
    const [result] = await sinkFor(target).send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'connection', retryable: true });
  });

  it('nobody listening: retryable connection failure', async () => {
    const target = await receiver();
    const sink = sinkFor(target);
    await target.close();
    const [result] = await sink.send([item()], signal());
    expect(failure(result, target)).toMatchObject({ reason: 'connection', retryable: true });
  });

  it('an abort while the request is in flight rejects send (never a result)', async () => {
    const target = await receiver();
    target.script(HANG);
    const controller = new AbortController();
    const arrived = target.nextRequest();
    const sending = sinkFor(target).send([item()], controller.signal);
    await arrived;
    controller.abort();
    await expect(sending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('an already aborted signal sends nothing', async () => {
    const target = await receiver();
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    await expect(sinkFor(target).send([item(), item()], controller.signal)).rejects.toThrow('shutting down');
    expect(target.requests).toHaveLength(0);
  });

  it('a wrong signature: 401, permanent, a configuration error, and the signature is not in the message', async () => {
    const target = await receiver();
    const wrong = target.url.replace(`sig=${target.signature}`, 'sig=not-the-right-signature-0123456789');
    const [result] = await sinkFor(target, {}, wrong).send([item()], signal());
    const error = failure(result, target);
    expect(error).toMatchObject({ reason: 'http-401', retryable: false, configuration: true });
    expect(error.message).not.toContain('not-the-right-signature-0123456789');
  });

  it('an error body that quotes the URL is redacted: sig= never reaches the message', async () => {
    const target = await receiver();
    target.script(answer(502, `upstream failed for ${target.url}`));
    const [result] = await sinkFor(target).send([item()], signal());
    const error = failure(result, target);
    expect(error).toMatchObject({ reason: 'http-502', retryable: true });
    expect(error.message).toContain('<redacted>');
  });

  it('the stand-in refuses a malformed card with 400, so its 202 means something', async () => {
    const target = await receiver();
    const tooNew = JSON.parse(JSON.stringify(encodeTeamsMessage(makeAlert()))) as { attachments: { content: { version: string } }[] };
    const card = tooNew.attachments[0];
    if (card) card.content.version = '1.5';
    const headers = { 'Content-Type': 'application/json' };
    expect((await axios.post(target.url, tooNew, { headers, validateStatus: () => true })).status).toBe(400);
    expect((await axios.post(target.url, { type: 'message', attachments: [] }, { headers, validateStatus: () => true })).status).toBe(400);
    expect((await axios.post(target.url, { text: 'x'.repeat(30 * 1024) }, { headers, validateStatus: () => true })).status).toBe(413);
    expect(target.messages).toHaveLength(0);
  });
});

describe('teams sink against a legacy connector', () => {
  it('messagecard format: 200 with body 1 is success', async () => {
    const target = await receiver({ mode: 'legacy' });
    const sink = sinkFor(target, { format: 'messagecard' });
    expect(await sink.send([item()], signal())).toEqual([{ ok: true }]);
    expect(target.messages[0]).toMatchObject({ '@type': 'MessageCard', summary: expect.stringContaining('Security alert') });
    expect(target.requests[0]?.text).toBe(sink.render([item()])[0]?.content);
  });

  it('a 200 carrying an error text instead of 1: retryable teams-legacy-error, signature redacted', async () => {
    const target = await receiver({ mode: 'legacy' });
    target.script(legacyError(), legacyError(`Webhook ${target.url} throttled`));
    const sink = sinkFor(target, { format: 'messagecard' });
    const [first] = await sink.send([item()], signal());
    const error = failure(first, target);
    expect(error).toMatchObject({ reason: 'teams-legacy-error', retryable: true });
    expect(error.message).toContain('HTTP error 429');
    const [second] = await sink.send([item()], signal());
    expect(failure(second, target).message).toContain('<redacted>');
    expect(await sink.send([item()], signal())).toEqual([{ ok: true }]);
  });

  it('the legacy stand-in refuses a MessageCard without summary or text', async () => {
    const target = await receiver({ mode: 'legacy' });
    const response = await axios.post(target.url, { '@type': 'MessageCard', title: 'x' }, { validateStatus: () => true });
    expect(response.status).toBe(400);
    expect(response.data).toBe('Summary or Text is required.');
  });
});

describe('classifyTeamsResponse: the answer table', () => {
  const secrets: never[] = [];
  it.each<[number, string, { reason: string; retryable: boolean } | undefined]>([
    [202, '', undefined],
    [202, 'anything', undefined],
    [200, '1', undefined],
    [200, ' 1\n', undefined],
    [200, '', { reason: 'teams-legacy-error', retryable: true }],
    [200, 'Microsoft Teams endpoint returned HTTP error 429', { reason: 'teams-legacy-error', retryable: true }],
    [400, 'bad', { reason: 'http-400', retryable: false }],
    [413, '', { reason: 'http-413', retryable: false }],
    [429, '', { reason: 'http-429', retryable: true }],
    [500, '', { reason: 'http-500', retryable: true }],
    [503, '', { reason: 'http-503', retryable: true }],
    [404, '', { reason: 'http-404', retryable: false }],
  ])('HTTP %i %j', (status, data, expected) => {
    const error = classifyTeamsResponse({ status, data, headers: {} }, 'teams destination "t"', secrets);
    if (expected === undefined) expect(error).toBeUndefined();
    else expect(error).toMatchObject(expected);
  });
});

describe('teams destination settings', () => {
  const context = (env: Record<string, string | undefined>, previewOnly = false): SinkContext => ({ env, http, ...(previewOnly ? { previewOnly } : {}) });

  it('an unset ${ENV} names the key and the variable', () => {
    expect(() => createTeamsSink(destination(), context({}))).toThrow(SinkConfigError);
    expect(() => createTeamsSink(destination(), context({}))).toThrow(/destinations\.oncall-teams\.url: environment variable TEAMS_URL is not set/);
  });

  it('refuses a plain http URL on a non-loopback host without quoting it', () => {
    const url = 'http://prod-00.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=SECRETSIG123';
    let message = '';
    try {
      createTeamsSink(destination(), context({ TEAMS_URL: url }));
    } catch (error: unknown) {
      message = error instanceof Error ? error.message : String(error);
    }
    expect(message).toMatch(/must use https:/);
    expect(message).not.toContain('SECRETSIG123');
  });

  it('refuses an unknown format', () => {
    expect(() => createTeamsSink(destination({ format: 'html' }), context({ TEAMS_URL: 'https://example.logic.azure.com/x?sig=abc' }))).toThrow(/format/);
  });

  it('renders previews without the URL being set (preview only)', () => {
    const sink = createTeamsSink(destination(), context({}, true));
    const [file] = sink.render([item()]);
    expect(JSON.parse(String(file?.content))).toEqual(encodeTeamsMessage(item().finding));
  });
});
