/**
 * A stand-in for `@azure/functions-core`, the module the Azure Functions Node.js worker provides to the
 * `@azure/functions` library inside the host (it exists nowhere on npm). With it, `app.generic(...)`,
 * `app.eventHub(...)`, `app.timer(...)` registrations are captured as `{metadata, callback}` instead of being
 * skipped with the library's "test mode" warning, so a test can check the trigger type, cardinality,
 * dataType, connection and retry options the host would receive. Test support only.
 *
 * How it is provided:
 * - `@azure/functions` is a CommonJS bundle; it looks the module up lazily, at the first registration, with a
 *   plain `require('@azure/functions-core')` (webpack external, dist/azure-functions.js `tryGetCoreApiLazy`),
 *   and caches the answer for the life of the process, "absent" included.
 * - Vitest does not transform node_modules: the library is loaded by Node's own CommonJS loader, so Vite
 *   aliases, `vi.mock` and `server.deps` options never see that `require`. Node's ESM customization hooks
 *   (`module.register`) do not see it either on Node 20 (checked: `require()` inside a CommonJS module is not
 *   routed through them), and the synchronous `module.registerHooks` only exists from Node 22.15.
 * - What every `require()` of a CommonJS module goes through, on Node 20 and 22 alike, is
 *   `Module.prototype.require` (the module's local `require` calls `module.require(id)`). The shim wraps it
 *   and answers that one id with its own object; every other id goes to the original. `uninstall()` restores
 *   the original.
 *
 * Rules of use:
 * - Call {@link installFunctionsCoreShim} before the first `app.*` call in the process (importing
 *   `@azure/functions` earlier is fine). A library that already looked the module up and found nothing stays
 *   in test mode: the vitest config runs each test file in its own process (pool `forks`).
 * - The shim's state is one object per process (kept on `globalThis`), so the library and every copy of this
 *   module see the same registrations.
 */
import Module from 'node:module';

/** The id the library requires. */
export const FUNCTIONS_CORE_MODULE_ID = '@azure/functions-core';

/** One binding as the library hands it to the worker (`toCoreFunctionMetadata`). */
export interface CoreBindingInfo {
  readonly type: string;
  readonly direction: 'in' | 'out' | 'inout';
  /** Every other option given to the trigger or binding (`connection`, `cardinality`, `dataType`...). */
  readonly [option: string]: unknown;
}

/** Retry options as the library hands them to the worker (durations converted to `{seconds, nanos}`). */
export interface CoreRetryOptions {
  readonly retryStrategy?: string;
  readonly maxRetryCount?: number;
  readonly [option: string]: unknown;
}

/** What `registerFunction` receives: the function's name, bindings by binding name, retry options. */
export interface CoreFunctionMetadata {
  readonly name: string;
  readonly bindings: Readonly<Record<string, CoreBindingInfo>>;
  readonly retryOptions?: CoreRetryOptions;
}

/** The handler given to `app.*`, as the worker would call it: `(trigger input, InvocationContext)`. */
export type CoreFunctionCallback = (...args: unknown[]) => unknown;

/** One captured registration. */
export interface CapturedRegistration {
  readonly name: string;
  readonly metadata: CoreFunctionMetadata;
  readonly callback: CoreFunctionCallback;
}

/** A trigger binding together with its binding name. */
export type CapturedTrigger = CoreBindingInfo & { readonly bindingName: string };

export interface CapturedHook {
  readonly hookName: string;
  readonly callback: CoreFunctionCallback;
}

export interface CapturedLog {
  readonly level: string;
  readonly category: string;
  readonly message: string;
}

