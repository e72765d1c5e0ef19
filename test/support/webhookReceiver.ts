/**
 * Local HTTP receivers for sink tests (node:http on 127.0.0.1, port 0): a scriptable server core, shared with
 * the Teams receiver, and a generic JSON webhook receiver.
 *
 * Scripting: `script(...replies)` queues answers for the next requests, one each; once the queue is empty the
 * receiver behaves like the real service. A reply is an answer (status, body, headers), `hang` (read the
 * request, never answer) or `close` (read the request, then destroy the connection: a reset).
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ScriptedReply =
  | { readonly kind: 'answer'; readonly status: number; readonly body?: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly kind: 'hang' }
  | { readonly kind: 'close' };

export function answer(status: number, body = '', headers: Readonly<Record<string, string>> = {}): ScriptedReply {
  return { kind: 'answer', status, body, headers };
}
export const HANG: ScriptedReply = Object.freeze({ kind: 'hang' });
export const CLOSE: ScriptedReply = Object.freeze({ kind: 'close' });

/** One request as the receiver saw it, with what it answered (undefined for `hang` and `close`). */
export interface ReceivedRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  readonly bytes: number;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly json: unknown;
  status?: number;
}

export interface ScriptedServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Every request, in arrival order. */
  readonly requests: ReceivedRequest[];
  /** Queues answers for the next requests. */
  script(...replies: ScriptedReply[]): void;
  /** Resolves with the next request once its body has been read (for abort tests: abort while it hangs). */
  nextRequest(): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

/** Starts a server that answers from the script, else with `behave(request)`. */
export async function startScriptedServer(behave: (request: ReceivedRequest) => ScriptedReply): Promise<ScriptedServer> {
  const requests: ReceivedRequest[] = [];
  const queue: ScriptedReply[] = [];
  const waiters: ((request: ReceivedRequest) => void)[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      const request: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        text,
        bytes: body.length,
        json: parseJson(text),
      };
      requests.push(request);
      const reply = queue.shift() ?? behave(request);
      if (reply.kind === 'answer') {
        request.status = reply.status;
        res.writeHead(reply.status, { ...(reply.body ? { 'Content-Type': 'text/plain; charset=utf-8' } : {}), ...reply.headers });
        res.end(reply.body ?? '');
      } else if (reply.kind === 'close') {
        req.socket.destroy();
      }
      // `hang`: leave the request open until the client gives up or the server closes.
      for (const wake of waiters.splice(0)) wake(request);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    script(...replies: ScriptedReply[]): void {
      queue.push(...replies);
    },
    nextRequest(): Promise<ReceivedRequest> {
      return new Promise((resolve) => waiters.push(resolve));
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export interface WebhookReceiver extends ScriptedServer {
  /** The URL to configure: carries a `token=` the receiver checks (401 without it), like many receivers. */
  readonly url: string;
  readonly token: string;
  /** Bodies of the requests answered with 2xx. */
  readonly bodies: unknown[];
}

export interface WebhookReceiverOptions {
  /** Status of a successful answer. Default 200. */
  readonly successStatus?: number;
}

/**
 * A generic JSON webhook receiver: POST with `Content-Type: application/json` and a JSON body, and the right
 * `token` in the query; answers 405, 415, 400 or 401 otherwise, like a careful in-house receiver would.
 */
export async function startWebhookReceiver(options: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const token = randomBytes(16).toString('hex');
  const bodies: unknown[] = [];
  const server = await startScriptedServer((request) => {
    if (request.method !== 'POST') return answer(405, 'POST only');
    if (new URL(request.url, 'http://receiver').searchParams.get('token') !== token) return answer(401, 'bad token');
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) return answer(415, 'JSON only');
    if (request.json === undefined) return answer(400, 'body is not JSON');
    bodies.push(request.json);
    const status = options.successStatus ?? 200;
    return status === 204 ? answer(204) : answer(status, '{"ok":true}', { 'Content-Type': 'application/json' });
  });
  return { ...server, url: `${server.origin}/hooks/defender?token=${token}`, token, bodies };
}
