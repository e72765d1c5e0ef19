/**
 * The one HTTP client every HTTP sink uses (axios with keep-alive agents, timeouts, abort), the status ->
 * retry table, `Retry-After`, and the destination URL rule. Sinks classify what they understand beyond
 * this (HEC codes, Teams bodies) and fall back to `classifyHttpFailure`.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import axios, { AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { redact, type Secret } from '../config/secret.js';
import { DeliveryError } from './sink.js';

/**
 * Whether an HTTP status may succeed if the same request is sent again. The practice of mature clients
 * (Vector, the OpenTelemetry collector, ofetch; protocols.md): 408 (timeout), 429 (throttled) and 5xx are
 * worth retrying, except 501 (not implemented) and 505 (HTTP version), which never change; every other 4xx
 * is the request's own fault and permanent. 401 and 403 are permanent and mean a configuration error.
 */
export const RETRYABLE_STATUS: Readonly<Record<number, boolean>> = Object.freeze({
  408: true, // Request Timeout
  429: true, // Too Many Requests (honour Retry-After)
  500: true, // Internal Server Error (HEC code 8)
  501: false, // Not Implemented: never changes
  502: true, // Bad Gateway
  503: true, // Service Unavailable (HEC code 9: busy)
  504: true, // Gateway Timeout
  505: false, // HTTP Version Not Supported: never changes
});

/** Statuses that mean the destination is misconfigured (credentials, permissions). */
const CONFIGURATION_STATUS = new Set([401, 403, 404]);

/** Retryable per the table: a listed status as listed, other 5xx yes, everything else no. */
export function isRetryableStatus(status: number): boolean {
  const listed = RETRYABLE_STATUS[status];
  if (listed !== undefined) return listed;
  return status >= 500 && status <= 599;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: unknown, nowMs: number = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Node's error codes for a connection that failed or broke: always worth another try. */
const CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

/**
 * Classifies an HTTP attempt that did not succeed: an answer by its status, no answer by the kind of
 * network failure. `what` names the destination for the message; secrets are removed from it.
 */
export function classifyHttpFailure(error: unknown, what: string, secrets: readonly Secret[]): DeliveryError {
  if (axios.isCancel(error) || (error instanceof Error && error.name === 'AbortError')) {
    return new DeliveryError(`${what}: cancelled`, { reason: 'cancelled', retryable: true, cause: error });
  }
  if (error instanceof AxiosError && error.response) {
    return classifyHttpResponse(error.response, what, secrets);
  }
  const code = error instanceof AxiosError ? error.code : (error as NodeJS.ErrnoException | undefined)?.code;
  const message = redact(error instanceof Error ? error.message : String(error), secrets);
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || /timeout/i.test(message)) {
    return new DeliveryError(`${what}: no answer in time (${message})`, { reason: 'timeout', retryable: true });
  }
  if (code !== undefined && CONNECTION_CODES.has(code)) {
    return new DeliveryError(`${what}: connection failed (${code})`, { reason: 'connection', retryable: true });
  }
  return new DeliveryError(`${what}: ${message}`, { reason: code ? `error-${code}` : 'error', retryable: true });
}

/** Classifies an answer that is not a success, by status and `Retry-After`. */
export function classifyHttpResponse(response: Pick<AxiosResponse, 'status' | 'headers' | 'data'>, what: string, secrets: readonly Secret[]): DeliveryError {
  const status = response.status;
  const retryAfterMs = parseRetryAfterMs(headerOf(response.headers, 'retry-after'));
  const body = redact(shortBody(response.data), secrets);
  const configuration = CONFIGURATION_STATUS.has(status);
  return new DeliveryError(`${what}: HTTP ${status}${body ? `: ${body}` : ''}`, {
    reason: `http-${status}`,
    retryable: isRetryableStatus(status),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    configuration,
  });
}

function headerOf(headers: unknown, name: string): unknown {
  if (headers === null || typeof headers !== 'object') return undefined;
  const record = headers as Record<string, unknown> & { get?: (name: string) => unknown };
  return typeof record.get === 'function' ? record.get(name) : record[name];
}

/** The start of an error body, on one line. */
export function shortBody(data: unknown, max = 300): string {
  let text: string;
  if (typeof data === 'string') text = data;
  else if (Buffer.isBuffer(data)) text = data.toString('utf8');
  else if (data === undefined || data === null) text = '';
  else text = JSON.stringify(data);
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Loopback hosts may use plain http: for local testing; everything else must be https:. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  // Only the name itself: `*.localhost` names can be resolved by DNS to any address.
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Checks a destination URL: absolute, https: (or http: on a loopback host), no credentials in it. Answers
 * the problem, or undefined. The URL itself is never quoted (it may carry a signature).
 */
export function destinationUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid absolute URL';
  }
  if (parsed.username || parsed.password) return 'must not carry user:password@ (use the token/password settings)';
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:') return isLoopbackHost(parsed.hostname) ? undefined : 'must use https: (http: is allowed only for loopback hosts)';
  return `must use https:, not ${parsed.protocol}`;
}

export interface HttpClientOptions {
  /** Time allowed for one request, connect to last byte. Default 30 s. */
  readonly timeoutMs?: number;
  /** Open sockets per host (the per-destination concurrency cap lives in delivery/). Default 16. */
  readonly maxSockets?: number;
}

/**
 * The shared client: keep-alive agents, a timeout, no automatic retries (delivery/ retries), every status
 * handed back (so the sink reads error bodies), no proxies from the environment surprises, redirects off
 * (a webhook that redirects is misconfigured, and a redirect would carry our headers elsewhere).
 */
export function createHttpClient(options: HttpClientOptions = {}): AxiosInstance {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16 };
  return axios.create({
    timeout: options.timeoutMs ?? 30_000,
    httpAgent: new http.Agent(agentOptions),
    httpsAgent: new https.Agent(agentOptions),
    maxRedirects: 0,
    proxy: false,
    validateStatus: () => true,
    maxBodyLength: 64 * 1024 * 1024,
    maxContentLength: 16 * 1024 * 1024,
    // Bodies are built by the sinks (concatenated HEC events, gzip): send them as given.
    transformRequest: [(data: unknown) => data],
    responseType: 'text',
  });
}

/** Closes a client's keep-alive sockets. */
export function closeHttpClient(client: AxiosInstance): void {
  const defaults = client.defaults as { httpAgent?: http.Agent; httpsAgent?: https.Agent };
  defaults.httpAgent?.destroy();
  defaults.httpsAgent?.destroy();
}
