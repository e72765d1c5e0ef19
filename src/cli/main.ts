/**
 * The `defender-forwarder` command line. Every command returns its exit code: 0 success, 1 some record was
 * quarantined or invalid, 2 usage or configuration errors.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ContainerClient } from '@azure/storage-blob';
import { packageRoot } from '../config/packageRoot.js';
import { loadRulesFile, RulesError } from '../routing/load.js';
import type { RoutingRules } from '../routing/types.js';
import { readTelemetrySettings, startMetricsExport, type MetricsExport } from '../telemetry/azureMonitor.js';
import { EXIT, InvalidSettingError, type ExitCode } from './exit.js';
import { forwardCommand, type ReportFormat } from './forward.js';
import { checkpointContainer, forwardFromEventHub } from './forwardEventHub.js';
import type { EventHubSource } from '../eventhub/consumer.js';
import { containerNameProblem } from '../storage/blobQuarantine.js';
import { redactCredentials } from '../config/secret.js';
import { openStores, storageFromEnv } from './stores.js';
import { FolderQuarantineStore } from '../storage/folderQuarantine.js';
import { InputError } from './inputs.js';
import { processIo, type CliIo } from './io.js';
import { routesLintCommand } from './routesLint.js';
import { routesTestCommand } from './routesTest.js';
import { validateCommand } from './validate.js';
import { parseDuration, redriveCommand } from './redrive.js';
import { statusCommand } from './status.js';
import { readRedriveMaxAgeHours } from '../config/appSettings.js';
import { StoreError } from '../storage/storeError.js';
import { closeHttpClient, createHttpClient } from '../sinks/http.js';
import { closeSinks, createSinks } from '../sinks/registry.js';
import { SinkConfigError } from '../sinks/settings.js';
import type { Sink } from '../sinks/sink.js';

/** A failure the user can fix: printed as one clear message, exit code 2. */
class UsageError extends Error {}

/** Checkpoint container of the standalone consumer when none is configured. */
const DEFAULT_CHECKPOINT_CONTAINER = 'eventhub-checkpoints';

interface ForwardCliOptions {
  readonly input?: string[];
  readonly rules?: string;
  readonly dryRun: boolean;
  readonly report: ReportFormat;
  readonly quarantineDir?: string;
  readonly preview?: string;
  readonly stateDir: string;
  readonly fromEventhub: boolean;
  readonly eventhub?: string;
  readonly namespace?: string;
  readonly consumerGroup?: string;
  readonly checkpointContainer?: string;
  readonly maxBatchSize: number;
  readonly maxWait: number;
  readonly startPosition: 'earliest' | 'latest';
  readonly exitWhenIdle?: number;
  readonly summary: 'text' | 'json';
}

/** A whole number of at least 1 (counts, seconds). */
function parseCount(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return number;
}

/**
 * Load-balancing timings of the standalone consumer, from FORWARDER_LOAD_BALANCING_UPDATE_MS and
 * FORWARDER_OWNERSHIP_EXPIRY_MS (2 s and 30 s when unset): a shorter expiry hands a
 * dead instance's partitions over sooner, at the cost of more ownership writes.
 */
function loadBalancingFromEnv(env: Readonly<Record<string, string | undefined>>): { loadBalancing?: { updateIntervalInMs?: number; partitionOwnershipExpirationIntervalInMs?: number } } {
  const read = (name: string): number | undefined => {
    const text = env[name]?.trim();
    if (!text) return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < 100) throw new UsageError(`${name}=${text}: expected milliseconds, at least 100`);
    return value;
  };
  const update = read('FORWARDER_LOAD_BALANCING_UPDATE_MS');
  const expiry = read('FORWARDER_OWNERSHIP_EXPIRY_MS');
  if (update === undefined && expiry === undefined) return {};
  return {
    loadBalancing: {
      ...(update !== undefined ? { updateIntervalInMs: update } : {}),
      ...(expiry !== undefined ? { partitionOwnershipExpirationIntervalInMs: expiry } : {}),
    },
  };
}

