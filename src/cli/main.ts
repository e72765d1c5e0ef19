/**
 * The `defender-forwarder` command line. Every command returns its exit code: 0 success, 1 some record was
 * quarantined or invalid, 2 usage or configuration errors.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { packageRoot } from '../config/packageRoot.js';
import { loadRulesFile, RulesError } from '../routing/load.js';
import type { RoutingRules } from '../routing/types.js';
import { EXIT, type ExitCode } from './exit.js';
import { forwardCommand } from './forward.js';
import { openStores } from './stores.js';
import { FolderQuarantineStore } from '../storage/folderQuarantine.js';
import { InputError } from './inputs.js';
import { processIo, type CliIo } from './io.js';
import { routesLintCommand } from './routesLint.js';
import { routesTestCommand } from './routesTest.js';
import { validateCommand } from './validate.js';
import { StoreError } from '../storage/storeError.js';
import { closeHttpClient, createHttpClient } from '../sinks/http.js';
import { closeSinks, createSinks } from '../sinks/registry.js';
import { SinkConfigError } from '../sinks/settings.js';
import type { Sink } from '../sinks/sink.js';

/** A failure the user can fix: printed as one clear message, exit code 2. */
class UsageError extends Error {}

export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  let exitCode: ExitCode = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; everything else commander rejects is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (
      error instanceof RulesError ||
      error instanceof UsageError ||
      error instanceof InputError ||
      error instanceof StoreError
    ) {
      io.stderr.write(`defender-forwarder: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
}

function buildProgram(io: CliIo, setExit: (code: ExitCode) => void): Command {
  const program = new Command('defender-forwarder')
    .description('Validate, route and forward Microsoft Defender for Cloud exports (alerts, recommendations, findings).')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError('(run with --help for usage)');

  const inputOption = (): Option =>
    new Option('-i, --input <path...>', 'files, folders (read in file-name order) or - for stdin; one body per file or per line');
  // Not commander's .env(): the environment comes from `io`, so that tests and embedders control it.
  const rulesOption = (): Option => new Option('-r, --rules <file>', 'routing rules file (YAML); default: $ROUTES_FILE');
  const rulesPath = (given: string | undefined): string => {
    const file = given ?? io.env['ROUTES_FILE'];
    if (!file) throw new UsageError('--rules <file> is required (or set ROUTES_FILE)');
    return file;
  };

  program
    .command('forward')
    .description('run the pipeline over records: deliver each to its destinations (or, with --dry-run, say where it would go)')
    .addOption(inputOption().makeOptionMandatory())
    .addOption(rulesOption())
    .option('--dry-run', 'decide and report only: nothing is sent, no secrets are needed', false)
    .option('--preview <dir>', 'write exactly what is (or would be) sent: HEC batches, Teams cards, emails (.eml), webhook bodies')
    .option('--state-dir <dir>', 'local state: notification ledger, dead letters, quarantine (unless $FORWARDER_STORAGE_CONNECTION names a storage account)', '.forwarder-state')
    .option('--quarantine-dir <dir>', 'write quarantined records under this folder (default: <state-dir>/quarantine; in a dry run, only when given)')
    .addOption(new Option('--report <format>', 'per-record report on stdout').choices(['json', 'table']).default('json'))
    .action(
      async (options: { input: string[]; rules?: string; dryRun: boolean; report: 'json' | 'table'; quarantineDir?: string; preview?: string; stateDir: string }) => {
        const rules = await loadRules(rulesPath(options.rules));
        const http = createHttpClient();
        const controller = new AbortController();
        const onSignal = (): void => {
          io.stderr.write('forward: interrupted: no more input is read; what is still being delivered is dead-lettered, not lost\n');
          controller.abort();
        };
        process.once('SIGINT', onSignal);
        let sinks: Map<string, Sink> | undefined;
        try {
          // A dry run needs no secrets; its preview renders with unset ${ENV} values standing in empty.
          if (!options.dryRun || options.preview !== undefined) {
            try {
              sinks = createSinks(rules, { env: io.env, http, previewOnly: options.dryRun });
            } catch (error) {
              if (error instanceof SinkConfigError) throw new UsageError(error.message, { cause: error });
              throw error;
            }
          }
          const stores = options.dryRun ? undefined : openStores(options.stateDir, io.env);
          const quarantine = options.quarantineDir !== undefined ? new FolderQuarantineStore(options.quarantineDir) : stores?.quarantine;
          setExit(
            await forwardCommand(
              {
                inputs: options.input,
                rules,
                dryRun: options.dryRun,
                report: options.report,
                ...(quarantine ? { quarantine } : {}),
                ...(stores && sinks ? { delivery: { sinks, ledger: stores.ledger, deadLetters: stores.deadLetters } } : {}),
                ...(options.preview !== undefined && sinks ? { preview: { folder: options.preview, sinks } } : {}),
                signal: controller.signal,
              },
              io,
            ),
          );
        } finally {
          process.off('SIGINT', onSignal);
          if (sinks) await closeSinks(sinks);
          closeHttpClient(http);
        }
      },
    );

  const routes = program.command('routes').description('test and lint routing rules');
  routes
    .command('test')
    .description('show, per record, which route matched, which did not and why, and the mute and dedupe decisions')
    .addOption(rulesOption())
    .addOption(inputOption().makeOptionMandatory())
    .addOption(new Option('--report <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (options: { input: string[]; rules?: string; report: 'text' | 'json' }) => {
      const rules = await loadRules(rulesPath(options.rules));
      setExit(await routesTestCommand({ inputs: options.input, rules, report: options.report }, io));
    });
  routes
    .command('lint')
    .description('check a rules file: schema, references, expired mutes, shadowed routes, unset ${ENV}; with --input, coverage')
    .addOption(rulesOption())
    .addOption(inputOption())
    .addOption(new Option('--report <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (options: { input?: string[]; rules?: string; report: 'text' | 'json' }) => {
      const file = rulesPath(options.rules);
      let rules: RoutingRules;
      try {
        rules = await loadRules(file);
      } catch (error) {
        if (!(error instanceof RulesError)) throw error;
        for (const issue of error.issues) {
          io.stdout.write(`${file}${issue.line !== undefined ? `:${issue.line}` : ''}: error: ${issue.path ? `${issue.path}: ` : ''}${issue.message}\n`);
        }
        io.stderr.write(`routes lint: ${error.issues.length} errors\n`);
        setExit(EXIT.usage);
        return;
      }
      setExit(await routesLintCommand({ inputs: options.input ?? [], rules, report: options.report }, io));
    });

  program
    .command('validate')
    .description('check records against the schemas and print precise errors (path, expected, got)')
    .addOption(inputOption().makeOptionMandatory())
    .addOption(new Option('--report <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (options: { input: string[]; report: 'text' | 'json' }) => {
      setExit(await validateCommand({ inputs: options.input, report: options.report }, io));
    });

  return program;
}

function packageVersion(): string {
  const manifest: unknown = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'));
  const version = manifest !== null && typeof manifest === 'object' ? (manifest as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : 'unknown';
}

/** Loads the rules file; a file that cannot be read is a usage error naming it. */
async function loadRules(file: string): Promise<RoutingRules> {
  try {
    return await loadRulesFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new UsageError(`--rules ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : 'permission denied'}`, { cause: error });
    }
    throw error;
  }
}
