/**
 * Recording a program's kernels once: every step's kernel call goes through
 * the same kernel functions as the eager backend methods, but on a
 * {@link KernelHost} that captures what they do (allocations, releases,
 * dispatches with their WGSL, bindings, params and grid) instead of running
 * it. A compiled program replays the captured dispatches, so it runs exactly
 * the eager kernels with the eager dispatch shapes; a fused call (made by
 * jit, never eager) records its one generated kernel (fused.ts).
 * @module
 */
import type { KernelCall, Program, ValueId } from "../program.ts";
import { type Engine, type EngineLimits, GpuBuffer, type KernelHost, type RawBinding, type Slot } from "./engine.ts";
import { CHECK_SLOT_BYTES } from "./engine.ts";
import * as ew from "./elementwise.ts";
import * as mv from "./movement.ts";
import { reduce } from "./reduce.ts";
import { matmul } from "./matmul.ts";
import { random } from "./random.ts";
import { fused } from "./fused.ts";
import { wordOf } from "./wgsl.ts";
import type { PlanEvent } from "./plan.ts";

/**
 * Runs one kernel call on `host` with the arguments the backend method of the
 * same name passes its kernel function (backend.ts), operands from `get`.
 */
export function callKernel(host: KernelHost, c: KernelCall, get: (v: ValueId) => GpuBuffer): GpuBuffer {
  switch (c.kernel) {
    case "fill":
      return ew.fill(host, c.dtype, c.size, wordOf(c.dtype, c.value));
    case "unary":
      return ew.unary(host, c.op, get(c.x), c.outDtype);
    case "binary":
      return ew.binary(
        host,
        c.op,
        { buf: get(c.a.value), strides: c.a.strides },
        { buf: get(c.b.value), strides: c.b.strides },
        c.outShape,
        c.outDtype,
      );
    case "where":
      return ew.where(
        host,
        { buf: get(c.cond.value), strides: c.cond.strides },
        { buf: get(c.a.value), strides: c.a.strides },
        { buf: get(c.b.value), strides: c.b.strides },
        c.outShape,
        c.dtype,
      );
    case "cast":
      return ew.cast(host, get(c.x), c.dtype);
    case "reduce":
      return reduce(host, c.op, get(c.x), c.outer, c.reduce, c.inner);
    case "matmul":
      return matmul(host, get(c.a), get(c.b), c.spec);
    case "strided":
      return ew.strided(host, get(c.x), c.outShape, c.strides, c.offset);
    case "pad":
      return mv.pad(host, get(c.x), c.shape, c.before, c.after, c.value);
    case "concat":
      return mv.concat(host, c.xs.map(get), c.outer, c.widths);
    case "gather":
      return mv.gather(host, get(c.table), c.rows, c.rowSize, get(c.idx));
    case "scatterAdd":
      return mv.scatterAdd(host, get(c.idx), get(c.upd), c.rows, c.rowSize);
    case "random":
      return random(host, c.dist, c.key, c.size);
    case "fused":
      return fused(host, c, get);
    case "composite":
      // jit makes these only for a backend whose `fuses.composites` lists them: never this one.
      throw new Error(`webgpu: no ${c.op} kernel (jit/composite.ts makes one only where fuses.composites lists it)`);
  }
}

/** One captured dispatch: bindings are buffer ids (see plan.ts) or index-check slots. */
export interface RecordedDispatch {
  /** The pipeline (the engine's, shared with eager dispatches of the same source). */
  readonly pipeline: GPUComputePipeline;
  /** The bindings' kinds string (engine.ts `run`). */
  readonly kinds: string;
  /** Per binding before the params: a buffer id or a check slot in the program's log. */
  readonly bufs: readonly (number | RawBinding)[];
  /** The params words. */
  readonly params: readonly number[];
  /** Workgroup counts. */
  readonly groups: readonly [number, number?, number?];
}

/** What recording a program gives: per step its allocations and dispatches, and per buffer id its bytes. */
export interface Recording {
  /** Per step, allocations and releases in order. */
  readonly events: PlanEvent[][];
  /** Per step, its dispatches in order. */
  readonly dispatches: RecordedDispatch[][];
  /** Binding bytes of each buffer id (values, then scratch). */
  readonly bytes: number[];
  /** The index checks, one per slot of the program's check log. */
  readonly checks: { op: string; limit: number }[];
}

