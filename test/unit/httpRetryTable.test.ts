import { describe, expect, it } from 'vitest';
import { classifyHttpResponse, destinationUrlProblem, isLoopbackHost, isRetryableStatus, parseRetryAfterMs, RETRYABLE_STATUS } from '../../src/sinks/http.js';
import { Secret } from '../../src/config/secret.js';

describe('HTTP status -> retry table', () => {
  it.each([
    [200, false],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [408, true],
    [413, false],
    [429, true],
    [500, true],
    [501, false],
    [502, true],
    [503, true],
    [504, true],
    [505, false],
    [507, true],
    [599, true],
  ])('%i retryable: %s', (status, retryable) => {
    expect(isRetryableStatus(status)).toBe(retryable);
  });

  it('the named table lists exactly the statuses the comment explains', () => {
    expect(Object.keys(RETRYABLE_STATUS).map(Number)).toEqual([408, 429, 500, 501, 502, 503, 504, 505]);
  });

  it('401/403 are configuration errors; the body is quoted without secrets', () => {
    const token = new Secret('tok-123456', '${T}');
    const error = classifyHttpResponse({ status: 403, headers: {}, data: 'bad token tok-123456' }, 'splunk', [token]);
    expect(error).toMatchObject({ reason: 'http-403', retryable: false, configuration: true });
    expect(error.message).toBe('splunk: HTTP 403: bad token <redacted>');
  });

  it('Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfterMs('3')).toBe(3000);
    expect(parseRetryAfterMs('0.5')).toBe(500);
    expect(parseRetryAfterMs('Wed, 21 Oct 2026 07:28:10 GMT', Date.parse('Wed, 21 Oct 2026 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfterMs('Wed, 21 Oct 2026 07:28:00 GMT', Date.parse('Wed, 21 Oct 2026 07:29:00 GMT'))).toBe(0);
    expect(parseRetryAfterMs('soon')).toBeUndefined();
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    const throttled = classifyHttpResponse({ status: 429, headers: { 'retry-after': '7' }, data: '' }, 'teams', []);
    expect(throttled).toMatchObject({ retryable: true, retryAfterMs: 7000, reason: 'http-429' });
  });
});

describe('destination URLs', () => {
  it.each([
    ['https://splunk.example:8088', undefined],
    ['http://127.0.0.1:8088', undefined],
    ['http://127.9.9.9/x', undefined],
    ['http://localhost:1234', undefined],
    ['http://[::1]:8080/hook', undefined],
    ['http://splunk.example:8088', 'must use https: (http: is allowed only for loopback hosts)'],
    ['http://10.0.0.1', 'must use https: (http: is allowed only for loopback hosts)'],
    ['ftp://x.example', 'must use https:, not ftp:'],
    ['https://user:pw@x.example', 'must not carry user:password@ (use the token/password settings)'],
    ['not a url', 'is not a valid absolute URL'],
  ])('%s -> %s', (url, problem) => {
    expect(destinationUrlProblem(url)).toBe(problem);
  });

  it('knows loopback hosts', () => {
    expect(['127.0.0.1', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true);
    expect(['128.0.0.1', 'localhost.example', 'a.localhost', '::2', 'example.com'].some(isLoopbackHost)).toBe(false);
  });
});

describe('redact', () => {
  it('removes a URL secret whole, its path (token-in-path webhooks) and its query, also percent-decoded', async () => {
    const { redact } = await import('../../src/config/secret.js');
    const url = new Secret('https://hooks.example/services/T000/B000/SECRETPATH44?sig=a%2Fb', '${HOOK}');
    expect(redact('POST https://hooks.example/services/T000/B000/SECRETPATH44?sig=a%2Fb failed', [url])).toBe('POST <redacted> failed');
    expect(redact('404 for /services/T000/B000/SECRETPATH44', [url])).toBe('404 for <redacted>');
    expect(redact('signature sig=a/b refused', [url])).toBe('signature <redacted> refused');
  });
});

describe('Secret', () => {
  it('prints as <redacted> however it is printed', async () => {
    const { inspect } = await import('node:util');
    const secret = new Secret('s3cr3t-value', '${X}');
    expect(`${String(secret)}`).toBe('<redacted>');
    expect(JSON.stringify({ secret })).toBe('{"secret":"<redacted>"}');
    expect(inspect({ secret })).not.toContain('s3cr3t');
    expect(secret.reveal()).toBe('s3cr3t-value');
  });
});
