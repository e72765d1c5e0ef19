// `npm start`: the forwarder over the bundled samples with the example rules, in dry-run mode.
// The samples include an invalid record and a record that is not from Defender on purpose, so exit code 1
// ("some records were quarantined") is the expected result here; anything else is passed on.
import { runCli } from '../dist/src/cli/main.js';

const code = await runCli(['forward', '--input', 'samples', '--rules', 'config/routes.example.yaml', '--dry-run', '--report', 'table', '--preview', 'preview']);
if (code === 1) {
  process.stderr.write('\n(npm start: the quarantined records above are in the samples on purpose: samples/SOURCES.md says which and why)\n');
  process.exitCode = 0;
} else {
  process.exitCode = code;
}
