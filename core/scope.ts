/**
 * Deterministic memory: every tensor created while a scope is open belongs to
 * it and is released when the scope ends, except the tensors in the value the
 * scope returns (which pass to the enclosing scope). Works across `await`,
 * as long as scopes are not interleaved by concurrent tasks.
 * @module
 */
import { getBackend, release, scopeStack } from "./runtime.ts";
import { tapes } from "./tape.ts";
import { isTensor, type Tensor } from "./tensor.ts";
import { leaves } from "./tree.ts";

/** Tensors anywhere inside a returned value (arrays and plain objects are searched; other values ignored). */
function tensorsIn(value: unknown, out: Set<unknown>, seen = new Set<unknown>()): Set<unknown> {
  if (value === null || typeof value !== "object" || seen.has(value)) return out;
  seen.add(value);
  if (isTensor(value)) out.add(value);
  else if (Array.isArray(value)) { for (const v of value) tensorsIn(v, out, seen); }
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) tensorsIn(v, out, seen);
  }
  return out;
}

function close(owned: Set<{ dispose(): void }>, result: unknown): void {
  const keepSet = tensorsIn(result, new Set());
  const parent = scopeStack.at(-1);
  // While a tape records, its vjp rules may need any value made here: hand
  // everything to the enclosing scope, which outlives the tape.
  if (tapes.length) {
    if (parent) { for (const t of owned) parent.add(t); }
    return;
  }
  for (const t of owned) {
    if (keepSet.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/**
 * Runs `fn` in a new scope and releases every tensor it created except those
 * in its return value (a tensor or a tree; other values pass through).
 * @example
 * const loss = await scope(async () => mean(square(sub(predict(w, x), y))));
 */
export function scope<R>(fn: () => R): R {
  const owned = new Set<{ dispose(): void }>();
  scopeStack.push(owned);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    scopeStack.splice(scopeStack.lastIndexOf(owned), 1);
    close(owned, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        scopeStack.splice(scopeStack.lastIndexOf(owned), 1);
        close(owned, value);
        return value;
      },
      (e) => {
        scopeStack.splice(scopeStack.lastIndexOf(owned), 1);
        close(owned, undefined);
        throw e;
      },
    ) as R;
  }
  scopeStack.splice(scopeStack.lastIndexOf(owned), 1);
  close(owned, result);
  return result;
}

/** Takes the tensors of `tree` out of every open scope, so they outlive them (until `dispose`). */
export function keep<T>(tree: T): T {
  for (const t of leaves(tree)) release(t);
  return tree;
}

/** Releases every tensor leaf of `tree` now. */
export function dispose(tree: unknown): void {
  for (const t of leaves(tree)) (t as Tensor).dispose();
}

/** Buffers allocated and not yet freed on the current backend (for leak tests). */
export function liveBuffers(): number {
  return getBackend().liveBuffers();
}
