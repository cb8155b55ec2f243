/**
 * `jit`: trace a function of tensor trees once per input signature into a
 * program of backend kernel calls, and replay that program on later calls.
 * @module
 */
import type { Backend, BackendBuffer } from "../backends/backend.ts";
import type { CompiledProgram, Program } from "../backends/program.ts";
import type { DType, TypedArray } from "../core/dtype.ts";
import { getBackend, swapBackend } from "../core/runtime.ts";
import { scope } from "../core/scope.ts";
import type { Shape } from "../core/shape.ts";
import { tapes } from "../core/tape.ts";
import { fromBuffer, isTensor, type Tensor } from "../core/tensor.ts";
import { PROTO_KEYS } from "../core/proto_keys.ts";
import { interpret } from "./execute.ts";
import { buildProgram } from "./passes.ts";
import { fuse } from "./fuse.ts";
import { fuseComposites } from "./composite.ts";
import { CLOSURE_MESSAGE, TraceBackend, TraceBuffer } from "./trace.ts";

/** Options of {@link jit}. */
export interface JitOptions {
  /**
   * Positions of static arguments: any value (a config, a flag, a function),
   * passed through as-is and made part of the cache key (objects by
   * identity, primitives by value). A new static value retraces.
   */
  static?: readonly number[];
  /**
   * Positions of donated arguments: the caller gives up their tensors (a train
   * state), so the program may reuse or free their buffers. They are disposed
   * by the call; using one afterwards throws "used after dispose".
   */
  donate?: readonly number[];
  /** Traces kept (least recently used dropped first; default 16). */
  cacheSize?: number;
  /**
   * Fuse chains of elementwise kernels (./fuse.ts) where the backend lowers fused kernels (default true).
   * Results are the same bits either way; false keeps one kernel per primitive (to compare, or profile).
   */
  fuse?: boolean;
}

/** A jitted function: `fn`'s signature, plus its trace cache. */
export type Jitted<F extends (...args: never[]) => unknown> = ((...args: Parameters<F>) => ReturnType<F>) & {
  /** Traces made so far (a retrace per new shape, dtype, structure or static value). */
  readonly traces: number;
  /** Traces held now (at most `cacheSize`). */
  readonly cached: number;
  /** Drops every trace and the memory its program holds. */
  clear(): void;
};

/** One trace: its program and what a call needs besides the arguments' buffers. */
interface Traced {
  program: Program;
  /**
   * Everything about the program but the scalar inputs' values (equal signatures run one compiled program):
   * made when first compared (a retrace for new host values), since it is as long as the program.
   */
  signature?: string;
  /** Values of the scalar inputs (host numbers that became device scalars). */
  scalars: TypedArray[];
  /** The output tree with tensor positions as `{ [LEAF]: i }` (host values returned as they are). */
  template: unknown;
  leaves: { shape: Shape; dtype: DType }[];
}

interface Entry extends Traced {
  backend: Backend;
  compiled: CompiledProgram;
  /** The host values (numbers, strings, booleans) of the arguments this trace was made with. */
  hosts: unknown[];
  /** The scalar inputs, uploaded. */
  scalarBufs: BackendBuffer[];
}

const LEAF = Symbol("leaf");
const identities = new WeakMap<object, number>();
let nextIdentity = 1;

function identity(x: object): number {
  let id = identities.get(x);
  if (id === undefined) identities.set(x, id = nextIdentity++);
  return id;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object") return false;
  const p = Object.getPrototypeOf(x);
  return p === Object.prototype || p === null;
}

function kindOf(x: unknown): string {
  return x === null
    ? "null"
    : typeof x === "object"
    ? (Object.getPrototypeOf(x)?.constructor?.name ?? "object")
    : typeof x;
}

/** What {@link flatten} collects from the arguments of one call. */
interface Flat {
  /** The structure, shapes and dtypes, as one string. */
  key: string;
  leaves: Tensor[];
  /** Host values (numbers, strings, booleans, null, undefined): not part of the key; others retrace. */
  hosts: unknown[];
  /** Keys from the argument down to the node being walked (joined only for an error message). */
  path: (string | number)[];
}

