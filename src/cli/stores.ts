/**
 * Where the command line keeps its state: blob storage when FORWARDER_STORAGE_CONNECTION holds a connection
 * string (shared with the Function, so the CLI and the Function never notify twice), else a local state
 * folder. Every command that touches state (forward, redrive, status) opens it here.
 */
import path from 'node:path';
import type { DeadLetterSink, DeliveryLedger } from '../delivery/contracts.js';
import type { QuarantineSink } from '../pipeline/quarantine.js';
import { createBlobDeadLetterStore } from '../storage/blobDeadLetters.js';
import { createBlobLedger } from '../storage/blobLedger.js';
import { rememberUnconfirmed } from '../delivery/unconfirmed.js';
import { containerNameProblem, createBlobQuarantineStore, type QuarantineBacklog } from '../storage/blobQuarantine.js';
import { InvalidSettingError } from './exit.js';
import { readLedgerLeaseSeconds } from '../config/appSettings.js';
import type { DeadLetterStore } from '../storage/deadLetterStore.js';
import { FolderDeadLetterStore } from '../storage/folderDeadLetters.js';
import { FolderLedger } from '../storage/folderLedger.js';
import { FolderQuarantineStore } from '../storage/folderQuarantine.js';

/** The CLI's stores: written by `forward`, read (listed, re-driven) by `redrive` and `status`. */
export interface CliStores {
  readonly ledger: DeliveryLedger;
  readonly deadLetters: DeadLetterSink & DeadLetterStore;
  readonly quarantine: QuarantineSink & QuarantineBacklog;
}

/**
 * Where the CLI keeps its ledger, dead letters and quarantine: blob storage when
 * FORWARDER_STORAGE_CONNECTION holds a connection string (shared with the Function, so the CLI and the
 * Function never notify twice), else the local state folder.
 *
 * @throws InvalidSettingError when a container setting is not a valid container name.
 */
export function openStores(stateDir: string, env: Readonly<Record<string, string | undefined>>): CliStores {
  const problems: string[] = [];
  const leaseMs = readLedgerLeaseSeconds(env, problems) * 1000;
  if (problems[0] !== undefined) throw new InvalidSettingError(problems[0]);
  const connectionString = env['FORWARDER_STORAGE_CONNECTION']?.trim();
  if (connectionString) {
    // The Function's container settings, so that both share one ledger.
    const container = (setting: string): { containerName?: string } => {
      const name = env[setting]?.trim();
      const problem = name ? containerNameProblem(name) : undefined;
      if (problem) throw new InvalidSettingError(`${setting}=${name ?? ''}: ${problem}`);
      return name ? { containerName: name } : {};
    };
    return {
      ledger: rememberUnconfirmed(createBlobLedger({ connectionString, leaseMs, ...container('LEDGER_CONTAINER') })),
      deadLetters: createBlobDeadLetterStore({ connectionString, ...container('DEADLETTER_CONTAINER') }),
      quarantine: createBlobQuarantineStore({ connectionString, ...container('QUARANTINE_CONTAINER') }),
    };
  }
  return {
    ledger: rememberUnconfirmed(new FolderLedger(stateDir, { leaseMs })),
    deadLetters: new FolderDeadLetterStore(stateDir),
    quarantine: new FolderQuarantineStore(path.join(stateDir, 'quarantine')),
  };
}
