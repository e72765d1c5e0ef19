/**
 * The `teams` destination's settings: a Workflows (or legacy connector) webhook URL, which carries its
 * `sig=` signature and is therefore a Secret, the card format, and the per-request time limit.
 */
import type { Secret } from '../../config/secret.js';
import type { Destination } from '../../routing/types.js';
import { numberSetting, SinkConfigError, urlSetting, type SinkContext } from '../settings.js';

export const TEAMS_FORMATS = ['adaptive', 'messagecard'] as const;
/** `adaptive`: an Adaptive Card 1.4 in a `message` envelope (Workflows). `messagecard`: legacy connectors. */
export type TeamsFormat = (typeof TEAMS_FORMATS)[number];

/** Default time allowed for one request, connect to last byte, in milliseconds (as the schema says). */
export const TEAMS_DEFAULT_TIMEOUT_MS = 30_000;

export interface TeamsConfig {
  /** The webhook URL with its signature: reveal only to send. */
  readonly url: Secret;
  readonly format: TeamsFormat;
  readonly timeoutMs: number;
}

/** Reads and checks a `teams` destination; throws SinkConfigError naming the key, never a value. */
export function readTeamsConfig(destination: Destination, context: SinkContext): TeamsConfig {
  const url = urlSetting(destination, 'url', context);
  const rawFormat = destination.settings['format'] ?? 'adaptive';
  if (!isTeamsFormat(rawFormat)) {
    throw new SinkConfigError(`destinations.${destination.name}.format: expected one of ${TEAMS_FORMATS.join(', ')}`);
  }
  return Object.freeze({ url, format: rawFormat, timeoutMs: timeoutSetting(destination) });
}

function isTeamsFormat(value: unknown): value is TeamsFormat {
  return typeof value === 'string' && (TEAMS_FORMATS as readonly string[]).includes(value);
}

function timeoutSetting(destination: Destination): number {
  const timeoutMs = numberSetting(destination, 'timeoutMs', TEAMS_DEFAULT_TIMEOUT_MS);
  if (timeoutMs <= 0) throw new SinkConfigError(`destinations.${destination.name}.timeoutMs: must be a positive number of milliseconds`);
  return timeoutMs;
}
