/** Exit codes of every command: 0 success, 1 some record was quarantined or invalid, 2 usage or configuration. */
export const EXIT = Object.freeze({ ok: 0, quarantined: 1, usage: 2 } as const);
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A setting the command line reads (environment, container name) is invalid: a usage error (exit 2) naming it. */
export class InvalidSettingError extends Error {
  override readonly name = 'InvalidSettingError';
}
