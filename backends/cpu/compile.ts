/**
 * `CpuBackend.compile`: a traced program (../program.ts) lowered onto the engine once, then run many times.
 *
 * - Memory is planned once: every value that is neither an input, a constant nor an output gets an offset
 *   in one arena (a heap block sized once), assigned in step order by liveness, so a block is reused as soon
 *   as its value's last reader has run (never by that reader's own output: kernels do not run in place, but
 *   for a `where` writing rows over its own `b` — a KV-cache write — which shares b's block, or b's donated
 *   input buffer, so k decode steps in one program write one cache).
 *   Constants are uploaded once. Outputs are fresh buffers per run (the caller owns them); an output may
 *   take over the block of a donated input whose last reader ran before it (a train state in, a train state
 *   out), other donated inputs are freed at the end of the run.
 * - Every kernel is prepared once, by the very code of the eager kernel (backend.ts emits into a
 *   {@link KernelSink}: eager kernels run what they emit, compile records it): the same split into parts,
 *   the same arguments, the same descriptors (written into the heap once, one block per part), so results
 *   are bit-identical to the eager kernels whatever the thread count. Inputs and outputs are at other
 *   addresses every run: while recording they sit at far-away placeholder addresses (k·2⁴⁰), so each
 *   argument that points into one is known exactly, and `run` patches just those (only where a binding moved
 *   since the last run: a model's weights stay put).
 * - `run` is a loop over prepared closures, each one call into the module (or, for a kernel split across
 *   the worker pool, one `pool.run` over its prepared table; for gather/scatterAdd and the kernels still in
 *   TypeScript, a closure reading its buffers when it runs). With `programLoop: "wasm"` (the default), each
 *   run of consecutive engine kernels is instead one call of the module's instruction loop (`runCalls`, over
 *   16-word records in the heap): 1.1–1.2× on decode programs; a split one is a fork record there, its
 *   fork-join run by the module (a BLAS kernel's stays `pool.run`, FFI being JavaScript's); see backends/README.md.
 * @module
 */
import type { Backend, BackendBuffer } from "../backend.ts";
import {
  callInputs,
  callKernel,
  type CompiledProgram,
  type KernelCall,
  type Program,
  type Step,
  type ValueId,
} from "../program.ts";
import type { DType } from "../../core/dtype.ts";
import { CpuBuffer } from "./buffer.ts";
import type { Engine, EngineExports } from "./wasm/engine.ts";
import { ensureScratch, mainScratch } from "./wasm/kernel.ts";
import { cpuThreads, forkDescriptor, poolFor, prepareForks, settleForks } from "./wasm/pool.ts";
import { FORK_RECORD, KERNEL, moduleKernel, PART_WORDS, runKernel } from "./wasm/pool_protocol.ts";
import { type GatherFail, runGather } from "./wasm/pool_protocol.ts";

/** Parts a large kernel is cut into per thread: threads take parts as they finish (load balance). */
export const PARTS_PER_THREAD = 4;
/** Bytes of a part's descriptor block (dims, strides, the kernel's index scratch). */
export const DESC_PART_BYTES = 256;

/** Makes a kernel's parts: the arguments of at most `parts` parts (descAt(p): a descriptor block), or null. */
export type MakeParts = (parts: number, descAt: (p: number) => number) => number[][] | null;

/** Where a kernel goes: run at once (the eager kernels) or recorded (a compiled program). */
export interface KernelSink {
  /**
   * A wasm kernel split by `make` (see CpuBackend's #run): `size` ≥ `min` splits across the pool;
   * `scratchBytes` of packing scratch per thread; `descBytes` the most any part's descriptor takes.
   * false: declined (the caller falls back to its TypeScript kernel).
   */
  launch(
    e: Engine,
    kernel: number,
    size: number,
    min: number,
    make: MakeParts,
    scratchBytes: number,
    descBytes: number,
  ): boolean;
  /** gather over `args` (pool_protocol.ts runGather): `fail` makes the Error of an index outside the table. */
  gather(e: Engine, args: number[], fail: GatherFail): void;
  /** A TypeScript kernel (it reads its buffers' `data` when it runs). */
  js(f: () => void): void;
  /**
   * A heap block holding the i32 words `w` (a fused kernel's program; buffer addresses in it are patched
   * every run by compile), alive as long as what the kernel emitted: -1 where the heap has no room.
   */
  words(w: readonly number[]): number;
}

