/**
 * Destination type -> sink factory. Adding a destination type touches this file and its own folder only.
 */
import type { DestinationType, RoutingRules } from '../routing/types.js';
import { createEmailSink } from './email/sink.js';
import { SinkConfigError, type SinkContext } from './settings.js';
import type { Sink } from './sink.js';
import { createSplunkHecSink } from './splunk-hec/sink.js';
import { createTeamsSink } from './teams/sink.js';
import { createWebhookSink } from './webhook/sink.js';
import type { Destination } from '../routing/types.js';

export type SinkFactory = (destination: Destination, context: SinkContext) => Sink;

export const SINK_FACTORIES: Readonly<Record<DestinationType, SinkFactory>> = Object.freeze({
  'splunk-hec': createSplunkHecSink,
  teams: createTeamsSink,
  email: createEmailSink,
  webhook: createWebhookSink,
});

/**
 * One sink per destination of the rules. Every destination is built (and its settings resolved) up front,
 * so a missing `${ENV}` or a bad URL is reported for all destinations at once, at start-up, not at the first
 * record that needs it.
 */
export function createSinks(rules: RoutingRules, context: SinkContext): Map<string, Sink> {
  const sinks = new Map<string, Sink>();
  const problems: string[] = [];
  for (const destination of rules.destinations.values()) {
    try {
      sinks.set(destination.name, SINK_FACTORIES[destination.type](destination, context));
    } catch (error) {
      if (!(error instanceof SinkConfigError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) {
    for (const sink of sinks.values()) void sink.close();
    throw new SinkConfigError(`destinations cannot be used as configured:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
  return sinks;
}

/** Closes every sink (connections, pools). */
export async function closeSinks(sinks: ReadonlyMap<string, Sink>): Promise<void> {
  await Promise.allSettled([...sinks.values()].map((sink) => sink.close()));
}
