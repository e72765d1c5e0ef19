import Module from 'node:module';
import { app, InvocationContext, trigger } from '@azure/functions';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FUNCTIONS_CORE_MODULE_ID, installFunctionsCoreShim } from '../support/functionsCore.js';

// Installed before the first app.* call of this process (the import above does not look the module up).
const requireBefore = Module.prototype.require;
const shim = installFunctionsCoreShim();

afterAll(() => {
  shim.uninstall();
});

describe('the @azure/functions-core shim', () => {
  it('captures an app.generic Event Hub registration with dataType string and cardinality many', async () => {
    const warn = vi.spyOn(console, 'warn');
    const handler = vi.fn(async (events: unknown, context: InvocationContext) => {
      context.log(`got ${Array.isArray(events) ? events.length : 0} events`);
      return undefined;
    });
    app.generic('defenderForwarder', {
      trigger: trigger.generic({
        type: 'eventHubTrigger',
        connection: 'EVENTHUB_CONNECTION',
        eventHubName: '%EVENTHUB_NAME%',
        consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
        cardinality: 'many',
        dataType: 'string',
      }),
      retry: { strategy: 'exponentialBackoff', maxRetryCount: -1, minimumInterval: { seconds: 5 }, maximumInterval: { minutes: 5 } },
      handler,
    });

    // The library found a host: no "test mode" warning, and it announced its programming model.
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(shim.programmingModel).toMatchObject({ name: '@azure/functions' });

    const registration = shim.registration('defenderForwarder');
    expect(registration.callback).toBe(handler);
    const triggerBinding = shim.triggerOf('defenderForwarder');
    expect(triggerBinding).toMatchObject({
      type: 'eventHubTrigger',
      direction: 'in',
      connection: 'EVENTHUB_CONNECTION',
      eventHubName: '%EVENTHUB_NAME%',
      consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
      cardinality: 'many',
      dataType: 'string',
    });
    expect(triggerBinding.bindingName).toMatch(/^eventHubTrigger[0-9a-f]{10}$/);
    expect(Object.keys(registration.metadata.bindings)).toEqual([triggerBinding.bindingName]);
    // Durations reach the host as {seconds} (toRpcDuration: whole seconds, as the host rounds them anyway).
    expect(registration.metadata.retryOptions).toEqual({
      strategy: 'exponentialBackoff',
      retryStrategy: 'exponentialBackoff',
      maxRetryCount: -1,
      minimumInterval: { seconds: 5 },
      maximumInterval: { seconds: 300 },
      delayInterval: undefined,
    });

    // The captured callback is the handler: a test can call it as the worker would.
    const logs: unknown[][] = [];
    const context = new InvocationContext({
      invocationId: 'test',
      functionName: 'defenderForwarder',
      logHandler: (_level, ...args) => logs.push(args),
    });
    await registration.callback(['{"a":1}', 'not json'], context);
    expect(handler).toHaveBeenCalledOnce();
    expect(logs).toEqual([['got 2 events']]);
  });

  it('refuses a second function of the same name, as the worker does', () => {
    const options = {
      trigger: trigger.generic({ type: 'timerTrigger', schedule: '0 */5 * * * *' }),
      handler: () => undefined,
    };
    app.generic('redrive', options);
    expect(() => app.generic('redrive', options)).toThrow(/"redrive" has already been registered/);
    expect(shim.triggerOf('redrive')).toMatchObject({ type: 'timerTrigger', schedule: '0 */5 * * * *' });
  });

  it('says what was registered when asked for a missing function', () => {
    expect(() => shim.registration('nope')).toThrow(/no function "nope" was registered \(registered: "defenderForwarder", "redrive"\)/);
  });

  it('answers only @azure/functions-core and restores Node\'s require on uninstall', () => {
    const require = Module.createRequire(import.meta.url);
    expect(require(FUNCTIONS_CORE_MODULE_ID)).toHaveProperty('registerFunction');
    expect(require('node:path')).toHaveProperty('join');
    expect(Module.prototype.require).not.toBe(requireBefore);
    shim.uninstall();
    expect(Module.prototype.require).toBe(requireBefore);
    expect(() => require(FUNCTIONS_CORE_MODULE_ID)).toThrow(/Cannot find module '@azure\/functions-core'/);
    // Installing again hands back the same captured state.
    expect(installFunctionsCoreShim().registrations.map((r) => r.name)).toEqual(['defenderForwarder', 'redrive']);
  });
});