/** What compile needs of the backend (its private kernels and allocator). */
export interface CpuLowering {
  readonly engine: Engine | null;
  /** The backend itself: upload, free, and the eager kernels of the generic replay. */
  readonly backend: Backend;
  /** Emits call `c` with operands `val(id)` writing into `out`. */
  emit(s: KernelSink, c: KernelCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): void;
  /** A new buffer, counted live. */
  alloc(dtype: DType, size: number): CpuBuffer;
  /** A new buffer on `from`'s heap block; `from` is freed (the live count does not change). */
  adopt(from: CpuBuffer, dtype: DType, size: number): CpuBuffer;
  /** How `run` dispatches consecutive wasm kernels: one JavaScript call each, or one `runCalls` per run of them. */
  readonly loop: "js" | "wasm";
}

const BYTES: Record<DType, number> = { float32: 4, int32: 4, bool: 1 };
/** Placeholder address of binding k while recording: (k + 1)·FAR, far past any wasm32 address. */
const FAR = 2 ** 40;
const ALIGN = 64;

export { callKernel };

/**
 * Runs a program through the backend's eager kernels, freeing each intermediate (and each donated input)
 * after its last reader: where the engine is absent, or a run's buffers are not all in the heap.
 */
export function replay(
  b: Backend,
  p: Program,
  constants: ReadonlyMap<ValueId, BackendBuffer>,
  inputs: readonly BackendBuffer[],
): BackendBuffer[] {
  const vals = new Array<BackendBuffer | undefined>(p.values.length);
  inputs.forEach((x, i) => vals[i] = x);
  for (const [id, buf] of constants) vals[id] = buf;
  const outputs = new Set(p.outputs), read = readValues(p);
  const own = (v: ValueId) => (v >= p.inputs && !constants.has(v)) || (v < p.inputs && p.donated[v]);
  try {
    p.steps.forEach((s, i) => {
      vals[s.out] = callKernel(b, s.call, (id) => vals[id]!);
      for (const v of p.lastUse[i]) {
        if (own(v) && vals[v]) b.free(vals[v]!), vals[v] = undefined;
      }
      if (!read.has(s.out) && !outputs.has(s.out)) b.free(vals[s.out]!), vals[s.out] = undefined;
    });
  } catch (e) {
    for (let v = p.inputs; v < vals.length; v++) if (vals[v] && own(v)) b.free(vals[v]!);
    throw e;
  }
  for (let i = 0; i < p.inputs; i++) if (p.donated[i] && vals[i]) b.free(vals[i]!);
  return p.outputs.map((o) => vals[o]!);
}

/** Values some step reads. */
function readValues(p: Program): Set<ValueId> {
  const s = new Set<ValueId>();
  for (const st of p.steps) for (const v of callInputs(st.call)) s.add(v);
  return s;
}

/** Whether a where may write over its `b`: b read element for element (row-major) and by no other operand. */
function overwritable(c: Extract<KernelCall, { kernel: "where" }>): boolean {
  let stride = 1;
  for (let k = c.outShape.length - 1; k >= 0; k--) {
    if (c.outShape[k] !== 1 && c.b.strides[k] !== stride) return false;
    stride *= c.outShape[k];
  }
  return c.a.value !== c.b.value && c.cond.value !== c.b.value;
}