/** What a test sees of the shim. */
export interface FunctionsCoreShim {
  /** Registrations in the order they were made. */
  readonly registrations: readonly CapturedRegistration[];
  /** `app.hook.*` registrations. */
  readonly hooks: readonly CapturedHook[];
  /** Messages the library logged through the worker (`workerSystemLog`). */
  readonly logs: readonly CapturedLog[];
  /** The programming model the library announced (`setProgrammingModel`), once something was registered. */
  readonly programmingModel: unknown;
  /** The registration named `name`; throws, listing what was registered, when there is none. */
  registration(name: string): CapturedRegistration;
  /** The trigger binding (type ending in `Trigger`) of the registration named `name`. */
  triggerOf(name: string): CapturedTrigger;
  /**
   * Runs the registration named `name` on a batch of trigger bodies as the host and the worker do: the bodies
   * are encoded as the host encodes them for the trigger's registered `dataType` (see
   * {@link hostTriggerData}), and the library's own programming model turns that RPC data into the handler's
   * arguments and calls the handler. What the handler logs is captured in `logs` (category `user`). Answers
   * the arguments the handler got.
   */
  invoke(name: string, request: TriggerInvocation): Promise<{ readonly inputs: readonly unknown[] }>;
  /** Forgets captured registrations, hooks and logs (the library keeps using the shim). */
  clear(): void;
  /** Restores Node's `require`. The library keeps the object it already looked up. */
  uninstall(): void;
}

/** RPC typed data as the host sends it (the subset used here). */
export type RpcTypedData =
  | { readonly string: string }
  | { readonly json: string }
  | { readonly bytes: Uint8Array }
  | { readonly collectionBytes: { readonly bytes: readonly Uint8Array[] } }
  | { readonly collectionString: { readonly string: readonly string[] } }
  | { readonly collectionSint64: { readonly sint64: readonly number[] } };

/** A batch for a trigger with cardinality many: its bodies as sent, and the trigger metadata. */
export interface TriggerInvocation {
  readonly invocationId: string;
  /** The events' bodies, as their producer sent them (UTF-8 text). */
  readonly bodies: readonly string[];
  /**
   * Keys and encodings as the host sends them: PascalCase (`PartitionContext`, `SequenceNumberArray`...);
   * Event Hubs' sequence numbers as `collectionSint64`, offsets and partition keys as `collectionString`.
   */
  readonly triggerMetadata?: Readonly<Record<string, RpcTypedData>>;
}

/**
 * What the host sends the worker for a batch of bodies, by the trigger's `dataType` (Node.js worker, which
 * declares typed-data collections but not empty entries):
 * - `binary`: the bytes of each body (`collectionBytes`);
 * - `string`: each body as a string (`collectionString`), empty ones left out;
 * - none: the bodies bound as JSON; one that is not JSON fails the whole invocation before the worker is
 *   called (thrown here).
 */
export function hostTriggerData(dataType: unknown, bodies: readonly string[]): RpcTypedData {
  if (dataType === 'binary') return { collectionBytes: { bytes: bodies.map((body) => new Uint8Array(Buffer.from(body, 'utf8'))) } };
  if (dataType === 'string') return { collectionString: { string: bodies.filter((body) => body !== '') } };
  return { json: JSON.stringify(bodies.map((body) => JSON.parse(body) as unknown)) };
}

/** What the shim uses of the library's programming model (`@azure/functions` InvocationModel). */
interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], handler: CoreFunctionCallback): Promise<unknown>;
}

function isProgrammingModel(model: unknown): model is { getInvocationModel(coreContext: object): InvocationModel } {
  return typeof model === 'object' && model !== null && typeof (model as { getInvocationModel?: unknown }).getInvocationModel === 'function';
}

interface ShimState {
  readonly registrations: CapturedRegistration[];
  readonly hooks: CapturedHook[];
  readonly logs: CapturedLog[];
  programmingModel: unknown;
  /** The object `require('@azure/functions-core')` answers. */
  readonly core: object;
  /** The `require` that was in place before the shim, while the shim is installed. */
  originalRequire: ((id: string) => unknown) | undefined;
  patchedRequire: ((id: string) => unknown) | undefined;
}

const STATE_KEY = Symbol.for('defender-forwarder.test.functionsCoreShim');

/** Installs the shim (once per process; later calls return the same shim) and returns it. */
export function installFunctionsCoreShim(): FunctionsCoreShim {
  const state = shimState();
  if (state.patchedRequire === undefined) {
    const original = Module.prototype.require;
    const patched = function requireWithFunctionsCore(this: NodeJS.Module, id: string): unknown {
      return id === FUNCTIONS_CORE_MODULE_ID ? state.core : original.call(this, id);
    };
    state.originalRequire = original;
    state.patchedRequire = patched;
    Module.prototype.require = patched;
  }
  return view(state);
}

function shimState(): ShimState {
  const holder = globalThis as typeof globalThis & { [STATE_KEY]?: ShimState };
  holder[STATE_KEY] ??= createState();
  return holder[STATE_KEY];
}

