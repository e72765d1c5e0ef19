/**
 * `defender-forwarder validate`: checks records against the schemas and prints precise errors (path,
 * expected, got) per record. Nothing is routed.
 */
import { inspectEnvelope } from '../pipeline/run.js';
import { EXIT, type ExitCode } from './exit.js';
import { eachEnvelope } from './inputs.js';
import { writeOut, type CliIo } from './io.js';
import { oneLine } from './render.js';

export async function validateCommand(options: { inputs: readonly string[]; report: 'json' | 'text' }, io: CliIo): Promise<ExitCode> {
  let valid = 0;
  let invalid = 0;
  await eachEnvelope('validate', options.inputs, io, async (envelope) => {
    const records = inspectEnvelope(envelope, { now: io.now() });
    for (const record of records) {
      if (record.ok) {
        valid += 1;
        const line =
          options.report === 'json'
            ? JSON.stringify({ input: record.input, valid: true, kind: record.kind, shape: record.shape, id: record.finding.id, errors: [] })
            : `ok       ${oneLine(record.input, 400)}  ${record.kind} (${record.shape})  ${oneLine(record.finding.id, 400)}`;
        await writeOut(io.stdout, `${line}\n`);
        continue;
      }
      invalid += 1;
      const { entry } = record;
      if (options.report === 'json') {
        await writeOut(
          io.stdout,
          `${JSON.stringify({ input: record.input, valid: false, kind: entry.kind, code: entry.code, reason: entry.reason, errors: entry.errors })}\n`,
        );
        continue;
      }
      const lines = [`invalid  ${oneLine(record.input, 400)}  ${entry.code}${entry.kind ? ` (${entry.kind})` : ''}`];
      if (entry.errors.length > 0) {
        for (const error of entry.errors) lines.push(`    ${oneLine(`${error.path}: expected ${error.expected}, got ${error.got}`, 400)}`);
      } else {
        lines.push(`    ${oneLine(entry.reason, 400)}`);
      }
      await writeOut(io.stdout, `${lines.join('\n')}\n`);
    }
    return records.length;
  });
  io.stderr.write(`validate: ${valid} valid, ${invalid} invalid\n`);
  return invalid > 0 ? EXIT.quarantined : EXIT.ok;
}
