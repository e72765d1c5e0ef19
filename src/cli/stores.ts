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
import { readForwarderStorage, readLedgerLeaseSeconds } from '../config/appSettings.js';
import { blobConnectionOf, type BlobConnection } from '../storage/blobContainer.js';
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
 * How the command line reaches the Function's storage, when it is asked to: `FORWARDER_STORAGE_CONNECTION`
 * (a connection string), or `FORWARDER_STORAGE__blobServiceUri` / `FORWARDER_STORAGE__accountName` (Entra ID
 * through `DefaultAzureCredential`: `az login`, a managed identity, or the `AZURE_*` variables;
 * `FORWARDER_STORAGE__clientId` picks a user-assigned identity). Undefined when none is set: the state folder.
 *
 * @throws InvalidSettingError naming the setting when it is malformed.
 */
export async function storageFromEnv(env: Readonly<Record<string, string | undefined>>): Promise<{ connection: BlobConnection; setting: string } | undefined> {
  const forwarderOnly = Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith('FORWARDER_STORAGE')));
  const selected = ['FORWARDER_STORAGE_CONNECTION', 'FORWARDER_STORAGE__blobServiceUri', 'FORWARDER_STORAGE__accountName'].some((name) => env[name]?.trim());
  if (!selected) return undefined;
  const problems: string[] = [];
  const storage = readForwarderStorage(forwarderOnly, problems);
  if (problems[0] !== undefined) throw new InvalidSettingError(problems[0]);
  return { connection: await blobConnectionOf(storage), setting: storage.setting };
}

/**
 * Where the CLI keeps its ledger, dead letters and quarantine: blob storage when the `FORWARDER_STORAGE...`
 * settings name an account ({@link storageFromEnv}: shared with the Function, so the CLI and the Function
 * never notify twice), else the local state folder.
 *
 * @throws InvalidSettingError when a storage or container setting is invalid.
 */
export async function openStores(stateDir: string, env: Readonly<Record<string, string | undefined>>): Promise<CliStores> {
  const problems: string[] = [];
  const leaseMs = readLedgerLeaseSeconds(env, problems) * 1000;
  if (problems[0] !== undefined) throw new InvalidSettingError(problems[0]);
  const storage = await storageFromEnv(env);
  if (storage) {
    const { connection } = storage;
    // The Function's container settings, so that both share one ledger.
    const container = (setting: string): { containerName?: string } => {
      const name = env[setting]?.trim();
      const problem = name ? containerNameProblem(name) : undefined;
      if (problem) throw new InvalidSettingError(`${setting}=${name ?? ''}: ${problem}`);
      return name ? { containerName: name } : {};
    };
    return {
      ledger: rememberUnconfirmed(createBlobLedger({ ...connection, leaseMs, ...container('LEDGER_CONTAINER') })),
      deadLetters: createBlobDeadLetterStore({ ...connection, ...container('DEADLETTER_CONTAINER') }),
      quarantine: createBlobQuarantineStore({ ...connection, ...container('QUARANTINE_CONTAINER') }),
    };
  }
  return {
    ledger: rememberUnconfirmed(new FolderLedger(stateDir, { leaseMs })),
    deadLetters: new FolderDeadLetterStore(stateDir),
    quarantine: new FolderQuarantineStore(path.join(stateDir, 'quarantine')),
  };
}