function createState(): ShimState {
  const registrations: CapturedRegistration[] = [];
  const hooks: CapturedHook[] = [];
  const logs: CapturedLog[] = [];
  const state: ShimState = {
    registrations,
    hooks,
    logs,
    programmingModel: undefined,
    originalRequire: undefined,
    patchedRequire: undefined,
    // The surface of the worker's module that the library 4.x calls.
    core: {
      version: '3.0.0-test-shim',
      hostVersion: '4.0.0-test-shim',
      registerFunction(metadata: CoreFunctionMetadata, callback: CoreFunctionCallback): { dispose(): void } {
        // The worker refuses a second function of the same name; so does the shim.
        if (registrations.some((r) => r.name === metadata.name)) {
          throw new Error(`A function with name "${metadata.name}" has already been registered.`);
        }
        const registration: CapturedRegistration = { name: metadata.name, metadata, callback };
        registrations.push(registration);
        return { dispose: () => removeItem(registrations, registration) };
      },
      registerHook(hookName: string, callback: CoreFunctionCallback): { dispose(): void } {
        const hook: CapturedHook = { hookName, callback };
        hooks.push(hook);
        return { dispose: () => removeItem(hooks, hook) };
      },
      setProgrammingModel(model: unknown): void {
        state.programmingModel = model;
      },
      getProgrammingModel(): unknown {
        return state.programmingModel;
      },
      log(level: string, category: string, message: string): void {
        logs.push({ level, category, message });
      },
    },
  };
  return state;
}

function view(state: ShimState): FunctionsCoreShim {
  const registration = (name: string): CapturedRegistration => {
    const found = state.registrations.find((r) => r.name === name);
    if (found !== undefined) return found;
    const names = state.registrations.map((r) => `"${r.name}"`).join(', ') || 'none';
    throw new Error(`no function "${name}" was registered (registered: ${names})`);
  };
  return {
    registrations: state.registrations,
    hooks: state.hooks,
    logs: state.logs,
    get programmingModel(): unknown {
      return state.programmingModel;
    },
    registration,
    triggerOf(name: string): CapturedTrigger {
      const { bindings } = registration(name).metadata;
      for (const [bindingName, binding] of Object.entries(bindings)) {
        if (/trigger$/i.test(binding.type)) return { ...binding, bindingName };
      }
      throw new Error(`function "${name}" has no trigger binding`);
    },
    async invoke(name: string, batch: TriggerInvocation): Promise<{ readonly inputs: readonly unknown[] }> {
      const { metadata, callback } = registration(name);
      const model = state.programmingModel;
      if (!isProgrammingModel(model)) throw new Error('the library has not announced its programming model (nothing registered yet?)');
      const trigger = Object.entries(metadata.bindings).find(([, binding]) => /trigger$/i.test(binding.type));
      if (trigger === undefined) throw new Error(`function "${name}" has no trigger binding`);
      const [bindingName, binding] = trigger;
      const request = {
        invocationId: batch.invocationId,
        inputData: [{ name: bindingName, data: hostTriggerData(binding['dataType'], batch.bodies) }],
        triggerMetadata: batch.triggerMetadata ?? {},
      };
      // The worker's side of the contract: the request, the function's metadata, and a log sink.
      const invocation = model.getInvocationModel({
        invocationId: batch.invocationId,
        request,
        metadata: { name, bindings: metadata.bindings },
        state: 'invocation',
        log: (level: string, category: string, message: string) => state.logs.push({ level, category, message }),
      });
      const { context, inputs } = await invocation.getArguments();
      await invocation.invokeFunction(context, inputs, callback);
      return { inputs };
    },
    clear(): void {
      state.registrations.length = 0;
      state.hooks.length = 0;
      state.logs.length = 0;
    },
    uninstall(): void {
      // If something wrapped `require` after the shim, unwrapping would drop that wrapper: leave both.
      if (state.originalRequire === undefined || Module.prototype.require !== state.patchedRequire) return;
      Module.prototype.require = state.originalRequire;
      state.patchedRequire = undefined;
      state.originalRequire = undefined;
    },
  };
}

function removeItem<T>(items: T[], item: T): void {
  const at = items.indexOf(item);
  if (at !== -1) items.splice(at, 1);
}
