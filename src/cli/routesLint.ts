/**
 * `defender-forwarder routes lint`: checks a rules file (schema and reference errors, expired mutes, shadowed
 * routes, unset `${ENV}`), and with `--input`, which routes never match those records and which records
 * match nothing.
 */
import { lintRules } from '../routing/lint.js';
import type { RoutingRules } from '../routing/types.js';
import type { Finding } from '../model/finding.js';
import { inspectEnvelope } from '../pipeline/run.js';
import { EXIT, type ExitCode } from './exit.js';
import { eachEnvelope } from './inputs.js';
import { writeOut, type CliIo } from './io.js';

export async function routesLintCommand(
  options: { inputs: readonly string[]; rules: RoutingRules; report: 'json' | 'text' },
  io: CliIo,
): Promise<ExitCode> {
  let findings: Finding[] | undefined;
  let quarantined = 0;
  if (options.inputs.length > 0) {
    const collected: Finding[] = [];
    findings = collected;
    await eachEnvelope('routes lint', options.inputs, io, (envelope) => {
      const records = inspectEnvelope(envelope, { now: io.now() });
      for (const record of records) {
        if (record.ok) collected.push(record.finding);
        else quarantined += 1;
      }
      return records.length;
    });
  }
  const issues = lintRules(options.rules, { env: io.env, now: io.now(), ...(findings ? { findings } : {}) });
  for (const issue of issues) {
    const line =
      options.report === 'json'
        ? JSON.stringify({ source: options.rules.source, ...issue })
        : `${options.rules.source}${issue.line !== undefined ? `:${issue.line}` : ''}: ${issue.level}: ${issue.path ? `${issue.path}: ` : ''}${issue.message} [${issue.code}]`;
    await writeOut(io.stdout, `${line}\n`);
  }
  const errors = issues.filter((issue) => issue.level === 'error').length;
  const warnings = issues.length - errors;
  const checked = findings ? `, checked against ${findings.length} records${quarantined > 0 ? ` (${quarantined} invalid records ignored)` : ''}` : '';
  io.stderr.write(`routes lint: ${errors} errors, ${warnings} warnings${checked}\n`);
  return errors > 0 ? EXIT.usage : EXIT.ok;
}
