/**
 * Registration of the health endpoint: `GET /api/health`, behind a function key. Registration and adaptation
 * only; the work is in src/host/health.ts.
 *
 * The app is built on the first request, not when this module loads: when a setting or the rules are
 * wrong, the other functions refuse to register, and this one still answers 503 with what is wrong.
 */
import { app } from '@azure/functions';
import { functionApp } from '../src/host/functionApp.js';
import { createHealthHandler } from '../src/host/health.js';

export const health = createHealthHandler({ app: functionApp });

app.http('health', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'health',
  handler: health,
});
