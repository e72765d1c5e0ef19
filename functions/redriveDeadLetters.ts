/**
 * Registration of the re-drive timer: dead letters delivered again, spaced out, until delivered or expired.
 * Registration and adaptation only; the work is in src/host/redriveTimer.ts and src/delivery/redrive.ts.
 *
 * - The schedule is read from REDRIVE_SCHEDULE when the app starts, not bound as `%REDRIVE_SCHEDULE%`: the
 *   host resolves `%...%` from its own settings, where an unset name fails the function, and the default
 *   (every 5 minutes) could not apply.
 * - `runOnStartup: false`: a scale-out or a restart must not start a re-drive outside the schedule.
 * - `useMonitor: true`: schedule status is kept in storage, so a run missed while the app was down runs
 *   once when it is back (`isPastDue`).
 * - No retry policy: a run that fails (a store unreachable) is simply the next scheduled run's work.
 */
import { app } from '@azure/functions';
import { functionApp } from '../src/host/functionApp.js';
import { createRedriveTimerHandler } from '../src/host/redriveTimer.js';

// Shared with the Event Hub function: one rules source, the same sinks, ledger and stores. Each run takes
// the rules current when it starts.
const shared = await functionApp();

export const redriveDeadLetters = createRedriveTimerHandler({
  store: shared.deadLetters,
  routing: shared.routing,
  ledger: shared.ledger,
  minIntervalMs: shared.settings.redriveMinIntervalMs,
  maxAgeMs: shared.settings.redriveMaxAgeMs,
});

app.timer('redriveDeadLetters', {
  schedule: shared.settings.redriveSchedule,
  runOnStartup: false,
  useMonitor: true,
  handler: async (timer, context) => {
    await redriveDeadLetters(timer, context);
  },
});
