/**
 * A Microsoft Teams stand-in (protocols.md), on node:http at 127.0.0.1, port 0.
 *
 * - `workflows` mode: a "When a Teams webhook request is received" flow. URL
 *   `/workflows/<id>/triggers/manual/paths/invoke?api-version=2016-06-01&sp=...&sv=1.0&sig=<signature>`;
 *   a wrong signature answers 401; a body over the size limit (28 KB) 413; anything but the
 *   `{"type":"message","attachments":[<one Adaptive Card, version <= 1.4>]}` envelope 400; otherwise 202 with
 *   an empty body.
 * - `legacy` mode: an Office 365 connector incoming webhook. URL `/webhookb2/<id>/IncomingWebhook/<token>/<id>`;
 *   answers 200 with body `1`; 400 `Summary or Text is required.` for a MessageCard without either.
 *
 * Both can be scripted (see webhookReceiver.ts): `throttle(2, 1)` = "429 with Retry-After: 1 twice",
 * `answer(500)`, `HANG`, `CLOSE`, `legacyError(text)` = a 200 carrying an error text.
 */
import { randomBytes } from 'node:crypto';
import { answer, startScriptedServer, type ReceivedRequest, type ScriptedReply, type ScriptedServer } from './webhookReceiver.js';

export { answer, CLOSE, HANG, type ReceivedRequest, type ScriptedReply } from './webhookReceiver.js';

/** Teams' limit on one message: "about 28 KB". */
export const TEAMS_RECEIVER_MAX_BYTES = 28 * 1024;

export interface TeamsReceiverOptions {
  readonly mode?: 'workflows' | 'legacy';
  /** Bodies larger than this answer 413. Default `TEAMS_RECEIVER_MAX_BYTES`. */
  readonly maxBodyBytes?: number;
}

export interface TeamsReceiver extends ScriptedServer {
  readonly mode: 'workflows' | 'legacy';
  /** The URL to configure, with its secret (`sig=` for workflows, a path token for legacy). */
  readonly url: string;
  /** The secret part of the URL. */
  readonly signature: string;
  /** Messages the receiver accepted (202 / 200 `1`), parsed. */
  readonly messages: unknown[];
  /** Queues `times` answers of 429 with `Retry-After: <seconds>`. */
  throttle(times: number, retryAfterSeconds: number): void;
}

/** A legacy connector's failure reported in a 200, as connectors did when throttled. */
export function legacyError(text = 'Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-production-weu-azsc2-4-27,cv=Aa5y8wGjqUWEzDzvWjG4ng.0.'): ScriptedReply {
  return answer(200, text);
}

export async function startTeamsReceiver(options: TeamsReceiverOptions = {}): Promise<TeamsReceiver> {
  const mode = options.mode ?? 'workflows';
  const maxBodyBytes = options.maxBodyBytes ?? TEAMS_RECEIVER_MAX_BYTES;
  const id = randomBytes(16).toString('hex');
  const signature = randomBytes(24).toString('base64url');
  const path =
    mode === 'workflows' ? `/workflows/${id}/triggers/manual/paths/invoke` : `/webhookb2/${id}@${id}/IncomingWebhook/${signature}/${id}`;
  const messages: unknown[] = [];

  const server = await startScriptedServer((request) => {
    const url = new URL(request.url, 'http://teams');
    if (url.pathname !== path) return answer(404, '{"error":{"code":"WorkflowNotFound","message":"The workflow was not found."}}');
    if (request.method !== 'POST') return answer(405, '{"error":{"code":"MethodNotAllowed"}}');
    if (mode === 'workflows' && url.searchParams.get('sig') !== signature) {
      return answer(401, '{"error":{"code":"DirectApiInvalidAuthorizationSignature","message":"The provided authorization signature is not valid."}}');
    }
    if (request.bytes > maxBodyBytes) return answer(413, '{"error":{"code":"RequestEntityTooLarge","message":"The message is too large."}}');
    const problem = mode === 'workflows' ? workflowsProblem(request) : legacyProblem(request);
    if (problem !== undefined) {
      return mode === 'workflows' ? answer(400, JSON.stringify({ error: { code: 'InvalidRequestContent', message: problem } })) : answer(400, problem);
    }
    messages.push(request.json);
    return mode === 'workflows' ? answer(202) : answer(200, '1');
  });

  const url =
    mode === 'workflows'
      ? `${server.origin}${path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${signature}`
      : `${server.origin}${path}`;
  return {
    ...server,
    mode,
    url,
    signature,
    messages,
    throttle(times: number, retryAfterSeconds: number): void {
      for (let n = 0; n < times; n += 1) {
        server.script(answer(429, '{"error":{"code":"TooManyRequests"}}', { 'Retry-After': String(retryAfterSeconds) }));
      }
    },
  };
}

/** Why a Workflows flow (and Teams after it) would refuse the body, or undefined. */
function workflowsProblem(request: ReceivedRequest): string | undefined {
  if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) return 'The request content type must be application/json.';
  const message = request.json;
  if (!isObject(message)) return 'The request body is not a JSON object.';
  if (message['type'] !== 'message') return 'The message type must be "message".';
  const attachments = message['attachments'];
  if (!Array.isArray(attachments) || attachments.length !== 1) return 'Exactly one attachment is expected.';
  const attachment: unknown = attachments[0];
  if (!isObject(attachment) || attachment['contentType'] !== 'application/vnd.microsoft.card.adaptive') {
    return 'The attachment must be an Adaptive Card (application/vnd.microsoft.card.adaptive).';
  }
  const card = attachment['content'];
  if (!isObject(card) || card['type'] !== 'AdaptiveCard') return 'The attachment content must be an AdaptiveCard.';
  const version = typeof card['version'] === 'string' ? /^(\d+)\.(\d+)$/.exec(card['version']) : null;
  if (version === null) return 'The card version is missing or malformed.';
  const major = Number(version[1]);
  const minor = Number(version[2]);
  if (major !== 1 || minor > 4) return `Adaptive Card version ${card['version'] as string} is not supported; use 1.4 or lower.`;
  if (!Array.isArray(card['body'])) return 'The card body must be a list.';
  return undefined;
}

/** Why a legacy connector would refuse the body, or undefined. */
function legacyProblem(request: ReceivedRequest): string | undefined {
  const message = request.json;
  if (!isObject(message)) return 'Bad payload received by generic incoming webhook.';
  if (message['type'] === 'message' && Array.isArray(message['attachments'])) return undefined;
  const hasText = (key: string): boolean => typeof message[key] === 'string' && (message[key] as string).trim() !== '';
  if (!hasText('summary') && !hasText('text')) return 'Summary or Text is required.';
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