/** The recorder's buffers have no GPU memory behind them: they stand for buffer ids until planning places them. */
const NO_MEMORY: Slot = { id: 0, gpu: null as unknown as GPUBuffer, capacity: Infinity, lastUse: 0 };

type Captured =
  | { kind: "alloc" | "free"; buf: GpuBuffer }
  | {
    kind: "run";
    pipeline: GPUComputePipeline;
    kinds: string;
    bufs: (GpuBuffer | RawBinding)[];
    params: number[];
    groups: readonly [number, number?, number?];
  };

/** The capturing host: see the module doc. */
class Recorder implements KernelHost {
  readonly limits: EngineLimits;
  captured: Captured[] = [];
  readonly checks: { op: string; limit: number }[] = [];

  constructor(readonly engine: Engine, readonly checkLog: GPUBuffer | null) {
    this.limits = engine.limits;
  }

  alloc(dtype: GpuBuffer["dtype"], size: number): GpuBuffer {
    this.engine.checkSize(`a ${dtype} buffer`, Math.max(4, size * 4), size);
    const buf = new GpuBuffer(dtype, size, NO_MEMORY);
    this.captured.push({ kind: "alloc", buf });
    return buf;
  }

  free(buf: GpuBuffer): void {
    this.captured.push({ kind: "free", buf });
  }

  run(
    src: string,
    kinds: string,
    bufs: readonly (GpuBuffer | RawBinding)[],
    params: ArrayLike<number>,
    groups: readonly [number, number?, number?],
  ): void {
    const pipeline = this.engine.pipeline(src, kinds);
    this.captured.push({ kind: "run", pipeline, kinds, bufs: [...bufs], params: Array.from(params), groups });
  }

  grid(n: number, wg: number): [number, number] {
    return this.engine.grid(n, wg);
  }

  indexCheck(op: string, limit: number): RawBinding {
    if (!this.checkLog) throw new Error("webgpu: internal: an index check in a program counted without any");
    const k = this.checks.length;
    this.checks.push({ op, limit });
    return { raw: this.checkLog, offset: k * CHECK_SLOT_BYTES, size: 8 };
  }
}

/** Number of index-check slots `program` needs (gather and scatterAdd check their indices). */
export function countChecks(program: Program): number {
  return program.steps.filter((s) => s.call.kernel === "gather" || s.call.kernel === "scatterAdd").length;
}

/**
 * Records every step of `program` (see the module doc); index checks go to
 * `checkLog` (at least {@link countChecks} slots). Throws if a kernel's result
 * does not match the value info the program gives it.
 */
export function recordProgram(engine: Engine, program: Program, checkLog: GPUBuffer | null): Recording {
  const rec = new Recorder(engine, checkLog);
  const ids = new Map<GpuBuffer, number>();
  const valueBufs: GpuBuffer[] = [];
  const bytes: number[] = [];
  const define = (buf: GpuBuffer, id: number) => {
    ids.set(buf, id);
    bytes[id] = buf.bytes;
  };
  for (let v = 0; v < program.inputs + program.constants.length; v++) {
    const { dtype, size } = program.values[v];
    define(valueBufs[v] = new GpuBuffer(dtype, size, NO_MEMORY), v);
  }
  let nextScratch = program.values.length;
  const events: PlanEvent[][] = [];
  const dispatches: RecordedDispatch[][] = [];
  program.steps.forEach((step, t) => {
    rec.captured = [];
    const out = callKernel(rec, step.call, (v) => valueBufs[v]);
    const info = program.values[step.out];
    if (out.dtype !== info.dtype || out.size !== info.size) {
      throw new Error(
        `webgpu: compile: step ${t} (${step.call.kernel}) gives ${out.size} ${out.dtype} elements, ` +
          `but the program says value ${step.out} is ${info.size} ${info.dtype}`,
      );
    }
    valueBufs[step.out] = out;
    define(out, step.out);
    const ev: PlanEvent[] = [], ds: RecordedDispatch[] = [];
    for (const c of rec.captured) {
      if (c.kind === "alloc" && !ids.has(c.buf)) define(c.buf, nextScratch++);
      if (c.kind === "run") {
        ds.push({ ...c, bufs: c.bufs.map((b) => (b instanceof GpuBuffer ? ids.get(b)! : b)) });
      } else ev.push({ kind: c.kind, buf: ids.get(c.buf)! });
    }
    events.push(ev);
    dispatches.push(ds);
  });
  return { events, dispatches, bytes, checks: rec.checks };
}
