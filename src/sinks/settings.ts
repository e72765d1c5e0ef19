/**
 * Reading a destination's settings from the rules file: `${ENV}` references resolved from the environment,
 * secrets wrapped in `Secret`, URLs checked. Errors name the destination and the key, never a value.
 */
import type { AxiosInstance } from 'axios';
import { Secret } from '../config/secret.js';
import type { Destination } from '../routing/types.js';
import { destinationUrlProblem } from './http.js';

/** What a sink factory gets besides its destination. */
export interface SinkContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The shared HTTP client (see http.ts). */
  readonly http: AxiosInstance;
  /**
   * Preview only (`--dry-run --preview`): nothing will be sent, so unset `${ENV}` values are allowed and
   * stand in as empty secrets; rendering still works.
   */
  readonly previewOnly?: boolean;
}

/** A destination that cannot be used as configured. */
export class SinkConfigError extends Error {
  override readonly name = 'SinkConfigError';
}

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** The raw setting: a string, resolved when it is an `${ENV}` reference; undefined when absent. */
function resolve(destination: Destination, key: string, context: SinkContext): { value: string; source: string } | undefined {
  const raw = destination.settings[key];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string') throw new SinkConfigError(`destinations.${destination.name}.${key}: expected text`);
  const reference = ENV_REFERENCE.exec(raw);
  if (!reference?.[1]) return { value: raw, source: 'the rules file' };
  const name = reference[1];
  const value = context.env[name];
  if (value === undefined || value === '') {
    if (context.previewOnly) return { value: '', source: raw };
    throw new SinkConfigError(`destinations.${destination.name}.${key}: environment variable ${name} is not set`);
  }
  return { value, source: raw };
}

/** A required secret setting. */
export function secretSetting(destination: Destination, key: string, context: SinkContext): Secret {
  const resolved = resolve(destination, key, context);
  if (resolved === undefined) throw new SinkConfigError(`destinations.${destination.name}.${key}: required`);
  return new Secret(resolved.value, resolved.source);
}

/** An optional secret setting. */
export function optionalSecretSetting(destination: Destination, key: string, context: SinkContext): Secret | undefined {
  const resolved = resolve(destination, key, context);
  return resolved === undefined ? undefined : new Secret(resolved.value, resolved.source);
}

/** An optional plain text setting (`index`, `sourcetype`, `from`). */
export function textSetting(destination: Destination, key: string, context: SinkContext): string | undefined {
  return resolve(destination, key, context)?.value;
}

/**
 * A URL setting, checked: https:, or http: on a loopback host. Returned as a Secret because webhook and
 * Teams URLs carry their signature; `reveal()` it only to send.
 */
export function urlSetting(destination: Destination, key: string, context: SinkContext): Secret {
  const url = secretSetting(destination, key, context);
  if (context.previewOnly && url.reveal() === '') return url;
  const problem = destinationUrlProblem(url.reveal());
  if (problem) throw new SinkConfigError(`destinations.${destination.name}.${key} (${url.source}): ${problem}`);
  return url;
}

/** An optional boolean / number setting, as the schema already typed it. */
export function booleanSetting(destination: Destination, key: string, fallback: boolean): boolean {
  const raw = destination.settings[key];
  return typeof raw === 'boolean' ? raw : fallback;
}

export function numberSetting(destination: Destination, key: string, fallback: number): number {
  const raw = destination.settings[key];
  return typeof raw === 'number' && Number.isFinite(raw) ? raw : fallback;
}

/** A list of texts (`to`, `cc`): one string or a list. */
export function listSetting(destination: Destination, key: string): string[] {
  const raw = destination.settings[key];
  if (typeof raw === 'string') return [raw];
  return Array.isArray(raw) ? raw.filter((item): item is string => typeof item === 'string') : [];
}

/** A map of texts whose values may be `${ENV}` references (webhook headers): all treated as secrets. */
export function secretMapSetting(destination: Destination, key: string, context: SinkContext): Map<string, Secret> {
  const raw = destination.settings[key];
  const out = new Map<string, Secret>();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== 'string') continue;
    const reference = ENV_REFERENCE.exec(value);
    if (!reference?.[1]) {
      out.set(name, new Secret(value, 'the rules file'));
      continue;
    }
    const resolved = context.env[reference[1]];
    if ((resolved === undefined || resolved === '') && !context.previewOnly) {
      throw new SinkConfigError(`destinations.${destination.name}.${key}.${name}: environment variable ${reference[1]} is not set`);
    }
    out.set(name, new Secret(resolved ?? '', value));
  }
  return out;
}