/** Appends `x` to `f`. Runs on every call, so it builds no strings but the key. */
function flatten(name: string, x: unknown, f: Flat): void {
  if (isTensor(x)) {
    f.key += "T" + x.dtype + x.shape.join(",") + ";";
    f.leaves.push(x);
  } else if (Array.isArray(x)) {
    f.key += "[";
    for (let i = 0; i < x.length; i++) {
      f.path.push(i);
      flatten(name, x[i], f);
      f.path.pop();
    }
    f.key += "]";
  } else if (isPlainObject(x)) {
    f.key += "{";
    for (const k of Object.keys(x)) {
      f.path.push(k);
      if (PROTO_KEYS.has(k)) throw new Error(`${name}: key "${k}" at ${f.path.join(".")} is not allowed in a tree`);
      f.key += k.length + ":" + k;
      flatten(name, x[k], f);
      f.path.pop();
    }
    f.key += "}";
  } else if (
    x === null || x === undefined || typeof x === "number" || typeof x === "string" || typeof x === "boolean"
  ) {
    f.key += x === null ? "n" : x === undefined ? "u" : (typeof x)[0];
    f.hosts.push(x);
  } else {
    throw new Error(
      `${name}: ${f.path.join(".")} is a ${kindOf(x)}; jitted functions take trees of tensors (plain objects, ` +
        `arrays, numbers, strings): mark the argument static (opts.static) to pass it as-is`,
    );
  }
}

/** `x` with its tensor leaves replaced in order by `make(leaf, i)`. */
function rebuild(x: unknown, make: (t: Tensor) => unknown): unknown {
  if (isTensor(x)) return make(x);
  if (Array.isArray(x)) return x.map((v) => rebuild(v, make));
  if (isPlainObject(x)) return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, rebuild(v, make)]));
  return x;
}

/** The output template and the traced value of each leaf. Only tensors (and null/undefined) may be returned. */
function outputLeaves(
  name: string,
  tracer: TraceBackend,
  x: unknown,
  path: string,
  ids: number[],
  leaves: Entry["leaves"],
): unknown {
  if (isTensor(x)) {
    const buf = x.buffer;
    if (!(buf instanceof TraceBuffer) || buf.tracer !== tracer) {
      throw new Error(`${name}: output ${path} ${CLOSURE_MESSAGE.slice(5)}`);
    }
    ids.push(buf.id);
    leaves.push({ shape: [...x.shape], dtype: x.dtype });
    return { [LEAF]: ids.length - 1 };
  }
  if (Array.isArray(x)) return x.map((v, i) => outputLeaves(name, tracer, v, `${path}.${i}`, ids, leaves));
  if (isPlainObject(x)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = outputLeaves(name, tracer, v, `${path}.${k}`, ids, leaves);
    return out;
  }
  if (x === null || x === undefined || ["number", "string", "boolean"].includes(typeof x)) return x;
  throw new Error(
    `${name}: output ${path} is a ${kindOf(x)}; a jitted function returns trees of tensors and host values ` +
      `(numbers, strings, booleans): return it as a tensor, or compute it outside the jitted function`,
  );
}

function fill(template: unknown, outs: Tensor[]): unknown {
  if (template === null || typeof template !== "object") return template;
  if (LEAF in template) return outs[(template as { [LEAF]: number })[LEAF]];
  if (Array.isArray(template)) return template.map((v) => fill(v, outs));
  return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fill(v, outs)]));
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

function sameData(a: TypedArray, b: TypedArray): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

/** A trace's {@link Traced.signature}, made once. */
function signatureOf(t: Traced): string {
  return t.signature ??= signature(t.program);
}

/** Everything that decides what a program computes except its scalar inputs' values. */
function signature(p: Program): string {
  const constants = p.constants.map((c) => `${c.id}:${Array.prototype.join.call(c.data, ",")}`);
  return JSON.stringify([p.values, p.inputs, p.donated, p.steps, p.outputs, constants]);
}