/** Best-fit offsets in an arena whose size is the high-water mark. */
class ArenaPlan {
  top = 0;
  readonly #free: { off: number; size: number }[] = [];

  take(bytes: number): number {
    const size = Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN;
    let best = -1;
    this.#free.forEach((f, i) => {
      if (f.size >= size && (best < 0 || f.size < this.#free[best].size)) best = i;
    });
    if (best < 0) {
      const off = this.top;
      this.top += size;
      return off;
    }
    const f = this.#free[best], off = f.off;
    if (f.size === size) this.#free.splice(best, 1);
    else f.off += size, f.size -= size;
    return off;
  }

  give(off: number, bytes: number): void {
    const size = Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN, list = this.#free;
    list.push({ off, size });
    list.sort((a, b) => a.off - b.off);
    for (let i = list.length - 1; i > 0; i--) {
      if (list[i - 1].off + list[i - 1].size === list[i].off) {
        list[i - 1].size += list[i].size;
        list.splice(i, 1);
      }
    }
  }
}

/** An argument (in a JS array or a heap word) that points into binding `bind`, `off` bytes in. */
interface Patch {
  readonly args: number[] | null;
  /** Index in `args`, or byte address of the heap word. */
  readonly at: number;
  readonly bind: number;
  readonly off: number;
}

