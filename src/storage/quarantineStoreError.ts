/**
 * The one error a quarantine store rejects with: a {@link StoreError} (same fields and wording as the
 * ledger's and the dead-letter store's), named for the quarantine. Whatever the cause, the record is NOT
 * stored: the caller must not acknowledge the batch (the Functions handler throws so its retry policy
 * re-runs the batch).
 */
import { StoreError } from './storeError.js';

export { failureFacts, type FailureFacts } from './storeError.js';

export class QuarantineStoreError extends StoreError {
  override readonly name = 'QuarantineStoreError';
}