export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  let exitCode: ExitCode = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  let telemetry: MetricsExport | undefined;
  try {
    telemetry = await startCliTelemetry(argv, io);
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
      error instanceof InvalidSettingError ||
      error instanceof InputError ||
      error instanceof StoreError
    ) {
      io.stderr.write(`defender-forwarder: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  } finally {
    // What the run recorded since the last periodic export is sent before the command returns.
    await telemetry?.shutdown().catch((error: unknown) => io.stderr.write(`defender-forwarder: metrics not exported (${error instanceof Error ? error.message : String(error)})\n`));
  }
}

/**
 * `forward` and `redrive` export their metrics to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING
 * is set (as the Function does); the other commands send nothing anywhere.
 */
async function startCliTelemetry(argv: readonly string[], io: CliIo): Promise<MetricsExport | undefined> {
  if (argv[0] !== 'forward' && argv[0] !== 'redrive') return undefined;
  if (argv.some((arg) => arg === '--help' || arg === '-h' || arg === '--dry-run')) return undefined;
  const problems: string[] = [];
  const settings = readTelemetrySettings(io.env, problems);
  if (problems.length > 0) throw new InvalidSettingError(problems.join('; '));
  if (settings === undefined) return undefined;
  // The exporter's own usage telemetry ("statsbeat") runs a 15-second timer that outlives the command and, off
  // Azure, probes the instance metadata endpoint: a command line run turns it off unless told otherwise.
  process.env['APPLICATION_INSIGHTS_NO_STATSBEAT'] ??= 'true';
  const running = await startMetricsExport(settings);
  io.stderr.write(`${argv[0]}: ${running.description}\n`);
  return running;
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
    .addOption(inputOption())
    .addOption(rulesOption())
    .option('--dry-run', 'decide and report only: nothing is sent, no secrets are needed', false)
    .option('--preview <dir>', 'write exactly what is (or would be) sent: HEC batches, Teams cards, emails (.eml), webhook bodies')
    .option('--state-dir <dir>', 'local state: notification ledger, dead letters, quarantine (unless $FORWARDER_STORAGE_CONNECTION names a storage account)', '.forwarder-state')
    .option('--quarantine-dir <dir>', 'write quarantined records under this folder (default: <state-dir>/quarantine; in a dry run, only when given)')
    .addOption(new Option('--report <format>', 'per-record report on stdout').choices(['json', 'table', 'none']).default('json'))
    .option('--from-eventhub', 'read the Event Hub instead of --input (the standalone consumer): $EVENTHUB_CONNECTION (connection string) or --namespace with Entra ID; checkpoints in $FORWARDER_STORAGE_CONNECTION', false)
    .option('--eventhub <name>', 'Event Hub name (default: $EVENTHUB_NAME, else the connection string\'s EntityPath)')
    .option('--namespace <host>', 'Event Hubs namespace host (<name>.servicebus.windows.net) reached with DefaultAzureCredential (default: $EVENTHUB_CONNECTION__fullyQualifiedNamespace)')
    .option('--consumer-group <name>', 'consumer group dedicated to the forwarder (default: $EVENTHUB_CONSUMER_GROUP)')
    .option('--checkpoint-container <name>', `blob container of checkpoints and partition ownership (default: $CHECKPOINT_CONTAINER, else "${DEFAULT_CHECKPOINT_CONTAINER}")`)
    .option('--max-batch-size <events>', 'most events per batch', parseCount, 100)
    .option('--max-wait <seconds>', 'longest wait to fill a batch', parseCount, 1)
    .addOption(new Option('--start-position <where>', 'where a partition without a checkpoint starts').choices(['earliest', 'latest']).default('earliest'))
    .option('--exit-when-idle <seconds>', 'stop once nothing arrived for this long and no partition is behind (catch-up runs)', parseCount)
    .addOption(new Option('--summary <format>', 'json: also the run.summary accounting line on stdout, after the report (--from-eventhub writes one per batch on stderr)').choices(['text', 'json']).default('text'))
    .action(async (options: ForwardCliOptions) => {
      if (options.fromEventhub) {
        setExit(await forwardFromHub(options));
        return;
      }
      if (!options.input || options.input.length === 0) throw new UsageError('forward needs --input <path...> (files, folders or -) or --from-eventhub');
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
        if (!options.dryRun || options.preview !== undefined) sinks = openSinks(rules, http, options.dryRun);
        const stores = options.dryRun ? undefined : await openStores(options.stateDir, io.env);
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
              summary: options.summary,
            },
            io,
          ),
        );
      } finally {
        process.off('SIGINT', onSignal);
        if (sinks) await closeSinks(sinks);
        closeHttpClient(http);
      }
    });

  /** Destinations for the rules; a destination that cannot be built (unset secret, bad URL) is a usage error. */
  const openSinks = (rules: RoutingRules, http: ReturnType<typeof createHttpClient>, previewOnly: boolean): Map<string, Sink> => {
    try {
      return createSinks(rules, { env: io.env, http, previewOnly });
    } catch (error) {
      if (error instanceof SinkConfigError) throw new UsageError(error.message, { cause: error });
      throw error;
    }
  };

  /**
   * The standalone consumer. The first SIGINT/SIGTERM stops cleanly (the batches in flight finish and are
   * checkpointed); a second one abandons them (no checkpoint: the next owner reads them again).
   */
  const forwardFromHub = async (options: ForwardCliOptions): Promise<ExitCode> => {
    if (options.input && options.input.length > 0) throw new UsageError('--from-eventhub reads the hub: leave out --input');
    if (options.dryRun || options.preview !== undefined) {
      throw new UsageError('--from-eventhub delivers and checkpoints; for a dry run, export the events to files and use --input --dry-run');
    }
    const env = io.env;
    const eventHubName = options.eventhub ?? env['EVENTHUB_NAME']?.trim() ?? undefined;
    const connectionString = env['EVENTHUB_CONNECTION']?.trim();
    const namespace = options.namespace ?? env['EVENTHUB_CONNECTION__fullyQualifiedNamespace']?.trim();
    const consumerGroup = options.consumerGroup ?? env['EVENTHUB_CONSUMER_GROUP']?.trim();
    if (!consumerGroup) throw new UsageError('--consumer-group <name> is required (or set EVENTHUB_CONSUMER_GROUP): use a consumer group dedicated to the forwarder');
    if (consumerGroup.toLowerCase() === '$default') {
      throw new UsageError('consumer group $Default is shared with every other reader: create one for the forwarder');
    }
    let source: EventHubSource;
    if (namespace) {
      if (!eventHubName) throw new UsageError('--eventhub <name> is required with --namespace (or set EVENTHUB_NAME)');
      // Loaded only when used: the identity library is large, and most runs never need it.
      const { DefaultAzureCredential } = await import('@azure/identity');
      source = { fullyQualifiedNamespace: namespace, eventHubName, credential: new DefaultAzureCredential() };
    } else if (connectionString) {
      if (!eventHubName && !/;\s*EntityPath=/i.test(`;${connectionString}`)) {
        throw new UsageError('the Event Hub is not named: pass --eventhub <name>, set EVENTHUB_NAME, or use a connection string with EntityPath');
      }
      source = { connectionString, ...(eventHubName ? { eventHubName } : {}) };
    } else {
      throw new UsageError('--from-eventhub needs EVENTHUB_CONNECTION (a connection string, kept out of the command line) or --namespace <host> for Entra ID');
    }
    // Checkpoints: the forwarder's storage (connection string or identity), else the host's connection string.
    const forwarderStorage = await storageFromEnv(env);
    const hostStorage = env['AzureWebJobsStorage']?.trim();
    const connection = forwarderStorage?.connection ?? (hostStorage ? { connectionString: hostStorage } : undefined);
    if (!connection) {
      throw new UsageError(
        '--from-eventhub keeps checkpoints in blob storage: set FORWARDER_STORAGE_CONNECTION (or AzureWebJobsStorage) to a connection string, or FORWARDER_STORAGE__accountName for Entra ID',
      );
    }
    const containerName = options.checkpointContainer ?? env['CHECKPOINT_CONTAINER']?.trim() ?? DEFAULT_CHECKPOINT_CONTAINER;
    const problem = containerNameProblem(containerName);
    if (problem) throw new UsageError(`--checkpoint-container ${containerName}: ${problem}`);
    let checkpoints: ContainerClient;
    try {
      checkpoints = checkpointContainer(connection, containerName);
    } catch (error) {
      throw new UsageError(`${forwarderStorage?.setting ?? 'AzureWebJobsStorage'} cannot be read as a storage connection string (${error instanceof Error ? redactCredentials(error.message) : 'unknown error'})`, { cause: error });
    }
    if (!forwarderStorage) {
      io.stderr.write(`forward: notification ledger, dead letters and quarantine are kept under ${options.stateDir} on this machine: set FORWARDER_STORAGE_CONNECTION (or FORWARDER_STORAGE__accountName) when several instances share the hub\n`);
    }
    const rules = await loadRules(rulesPath(options.rules));
    const http = createHttpClient();
    const stop = new AbortController();
    const abandon = new AbortController();
    let signals = 0;
    const onSignal = (name: string): void => {
      signals += 1;
      if (signals === 1) {
        io.stderr.write(`forward: ${name}: stopping cleanly (the batches in flight finish and are checkpointed; ${name} again to abandon them)\n`);
        stop.abort();
      } else {
        io.stderr.write(`forward: ${name} again: abandoning the batches in flight; they stay unacknowledged and are read again\n`);
        abandon.abort();
      }
    };
    const onInt = (): void => onSignal('SIGINT');
    const onTerm = (): void => onSignal('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    let sinks: Map<string, Sink> | undefined;
    try {
      sinks = openSinks(rules, http, false);
      const stores = await openStores(options.stateDir, env);
      return await forwardFromEventHub(
        {
          source,
          consumerGroup,
          checkpoints,
          rules,
          quarantine: options.quarantineDir !== undefined ? new FolderQuarantineStore(options.quarantineDir) : stores.quarantine,
          delivery: { sinks, ledger: stores.ledger, deadLetters: stores.deadLetters },
          report: options.report,
          maxBatchSize: options.maxBatchSize,
          maxWaitTimeInSeconds: options.maxWait,
          startPosition: options.startPosition,
          ...(options.exitWhenIdle !== undefined ? { exitWhenIdleMs: options.exitWhenIdle * 1000 } : {}),
          ...loadBalancingFromEnv(env),
          stopSignal: stop.signal,
          abandonSignal: abandon.signal,
        },
        io,
      );
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (sinks) await closeSinks(sinks);
      closeHttpClient(http);
    }
  };

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

  program
    .command('redrive')
    .description('deliver dead letters again, spaced out exponentially, until delivered, found to be duplicates, or expired')
    .addOption(rulesOption())
    .option('--state-dir <dir>', 'local state, as for forward (unless $FORWARDER_STORAGE_CONNECTION names a storage account)', '.forwarder-state')
    .option('--destination <name...>', "only these destinations' letters")
    .option('--force', 'ignore the spacing between attempts: every letter is due now', false)
    .option('--max-age <duration>', 'a letter older than this that fails again is moved to expired/ (7d, 12h, 90m; default $REDRIVE_MAX_AGE_HOURS, else 7d)', parseDuration)
    .option('--dry-run', 'list what would be re-driven: nothing is sent or changed, no secrets are needed', false)
    .addOption(new Option('--report <format>', 'per-letter report on stdout').choices(['json', 'table']).default('table'))
    .addOption(new Option('--summary <format>', 'json: also the run.summary line on stdout, after the report').choices(['text', 'json']).default('text'))
    .action(
      async (options: { rules?: string; stateDir: string; destination?: string[]; force: boolean; maxAge?: number; dryRun: boolean; report: 'json' | 'table'; summary: 'text' | 'json' }) => {
        const rules = await loadRules(rulesPath(options.rules));
        const { destination, maxAge, ...rest } = options;
        // The same default as the re-drive timer's: REDRIVE_MAX_AGE_HOURS, else 7 days.
        const problems: string[] = [];
        const maxAgeMs = maxAge ?? readRedriveMaxAgeHours(io.env, problems) * 3_600_000;
        if (problems.length > 0) throw new InvalidSettingError(problems.join('; '));
        setExit(await redriveCommand({ ...rest, rules, maxAgeMs, ...(destination !== undefined ? { destinations: destination } : {}) }, io));
      },
    );

  program
    .command('status')
    .description('what is waiting: dead letters per destination and reason, expired letters, quarantined records per reason')
    .option('--state-dir <dir>', 'local state, as for forward (unless $FORWARDER_STORAGE_CONNECTION names a storage account)', '.forwarder-state')
    .addOption(new Option('--report <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (options: { stateDir: string; report: 'text' | 'json' }) => {
      setExit(await statusCommand(options, io));
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