/** The scalar inputs on `backend`, reusing `prev`'s buffers where the value is unchanged (and freeing the rest). */
function upload(
  backend: Backend,
  scalars: TypedArray[],
  prev?: { scalars: TypedArray[]; scalarBufs: BackendBuffer[] },
): BackendBuffer[] {
  return scalars.map((d, i) => {
    if (prev && sameData(prev.scalars[i], d)) return prev.scalarBufs[i];
    if (prev) backend.free(prev.scalarBufs[i]);
    return backend.upload(d, d instanceof Float32Array ? "float32" : d instanceof Int32Array ? "int32" : "bool");
  });
}

function release(e: Entry): void {
  e.compiled.dispose();
  for (const b of e.scalarBufs) e.backend.free(b);
  e.scalarBufs = [];
}

/**
 * Compiles `fn`: the first call with a given signature (tree structure,
 * shapes, dtypes, backend, static and host values) runs `fn` once on a
 * tracing backend, recording the kernel calls it makes, `grad` and the
 * optimizer included, into a program; that call and every later one with
 * the same signature run the program, through the backend's `compile` where
 * it has one, else by replaying the kernels. On cpu results are
 * bit-identical to calling `fn` directly. `fn` must be synchronous and may
 * not read tensor values (`data()`, `item()`), and every tensor it uses must
 * come in through its arguments or be made inside it. Host values in the
 * arguments (numbers, strings, booleans: an optimizer's step count) are not
 * part of the signature: a call with new ones traces again and keeps the
 * compiled program when only scalar constants changed; they may also be
 * returned. Index checks that need a synchronous read-back (`take` on cpu)
 * do not run inside a trace.
 * @example
 * ```ts
 * import { jit, mul, sum, tensor, type Tensor } from "../mod.ts";
 * const f = jit((x: Tensor, y: Tensor) => sum(mul(x, y)));
 * const out = f(tensor([1, 2, 3]), tensor([4, 5, 6])); // traced once, then replayed
 * console.log(await out.item()); // 32
 * ```
 */
