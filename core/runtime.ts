/**
 * The runtime: which backend new tensors go to, and the stack of open scopes
 * that own the tensors created inside them. Core knows backends only through
 * this registry; `mod.ts` registers the built-in ones.
 * @module
 */
import type { Backend } from "../backends/backend.ts";

/** Makes a backend (once, on first use): `registerBackend`'s second argument. */
export type BackendFactory = () => Backend | Promise<Backend>;

const factories = new Map<string, BackendFactory>();
const instances = new Map<string, Backend>();
let current: Backend | null = null;
let defaultName: string | null = null;

/**
 * Registers a backend under `name`. The first one registered becomes the
 * default until {@link setBackend} is called.
 */
export function registerBackend(name: string, factory: BackendFactory): void {
  factories.set(name, factory);
  defaultName ??= name;
}

/** Names of the registered backends. */
export function listBackends(): string[] {
  return [...factories.keys()];
}

/**
 * Makes `name` the backend for new tensors (initialising it on first use).
 * Existing tensors stay where they are.
 */
export async function setBackend(name: string): Promise<Backend> {
  const factory = factories.get(name);
  if (!factory) {
    throw new Error(`setBackend: unknown backend "${name}"; registered: ${listBackends().join(", ") || "none"}`);
  }
  let b = instances.get(name);
  if (!b) {
    b = await factory();
    instances.set(name, b);
  }
  current = b;
  return b;
}

/** The backend new tensors are created on. */
export function getBackend(): Backend {
  if (current) return current;
  if (defaultName) {
    const made = factories.get(defaultName)!();
    if (made instanceof Promise) {
      throw new Error(
        `getBackend: backend "${defaultName}" initialises asynchronously; call await setBackend("${defaultName}") first`,
      );
    }
    instances.set(defaultName, made);
    current = made;
    return made;
  }
  throw new Error("getBackend: no backend registered (import knot through mod.ts, which registers cpu)");
}

/**
 * @internal Makes `b` the backend for new tensors and returns the previous
 * one, initialising nothing: jit makes its tracing backend current for the
 * duration of a trace, then restores what was there.
 */
export function swapBackend(b: Backend | null): Backend | null {
  const previous = current;
  current = b;
  return previous;
}

/** Something a scope can release: tensors register themselves here. */
export interface Disposable {
  dispose(): void;
}

/** The open scopes, innermost last. Each owns the tensors created while it is innermost. */
export const scopeStack: Set<Disposable>[] = [];

/** Records a newly created tensor in the innermost scope, if any. */
export function adopt(t: Disposable): void {
  scopeStack.at(-1)?.add(t);
}

/** Removes a tensor from whichever open scope owns it (so it survives them all). */
export function release(t: Disposable): void {
  for (const s of scopeStack) s.delete(t);
}