/** A prepared call of the module with `a` (its arguments, patched per run). */
function callOf(x: EngineExports, kernel: number, a: number[]): () => void {
  switch (kernel) {
    case KERNEL.binary:
      return () => x.binaryF32(a[0], a[1], a[2], a[3], a[4], a[5]);
    case KERNEL.unary:
      return () => x.unaryF32(a[0], a[1], a[2], a[3]);
    case KERNEL.strided:
      return () => x.strided32(a[0], a[1], a[2], a[3]);
    case KERNEL.gemv:
      return () => x.gemv(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    case KERNEL.reduce:
      return () => x.reduceF32(a[0], a[1], a[2], a[3], a[4], a[5]);
    case KERNEL.where:
      return () => x.where32(a[0], a[1], a[2], a[3], a[4], a[5]);
    case KERNEL.gemvBatch:
      return () => x.gemvBatch(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    case KERNEL.copyRows:
      return () => x.copyRows(a[0], a[1], a[2], a[3], a[4], a[5]);
    default: // matmul and random address the running thread's scratch
      return () => runKernel(x, kernel, a, mainScratch.ptr);
  }
}

/** Lowers `p`; the generic replay where the engine is absent or something does not fit the heap. */
export function compileProgram(p: Program, low: CpuLowering): CompiledProgram {
  const b = low.backend, e = low.engine;
  const defined = new Set(p.steps.map((s) => s.out));
  p.outputs.forEach((o, j) => {
    if (!defined.has(o)) throw new Error(`compile: output ${o} is not a value defined by a step`);
    if (p.outputs.indexOf(o) !== j) throw new Error(`compile: value ${o} is output twice`);
  });
  const constants = new Map<ValueId, BackendBuffer>();
  for (const c of p.constants) constants.set(c.id, b.upload(c.data, p.values[c.id].dtype));
  const generic = (): CompiledProgram => {
    let done = false;
    return {
      run: (inputs) => {
        if (done) throw new Error("compiled program: run after dispose");
        return replay(b, p, constants, inputs);
      },
      dispose: () => {
        if (!done) { for (const buf of constants.values()) b.free(buf); }
        done = true;
      },
    };
  };
  const anyEmpty = p.values.some((v) => v.size === 0);
  const constOutside = [...constants.values()].some((c) => (c as CpuBuffer).ptr < 0);
  if (!e || anyEmpty || constOutside) return generic();
  const heap = e.heap;

  // ---- memory plan: arena offsets by liveness; outputs and inputs are bindings (placeholders)
  const nIn = p.inputs, outputs = p.outputs, outIndex = new Map(outputs.map((o, j) => [o, j]));
  const defStep = new Map<ValueId, number>();
  p.steps.forEach((s, i) => defStep.set(s.out, i));
  const read = readValues(p);
  const offset = new Map<ValueId, number>();
  const bytesOf = (v: ValueId) => p.values[v].size * BYTES[p.values[v].dtype];
  const plan = new ArenaPlan();
  const lastRead = new Map<ValueId, number>(), given = new Set<ValueId>();
  const give = (v: ValueId) => {
    if (offset.has(v) && !given.has(v)) given.add(v), plan.give(offset.get(v)!, bytesOf(v));
  };
  // A `where` whose `b` is read element for element and by nothing after it (a KV-cache write) writes over b:
  // its value shares b's storage (an arena block, or a donated input's buffer), and where32 then writes only
  // the rows it changes. `share` maps such a value to the value whose storage it uses.
  const share = new Map<ValueId, ValueId>();
  const overwrites = (i: number, v: ValueId): ValueId | null => {
    const c = p.steps[i].call;
    if (c.kernel !== "where" || !overwritable(c) || bytesOf(c.b.value) !== bytesOf(v)) return null;
    return p.lastUse[i].includes(c.b.value) ? c.b.value : null;
  };
  p.steps.forEach((s, i) => {
    const b = outIndex.has(s.out) ? null : overwrites(i, s.out);
    const root = b === null ? -1 : share.get(b) ?? b;
    if (b !== null && (root < nIn ? p.donated[root] : offset.has(b))) {
      share.set(s.out, root);
      if (root >= nIn) offset.set(s.out, offset.get(b)!), given.add(b); // the block passes to s.out
    } else if (!outIndex.has(s.out)) offset.set(s.out, plan.take(bytesOf(s.out)));
    for (const v of p.lastUse[i]) lastRead.set(v, i), give(v);
    if (!read.has(s.out)) give(s.out);
  });
  // An output takes over a donated input of the same bytes whose last reader runs before the output's step, or
  // is that step when it is a `where` overwriting the input (or a value sharing its buffer) as above.
  const adoptFrom = outputs.map(() => -1);
  const taken = new Set<number>();
  const free = (i: number, o: ValueId) => p.donated[i] && !taken.has(i) && bytesOf(i) === bytesOf(o);
  const take = (j: number, i: number) => (adoptFrom[j] = i, taken.add(i));
  outputs.forEach((o, j) => {
    const b = overwrites(defStep.get(o)!, o);
    const root = b === null ? -1 : share.get(b) ?? b;
    if (b !== null && root < nIn && free(root, o)) take(j, root);
  });
  // A donated input holding values past its last reader is no output's to take but its chain's last one's.
  for (const root of share.values()) if (root < nIn) taken.add(root);
  outputs.forEach((o, j) => {
    for (let i = 0; i < nIn && adoptFrom[j] < 0; i++) {
      if (free(i, o) && (lastRead.get(i) ?? -1) < defStep.get(o)!) take(j, i);
    }
  });
  const arenaBytes = plan.top;
  const arena = arenaBytes > 0 ? heap.alloc(arenaBytes) : 0;
  if (arena < 0) return generic();

  // ---- buffers of every value while recording
  const owned: { ptr: number; bytes: number }[] = arenaBytes > 0 ? [{ ptr: arena, bytes: arenaBytes }] : [];
  const nBind = nIn + outputs.length;
  const binds: CpuBuffer[] = [];
  const bufs = new Array<CpuBuffer>(p.values.length);
  for (let i = 0; i < nIn; i++) {
    bufs[i] = new CpuBuffer(p.values[i].dtype, p.values[i].size, (i + 1) * FAR, 0, null, heap);
    binds.push(bufs[i]);
  }
  outputs.forEach((o, j) => {
    bufs[o] = new CpuBuffer(p.values[o].dtype, p.values[o].size, (nIn + j + 1) * FAR, 0, null, heap);
    binds.push(bufs[o]);
  });
  for (const [id, c] of constants) bufs[id] = c as CpuBuffer;
  for (const [id, off] of offset) {
    bufs[id] = new CpuBuffer(p.values[id].dtype, p.values[id].size, arena + off, 0, null, heap);
  }
  for (const [id, root] of share) if (root < nIn) bufs[id] = bufs[root];

  // ---- record every step
  const steps: (() => void)[] = [];
  const patches: Patch[] = [];
  let maxScratch = 0, forkScratch = 0, forks = false;
  const resolve = (args: number[], word: number): void => {
    args.forEach((v, i) => {
      if (v < FAR / 2) return;
      const k = Math.round(v / FAR) - 1;
      if (k < 0 || k >= nBind) throw new Error(`compile: argument ${v} is no buffer address`);
      patches.push({ args: word < 0 ? args : null, at: word < 0 ? i : word + i * 4, bind: k, off: v - (k + 1) * FAR });
      args[i] = 0;
    });
  };
  // The split kernel being recorded (its parts may still grow, see `launch`), and the byte ranges of memory the
  // steps in it read and write; the step whose kernel is being recorded.
  type Range = readonly [number, number];
  let split: { kernel: number; args: number[][]; scratchBytes: number; reads: Range[]; writes: Range[] } | null = null;
  let current: Step | null = null;
  const range = (v: ValueId): Range => [bufs[v].ptr, bufs[v].ptr + Math.max(1, bytesOf(v))];
  const ranges = (s: Step) => ({ reads: callInputs(s.call).map(range), writes: [range(s.out)] });
  const overlap = (a: Range, b: Range) => a[0] < b[1] && b[0] < a[1];
  // A table of parts in the heap for the pool, patched in place; without a pool at run time (one thread), its
  // parts run here in order (the same bits either way).
  const pushSplit = () => {
    if (!split) return;
    const { kernel, args, scratchBytes } = split;
    split = null;
    const tableBytes = 64 + args.length * PART_WORDS * 4, counter = heap.alloc(tableBytes);
    if (counter < 0) throw new Error("compile: the heap has no room for a kernel's part table");
    owned.push({ ptr: counter, bytes: tableBytes });
    const table = counter + 64;
    const tableArgs = args.map((a) => [...a]);
    for (const a of args) resolve(a, -1);
    tableArgs.forEach((a, i) => resolve(a, table + i * PART_WORDS * 4));
    const words = heap.i32;
    tableArgs.forEach((a, i) => words.set(a.map((v) => v | 0), (table >>> 2) + i * PART_WORDS));
    const n = args.length, desc = low.loop === "wasm" && moduleKernel(kernel) ? forkDescriptor(e) : -1;
    if (desc >= 0) {
      // In the module's loop: a fork-join record (program.as.ts), no return to JavaScript.
      segment.push({ kernel: FORK_RECORD, args: [kernel, table, n, counter, desc, scratchBytes] });
      forkScratch = Math.max(forkScratch, scratchBytes), forks = true;
      return;
    }
    const calls = args.map((a) => callOf(e.x, kernel, a));
    emitSegment(); // the records before it
    steps.push(() => {
      const pool = poolFor(e);
      if (!pool) {
        for (const c of calls) c();
        return;
      }
      heap.i32[counter >>> 2] = 0;
      pool.run(kernel, table, n, counter, scratchBytes, mainScratch.ptr);
    });
  };
  // programLoop "wasm": consecutive module kernels, split or not, become records of one runCalls call (16 words
  // each: the kernel id, then its arguments), patched in the heap like the part tables.
  let segment: { kernel: number; args: number[]; fail?: GatherFail }[] = [];
  const flush = () => (pushSplit(), emitSegment());
  const emitSegment = () => {
    if (segment.length === 0) return;
    const n = segment.length, bytes = n * 64, rec = heap.alloc(bytes);
    if (rec < 0) throw new Error("compile: the heap has no room for a program's records");
    owned.push({ ptr: rec, bytes });
    const words = heap.i32;
    segment.forEach((c, i) => {
      const at = rec + i * 64;
      resolve(c.args, at + 4);
      words[at >>> 2] = c.kernel;
      words.set(c.args.map((v) => v | 0), (at >>> 2) + 1);
    });
    const hasFork = segment.some((c) => c.kernel === FORK_RECORD), fails = segment.map((c) => c.fail);
    segment = [];
    steps.push(() => {
      let failed = 0;
      try {
        failed = e.x.runCalls(rec, n, mainScratch.ptr);
      } catch (err) {
        if (hasFork) settleForks(e); // a trap here, in a fork-join: its workers' slots back to idle
        throw err;
      }
      if (failed < 0) {
        // A gather's index outside its table: the record's arguments as it ran, the position in its last word.
        const at = (rec >>> 2) + (-failed - 1) * 16, w = heap.i32;
        throw fails[-failed - 1]!(w.subarray(at + 1, at + 16), w[at + 15]);
      }
      if (failed) {
        throw new Error(`cpu engine: a kernel failed in a worker (record ${failed - 1}; see its message above)`);
      }
    });
  };
  const sink: KernelSink = {
    launch(e, kernel, size, min, make, scratchBytes, descBytes) {
      const pool = size >= min ? poolFor(e) : null;
      const parts = pool ? cpuThreads() * PARTS_PER_THREAD : 1;
      const descs: { ptr: number; bytes: number }[] = [];
      const descAt = () => {
        const bytes = Math.max(descBytes, ALIGN), ptr = heap.alloc(bytes);
        if (ptr < 0) throw new Error("compile: the heap has no room for a kernel descriptor");
        descs.push({ ptr, bytes });
        return ptr;
      };
      const args = make(parts, descAt);
      owned.push(...descs);
      if (!args || (scratchBytes && !ensureScratch(e, mainScratch, scratchBytes))) return false;
      maxScratch = Math.max(maxScratch, scratchBytes);
      if (args.length === 1) {
        if (low.loop === "wasm" && moduleKernel(kernel)) {
          pushSplit();
          segment.push({ kernel, args: args[0] });
          return true;
        }
        flush(); // after the wasm kernels recorded before it
        resolve(args[0], -1);
        steps.push(callOf(e.x, kernel, args[0]));
        return true;
      }
      // Split: its parts join those of the split kernel recorded just before it when that one is the same
      // kernel and the two are independent (it reads nothing the other writes, writes nothing the other
      // touches): one fork and join for both (a layer's q, k and v products; its gate and up products).
      const here = ranges(current!);
      if (
        split && split.kernel === kernel && split.scratchBytes === scratchBytes &&
        !here.reads.some((r) => split!.writes.some((w) => overlap(r, w))) &&
        !split.reads.some((r) => overlap(r, here.writes[0])) && !split.writes.some((w) => overlap(w, here.writes[0]))
      ) {
        split.args.push(...args);
        split.reads.push(...here.reads);
        split.writes.push(...here.writes);
        return true;
      }
      pushSplit(); // the split kernel before it (the records before both stay in the module's loop)
      split = { kernel, args: [...args], scratchBytes, ...here };
      return true;
    },
    gather(e, args, fail) {
      if (low.loop === "wasm") return pushSplit(), void segment.push({ kernel: KERNEL.gather, args, fail });
      flush(), resolve(args, -1), steps.push(() => runGather(e.x, args, fail));
    },
    js(f) {
      flush();
      steps.push(f);
    },
    words(w) {
      const bytes = Math.max(w.length * 4, 4), ptr = heap.alloc(bytes);
      if (ptr < 0) throw new Error("compile: the heap has no room for a fused kernel's program");
      owned.push({ ptr, bytes });
      const a = [...w];
      resolve(a, ptr);
      heap.i32.set(a.map((v) => v | 0), ptr >>> 2);
      return ptr;
    },
  };
  try {
    for (const s of p.steps) current = s, low.emit(sink, s.call, (id) => bufs[id], bufs[s.out]);
    flush();
  } catch (err) {
    for (const o of owned) heap.release(o.ptr, o.bytes);
    for (const c of constants.values()) b.free(c);
    throw err;
  }

  // ---- run
  const patchesOf = binds.map((_, k) => patches.filter((q) => q.bind === k));
  /** Where each binding was at the last run (its arguments hold that address); -1: never patched. */
  const patchedAt = binds.map(() => -1);
  let disposed = false;
  const run = (inputs: readonly BackendBuffer[]): BackendBuffer[] => {
    if (disposed) throw new Error("compiled program: run after dispose");
    if (inputs.length !== nIn) throw new Error(`compiled program: expected ${nIn} inputs, got ${inputs.length}`);
    let outside = false;
    inputs.forEach((x, i) => {
      const v = p.values[i], buf = x as CpuBuffer;
      if (!(buf instanceof CpuBuffer)) throw new Error(`compiled program: input ${i} is not a cpu buffer`);
      if (buf.freed) throw new Error(`compiled program: input ${i} was freed`);
      if (buf.size !== v.size || buf.dtype !== v.dtype) {
        throw new Error(`compiled program: input ${i} is ${buf.size} × ${buf.dtype}, expected ${v.size} × ${v.dtype}`);
      }
      if (p.donated[i] && inputs.indexOf(x) !== i) {
        throw new Error(`compiled program: donated input ${i} is also passed as input ${inputs.indexOf(x)}`);
      }
      if (buf.ptr < 0) outside = true;
    });
    if (outside) return replay(b, p, constants, inputs);
    // Fresh outputs first: where the heap has no room for one, the program is replayed (nothing consumed yet).
    const from = adoptFrom.map((i, j) => {
      const x = i >= 0 ? inputs[i] as CpuBuffer : null;
      return x && x.bytes >= bytesOf(outputs[j]) ? x : null;
    });
    const fresh = outputs.map((o, j) => from[j] ? null : low.alloc(p.values[o].dtype, p.values[o].size));
    if (fresh.some((f) => f && f.ptr < 0)) {
      for (const f of fresh) if (f) b.free(f);
      return replay(b, p, constants, inputs);
    }
    const outs = outputs.map((o, j) => fresh[j] ?? low.adopt(from[j]!, p.values[o].dtype, p.values[o].size));
    try {
      inputs.forEach((x, i) => binds[i].ptr = (x as CpuBuffer).ptr);
      outs.forEach((o, j) => binds[nIn + j].ptr = o.ptr);
      // Only the arguments of bindings at another address than last run (a model's weights stay put).
      const words = heap.i32;
      for (let k = 0; k < nBind; k++) {
        const ptr = binds[k].ptr;
        if (ptr === patchedAt[k]) continue;
        patchedAt[k] = ptr;
        for (const q of patchesOf[k]) {
          if (q.args) q.args[q.at] = ptr + q.off;
          else words[q.at >>> 2] = (ptr + q.off) | 0;
        }
      }
      if (maxScratch && !ensureScratch(e, mainScratch, maxScratch)) {
        throw new Error("compiled program: the heap has no room for matmul scratch");
      }
      if (forks) prepareForks(e, forkScratch);
      for (const s of steps) s();
    } catch (err) {
      for (const o of outs) if (!o.freed) b.free(o);
      throw err;
    }
    inputs.forEach((x, i) => {
      if (p.donated[i] && !(x as CpuBuffer).freed) b.free(x);
    });
    return outs;
  };
  return {
    run,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const o of owned) heap.release(o.ptr, o.bytes);
      for (const c of constants.values()) b.free(c);
    },
  };
}