export function jit<F extends (...args: never[]) => unknown>(fn: F, opts: JitOptions = {}): Jitted<F> {
  const name = `jit(${fn.name || "anonymous"})`;
  const f = fn as unknown as (...a: unknown[]) => unknown;
  const statics = new Set(opts.static ?? []);
  const donates = new Set(opts.donate ?? []);
  const cacheSize = opts.cacheSize ?? 16;
  if (!(Number.isInteger(cacheSize) && cacheSize >= 1)) {
    throw new Error(`${name}: cacheSize must be an integer ≥ 1, got ${cacheSize}`);
  }
  for (const p of [...statics, ...donates]) {
    if (!Number.isInteger(p) || p < 0) throw new Error(`${name}: argument positions must be integers ≥ 0, got ${p}`);
  }
  const cache = new Map<string, Entry>();
  let traces = 0;

  const call = (...args: unknown[]): unknown => {
    const flat: Flat = { key: "", leaves: [], hosts: [], path: [] };
    const donatedPos: boolean[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (statics.has(i)) {
        flat.key += `s${
          a !== null && (typeof a === "object" || typeof a === "function") ? `#${identity(a)}` : String(a)
        }|`;
        continue;
      }
      const before = flat.leaves.length;
      flat.path.push(`argument ${i}`);
      flatten(name, a, flat);
      flat.path.pop();
      flat.key += "|";
      for (let k = before; k < flat.leaves.length; k++) donatedPos.push(donates.has(i));
    }
    const { leaves, hosts } = flat;
    // Inside another trace the function is simply part of that trace.
    if (getBackend().name === "jit" || leaves.some((t) => t.backend.name === "jit")) return f(...args);
    for (const tape of tapes) {
      if (leaves.some((t) => tape.tracked.has(t))) {
        throw new Error(`${name}: cannot differentiate through a jitted function; jit the function that calls grad`);
      }
    }
    const backend: Backend = leaves[0]?.backend ?? getBackend();
    const buffers: BackendBuffer[] = leaves.map((t) => {
      if (t.backend !== backend) {
        throw new Error(`${name}: arguments live on different backends (${backend.name} and ${t.backend.name})`);
      }
      return t.buffer; // throws if disposed
    });
    // A donated buffer is consumed only when nothing else refers to it (one tensor, passed once).
    let donate = donatedPos;
    if (donates.size) {
      const counts = new Map<BackendBuffer, number>();
      for (const b of buffers) counts.set(b, (counts.get(b) ?? 0) + 1);
      donate = leaves.map((t, i) => donatedPos[i] && t.storage.refs === 1 && counts.get(buffers[i]) === 1);
    }
    const k = flat.key + backend.name + "#" + identity(backend) + (donates.size ? donate.map(Number).join("") : "");

    let entry = cache.get(k);
    if (entry) {
      cache.delete(k);
      if (!sameValues(entry.hosts, hosts)) {
        // Other host values: trace again; the same program (scalars aside) keeps its compiled form.
        const t = trace(args, leaves, donate, backend, hosts);
        traces++;
        if (signatureOf(t) === signatureOf(entry)) {
          entry.scalarBufs = upload(backend, t.scalars, entry);
          Object.assign(entry, { scalars: t.scalars, template: t.template, leaves: t.leaves, hosts });
        } else {
          release(entry);
          entry = compile(backend, t, hosts);
        }
      }
    } else {
      entry = compile(backend, trace(args, leaves, donate, backend, hosts), hosts);
      traces++;
      while (cache.size >= cacheSize) {
        const [oldest, e] = cache.entries().next().value!;
        cache.delete(oldest);
        release(e);
      }
    }
    cache.set(k, entry);
    const e = entry;
    const outs = e.compiled.run([...buffers, ...e.scalarBufs]);
    leaves.forEach((t, i) => {
      if (!donatedPos[i]) return;
      if (e.program.donated[i]) t.storage.buffer = null; // consumed by the program
      t.dispose();
    });
    const tensors = outs.map((b, i) => fromBuffer(backend, b, e.leaves[i].shape, e.leaves[i].dtype));
    return fill(e.template, tensors);
  };

  const compile = (backend: Backend, t: Traced, hosts: unknown[]): Entry => {
    const compiled = backend.compile ? backend.compile(t.program) : interpret(backend, t.program);
    return { ...t, backend, compiled, hosts, scalarBufs: upload(backend, t.scalars) };
  };

  const trace = (args: unknown[], leaves: Tensor[], donate: boolean[], backend: Backend, hosts: unknown[]): Traced => {
    const tracer = new TraceBackend(backend, name);
    const inputs = leaves.map((t, i) => fromBuffer(tracer, tracer.input(i, t.size, t.dtype), t.shape, t.dtype));
    let n = 0;
    const targs = args.map((a, i) => statics.has(i) ? a : rebuild(a, () => inputs[n++]));
    const previous = swapBackend(tracer);
    let out: unknown;
    try {
      out = scope(() => f(...targs));
    } finally {
      swapBackend(previous);
    }
    if (out instanceof Promise) {
      out.catch(() => {});
      throw new Error(
        `${name}: the function returned a Promise; a jitted function must be synchronous ` +
          `(it cannot await: read values, e.g. with data() or item(), after the call)`,
      );
    }
    const ids: number[] = [];
    const outLeaves: Traced["leaves"] = [];
    const template = outputLeaves(name, tracer, out, "result", ids, outLeaves);
    // Without host values in the arguments nothing retraces for new ones, so equal scalars can be one input
    // (a greedy decode block's 1,024 are four values).
    const built = buildProgram(tracer.values, leaves.length, ids, donate, hosts.length === 0);
    const { scalars } = built;
    const fuses = opts.fuse !== false ? backend.fuses : undefined;
    const composed = fuses?.composites?.length ? fuseComposites(built.program, fuses.composites) : built.program;
    const program = fuses ? fuse(composed, fuses) : composed;
    for (const t of inputs) t.dispose();
    rebuild(out, (t) => (t as Tensor).dispose());
    return { program, scalars, template, leaves: outLeaves };
  };

  return Object.defineProperties(call, {
    traces: { get: () => traces },
    cached: { get: () => cache.size },
    clear: {
      value: () => {
        for (const e of cache.values()) release(e);
        cache.clear();
      },
    },
  }) as unknown as Jitted<F>;
}
