/**
 * The WebGPU runtime under the backend: the device, a buffer pool keyed by
 * size class, one command encoder that batches every dispatch until something
 * must be read (or a batch limit is hit), a params arena (each dispatch's
 * shapes and strides, uploaded once per submit), a pipeline cache keyed by
 * shader source, a bind-group cache, deferred index-range checks, and the
 * read-back path. Kernels (elementwise.ts, reduce.ts, …) only build WGSL and
 * call {@link Engine.run} through the {@link KernelHost} interface; compiled
 * programs (program.ts) record them once and replay prepared dispatches with
 * {@link Engine.dispatchPrepared}.
 * @module
 */
import type { BackendBuffer } from "../backend.ts";
import type { DType } from "../../core/dtype.ts";

/** The adapter limits the engine respects (read from the device it was created with). */
export interface EngineLimits {
  /** Largest storage binding: no tensor buffer may exceed it. */
  maxStorageBufferBindingSize: number;
  /** Largest buffer. */
  maxBufferSize: number;
  /** Alignment of dynamic offsets into the params arena. */
  minStorageBufferOffsetAlignment: number;
  /** Grids are folded into 2-D past this. */
  maxComputeWorkgroupsPerDimension: number;
  /** Workgroup memory available to the tree reductions. */
  maxComputeWorkgroupStorageSize: number;
  /** Storage bindings per kernel. */
  maxStorageBuffersPerShaderStage: number;
}

/** One pooled GPU allocation. `lastUse` is the epoch of the last encoder that referenced it. */
export interface Slot {
  /** Pool-wide id. */
  readonly id: number;
  /** The GPU buffer. */
  readonly gpu: GPUBuffer;
  /** Its size in bytes (a size class, see {@link sizeClass}). */
  readonly capacity: number;
  /** Epoch of the last encoder that referenced it. */
  lastUse: number;
}

/** A tensor buffer on the GPU: `size` elements of `dtype` (bool is stored as u32 0/1) in a pooled slot. */
export class GpuBuffer implements BackendBuffer {
  /** Set by `free`; any later use is an error. */
  freed = false;
  /** A view of `size` elements in `slot`, a pooled allocation whose capacity may be larger. */
  constructor(readonly dtype: DType, readonly size: number, readonly slot: Slot) {}
  /** Bytes bound for this buffer (at least 4: WebGPU bindings cannot be empty). */
  get bytes(): number {
    return Math.max(4, this.size * 4);
  }
}

/** A raw binding (internal scratch such as the index-check log). */
export interface RawBinding {
  /** The buffer. */
  raw: GPUBuffer;
  /** Byte offset of the binding. */
  offset: number;
  /** Bytes bound. */
  size: number;
}

/** An out-of-range index check waiting for the next read-back. */
interface IndexCheck {
  op: string;
  limit: number;
  slot: number;
}

/** The index checks of a compiled program: one slot each in its own log buffer (see {@link Engine.pendChecks}). */
export interface CheckLog {
  /** The log buffer: one {@link CHECK_SLOT_BYTES}-byte slot per check. */
  readonly raw: GPUBuffer;
  /** What each slot checks, in slot order. */
  readonly checks: readonly { readonly op: string; readonly limit: number }[];
}

/**
 * What a kernel needs from the runtime: allocate and free tensor buffers,
 * record a dispatch, size a grid, get an index-check slot. {@link Engine}
 * runs the dispatches; a compiled program's recorder (record.ts) captures the
 * same calls once, so compiled programs run exactly the eager kernels.
 */
export interface KernelHost {
  /** The adapter limits. */
  readonly limits: EngineLimits;
  /** A buffer for `size` elements of `dtype`. */
  alloc(dtype: DType, size: number): GpuBuffer;
  /** Releases a buffer (kernel scratch). */
  free(buf: GpuBuffer): void;
  /** Records one dispatch (see {@link Engine.run}). */
  run(
    src: string,
    kinds: string,
    bufs: readonly (GpuBuffer | RawBinding)[],
    params: ArrayLike<number>,
    groups: readonly [number, number?, number?],
  ): void;
  /** Workgroup counts for `n` invocations of `wg` threads (see {@link Engine.grid}). */
  grid(n: number, wg: number): [number, number];
  /** A slot recording a kernel's first out-of-range index (see {@link Engine.indexCheck}). */
  indexCheck(op: string, limit: number): RawBinding;
}

/**
 * Most dispatches recorded before the encoder is submitted anyway (bounds the arena and the memory held by
 * pending work). On llvmpipe `queue.submit` runs the work before returning, so this also sets how much
 * work runs per submit; a wait on the queue (~11 ms there) happens only at a read.
 */
export const MAX_DISPATCHES = 512;
/** Bytes bound for each dispatch's params (dynamic offset into the arena): 256 u32 words. */
export const PARAM_BYTES = 1024;
const ARENA_BYTES = 1 << 20;
/** Index-check log: 2 words used per slot; slots 256 bytes apart, the largest storage-offset alignment allowed. */
export const CHECK_SLOT_BYTES = 256;
const CHECK_SLOTS = 256;
/** Free bytes kept in the pool before freed buffers are destroyed instead of kept. */
const POOL_MAX_BYTES = 512 * 1024 * 1024;
/** Usage of tensor buffers: STORAGE | COPY_SRC | COPY_DST. */
export const USAGE_STORAGE = 0x80 | 0x04 | 0x08;
const USAGE_STAGING = 0x01 | 0x08; // MAP_READ | COPY_DST

/** Size classes: 256 B, then four steps per power of two (≤ 25% slack). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

/** Error text shared by every "the GPU is unusable" message. */
export const CPU_HINT = 'call setBackend("cpu") to continue on the CPU';

/** The runtime: see the module doc. */
export class Engine implements KernelHost {
  /**
   * Counters for benchmarks and tests. `dispatches` and `submits` include
   * compiled programs' (program.ts, submitted with the next read): `programRuns` counts
   * their runs, `programDispatches` their dispatches, and `programBindGroups`
   * the bind groups they made (at compile time where their buffers are
   * fixed; per new input/output buffer otherwise).
   */
  readonly stats = {
    dispatches: 0,
    submits: 0,
    reads: 0,
    pipelines: 0,
    buffersCreated: 0,
    bindGroupHits: 0,
    programRuns: 0,
    programDispatches: 0,
    programBindGroups: 0,
  };
  #epoch = 1;
  #enc: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #dispatches = 0;
  readonly #arena: GPUBuffer;
  readonly #arenaHost = new Uint32Array(ARENA_BYTES / 4);
  #arenaUsed = 0; // bytes
  readonly #align: number;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  readonly #pool = new Map<number, Slot[]>();
  #pooledBytes = 0;
  #nextSlotId = 1;
  #live = 0;
  readonly #staging: GPUBuffer[] = [];
  readonly #toDestroy: GPUBuffer[] = [];
  #lost: string | null = null;
  #asyncError: Error | null = null;
  readonly #checkLogs: GPUBuffer[] = [];
  #checkSlots = 0;
  #checks: IndexCheck[] = [];
  /** Compiled programs' check logs to read with the next read-back; `true`: destroy the log after it. */
  readonly #programChecks = new Map<CheckLog, boolean>();

  /** A runtime on `device` (every buffer and kernel lives there), respecting `limits`. */
  constructor(readonly device: GPUDevice, readonly limits: EngineLimits) {
    this.#align = Math.max(4, limits.minStorageBufferOffsetAlignment);
    this.#arena = device.createBuffer({ size: ARENA_BYTES + PARAM_BYTES, usage: 0x80 | 0x08 });
    device.lost.then((info) => {
      this.#lost = `${info.reason}${info.message ? `: ${info.message}` : ""}`;
    });
    device.addEventListener("uncapturederror", (ev) => {
      this.#asyncError ??= this.#describe((ev as GPUUncapturedErrorEvent).error, "a GPU command");
    });
  }

  #describe(err: GPUError, what: string): Error {
    if (typeof GPUOutOfMemoryError !== "undefined" && err instanceof GPUOutOfMemoryError) {
      return new Error(
        `webgpu: out of GPU memory during ${what} (${err.message}); free tensors (dispose, scope) or ${CPU_HINT}`,
      );
    }
    return new Error(`webgpu: GPU error during ${what}: ${err.message}`);
  }

  /** Throws if the device was lost; called by every public backend method. */
  check(): void {
    if (this.#lost !== null) {
      throw new Error(
        `webgpu: the GPU device was lost (${this.#lost}); tensors on the webgpu backend are gone. ${
          CPU_HINT[0].toUpperCase() + CPU_HINT.slice(1)
        }.`,
      );
    }
  }

  /** Buffers handed out and not freed. */
  get live(): number {
    return this.#live;
  }

  /** The epoch of the encoder being recorded (a buffer used in it has `lastUse === epoch`). */
  get epoch(): number {
    return this.#epoch;
  }

  // ------------------------------------------------------------------ memory

  /** Throws a clear Error if `bytes` exceeds a binding or buffer limit of the adapter. */
  checkSize(what: string, bytes: number, elements: number): void {
    const { maxStorageBufferBindingSize: bind, maxBufferSize: max } = this.limits;
    if (bytes > bind || bytes > max) {
      const [name, lim] = bytes > bind ? ["maxStorageBufferBindingSize", bind] : ["maxBufferSize", max];
      throw new Error(
        `webgpu: ${what} of ${elements} elements needs ${bytes} bytes, over this adapter's ${name} of ${lim} bytes ` +
          `(${Math.floor(lim / 4)} 4-byte elements); use smaller tensors or ${CPU_HINT}`,
      );
    }
  }

  /**
   * A buffer for `size` elements. With `forWrite`, the slot must not be used
   * by the encoder being recorded: `queue.writeBuffer` runs before commands
   * that are not yet submitted, so writing a slot they read would corrupt them.
   */
  alloc(dtype: DType, size: number, forWrite = false): GpuBuffer {
    this.check();
    const bytes = Math.max(4, size * 4);
    this.checkSize(`a ${dtype} buffer`, bytes, size);
    const maxCap = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    const cap = Math.min(sizeClass(bytes), Math.max(bytes, maxCap));
    let slot: Slot | undefined;
    const list = this.#pool.get(cap);
    if (list?.length) {
      if (!forWrite) slot = list.pop(); // the most recently freed: a kernel output may reuse a busy slot
      else {
        // The least recently freed slots are the likeliest to be idle.
        for (let i = 0; i < Math.min(8, list.length); i++) {
          if (list[i].lastUse !== this.#epoch) {
            slot = list[i];
            list.splice(i, 1);
            break;
          }
        }
      }
      if (slot) this.#pooledBytes -= cap;
    }
    if (!slot) slot = this.#create(cap);
    this.#live++;
    return new GpuBuffer(dtype, size, slot);
  }

  #create(cap: number): Slot {
    this.device.pushErrorScope("out-of-memory");
    const gpu = this.device.createBuffer({ size: cap, usage: USAGE_STORAGE });
    this.device.popErrorScope().then((e) => {
      if (e) this.#asyncError ??= this.#describe(e, `allocation of a ${cap}-byte buffer`);
    });
    this.stats.buffersCreated++;
    return { id: this.#nextSlotId++, gpu, capacity: cap, lastUse: 0 };
  }

  /** Returns a buffer to the pool (or destroys it when the pool is full). */
  free(buf: GpuBuffer): void {
    if (buf.freed) throw new Error("webgpu backend: buffer freed twice");
    buf.freed = true;
    this.#live--;
    const slot = buf.slot;
    if (this.#lost !== null) return;
    if (this.#pooledBytes + slot.capacity > POOL_MAX_BYTES) {
      this.#evict(slot);
      return;
    }
    let list = this.#pool.get(slot.capacity);
    if (!list) this.#pool.set(slot.capacity, list = []);
    list.push(slot);
    this.#pooledBytes += slot.capacity;
  }

  /**
   * A new handle on `buf`'s slot, viewed as `size` elements of `dtype` (at
   * most the slot's capacity); `buf` is consumed (freed without returning its
   * slot). How a compiled program hands a donated input's memory back as an
   * output.
   */
  adopt(buf: GpuBuffer, dtype: DType, size: number): GpuBuffer {
    if (buf.freed) throw new Error("webgpu backend: buffer used after free");
    if (Math.max(4, size * 4) > buf.slot.capacity) throw new Error("webgpu: internal: adopt past a slot's capacity");
    buf.freed = true;
    return new GpuBuffer(dtype, size, buf.slot);
  }

  #evict(slot: Slot): void {
    // A slot still referenced by unsubmitted commands is destroyed after the submit.
    if (slot.lastUse === this.#epoch) this.#toDestroy.push(slot.gpu);
    else slot.gpu.destroy();
    this.#bindGroups.clear(); // cached groups may name the destroyed buffer
  }

  /** Destroys every pooled (free) buffer. */
  trim(): void {
    for (const list of this.#pool.values()) for (const s of list) this.#evict(s);
    this.#pool.clear();
    this.#pooledBytes = 0;
  }

  /** Writes host data into a buffer allocated with `forWrite`. */
  write(buf: GpuBuffer, data: ArrayBufferView): void {
    if (data.byteLength) {
      this.device.queue.writeBuffer(buf.slot.gpu, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    }
  }

  // ------------------------------------------------------------------ dispatch

  /** Alignment of dynamic offsets into a params buffer. */
  get paramAlign(): number {
    return this.#align;
  }

  /** The bind-group layout and pipeline layout for a kinds string (see {@link run}), cached. */
  layout(kinds: string): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let l = this.#layouts.get(kinds);
    if (!l) {
      // Minimum sizes in the layout (vec4 arrays: 16 bytes) are checked when a bind group is made. Left to
      // the pipeline ("late" sizes), wgpu keeps the sizes of an earlier group of the same layout within a
      // pass, and a vec4 kernel after an f32 kernel on a one-element buffer fails validation.
      const entries: GPUBindGroupLayoutEntry[] = [...kinds].map((k, i) => ({
        binding: i,
        visibility: 4, // COMPUTE
        buffer: { type: k === "w" ? "storage" : "read-only-storage", minBindingSize: k === "v" ? 16 : 4 },
      }));
      entries.push({
        binding: kinds.length,
        visibility: 4,
        buffer: { type: "read-only-storage", hasDynamicOffset: true },
      });
      const group = this.device.createBindGroupLayout({ entries });
      l = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.#layouts.set(kinds, l);
    }
    return l;
  }

  /** The compute pipeline of a kernel source and bindings kinds, cached by both. */
  pipeline(src: string, kinds: string): GPUComputePipeline {
    const key = kinds + "\n" + src;
    let p = this.#pipelines.get(key);
    if (!p) {
      this.device.pushErrorScope("validation");
      const module = this.device.createShaderModule({ code: src });
      p = this.device.createComputePipeline({
        layout: this.layout(kinds).pipeline,
        compute: { module, entryPoint: "main" },
      });
      this.device.popErrorScope().then((e) => {
        if (e) this.#asyncError ??= new Error(`webgpu: shader failed to compile: ${e.message}\n${src}`);
      });
      this.#pipelines.set(key, p);
      this.stats.pipelines++;
    }
    return p;
  }

  #encoder(): GPUCommandEncoder {
    return this.#enc ??= this.device.createCommandEncoder();
  }

  #computePass(): GPUComputePassEncoder {
    return this.#pass ??= this.#encoder().beginComputePass();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /**
   * Records one dispatch of `src`. `kinds` has one letter per binding before
   * the params ("w" read-write storage, "r" read-only storage, "v" read-only
   * storage of vec4s, at least 16 bytes); the params
   * (u32 words) are bound last, at binding `kinds.length`, as `array<u32>`.
   */
  run(
    src: string,
    kinds: string,
    bufs: readonly (GpuBuffer | RawBinding)[],
    params: ArrayLike<number>,
    groups: readonly [number, number?, number?],
  ): void {
    this.check();
    if (params.length * 4 > PARAM_BYTES) throw new Error(`webgpu: internal: ${params.length} params words`);
    const pipeline = this.pipeline(src, kinds);
    if (this.#arenaUsed + PARAM_BYTES > ARENA_BYTES || this.#dispatches >= MAX_DISPATCHES) this.flush();
    const offset = this.#arenaUsed;
    this.#arenaHost.set(params, offset / 4);
    this.#arenaUsed += Math.ceil(Math.max(4, params.length * 4) / this.#align) * this.#align;

    let key = kinds;
    for (const b of bufs) {
      if (b instanceof GpuBuffer) {
        if (b.freed) throw new Error("webgpu backend: buffer used after free");
        b.slot.lastUse = this.#epoch;
        key += `|${b.slot.id}:${b.bytes}`;
      } else key += `|r${b.offset}:${b.size}:${this.#checkLogs.indexOf(b.raw)}`;
    }
    let group = this.#bindGroups.get(key);
    if (group) this.stats.bindGroupHits++;
    else {
      const entries: GPUBindGroupEntry[] = bufs.map((b, i) => ({
        binding: i,
        resource: b instanceof GpuBuffer
          ? { buffer: b.slot.gpu, offset: 0, size: b.bytes }
          : { buffer: b.raw, offset: b.offset, size: b.size },
      }));
      entries.push({ binding: bufs.length, resource: { buffer: this.#arena, offset: 0, size: PARAM_BYTES } });
      group = this.device.createBindGroup({ layout: this.layout(kinds).group, entries });
      if (this.#bindGroups.size > 4096) this.#bindGroups.clear();
      this.#bindGroups.set(key, group);
    }
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [offset]);
    pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    this.#dispatches++;
    this.stats.dispatches++;
  }

  /**
   * Records one prepared dispatch (a compiled program's: pipeline and bind
   * group built once, params at `offset` in the program's own params buffer)
   * into the current encoder, after any eager work recorded before it.
   */
  dispatchPrepared(
    pipeline: GPUComputePipeline,
    group: GPUBindGroup,
    offset: number,
    groups: readonly [number, number?, number?],
  ): void {
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [offset]);
    pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    this.#dispatches++;
    this.stats.dispatches++;
  }

  /** Marks a buffer as used by the encoder being recorded (its slot is not reused by an upload until submitted). */
  touch(buf: GpuBuffer): void {
    buf.slot.lastUse = this.#epoch;
  }

  /**
   * Before a compiled program records `n` dispatches: submits what is pending first where the two together would
   * pass {@link MAX_DISPATCHES} (a program's own dispatches are never split between submits).
   */
  makeRoom(n: number): void {
    if (this.#dispatches > 0 && this.#dispatches + n > MAX_DISPATCHES) this.flush();
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.#enc) return;
    this.#endPass();
    if (this.#arenaUsed) this.device.queue.writeBuffer(this.#arena, 0, this.#arenaHost, 0, this.#arenaUsed / 4);
    this.device.queue.submit([this.#enc.finish()]);
    this.stats.submits++;
    this.#enc = null;
    this.#dispatches = 0;
    this.#arenaUsed = 0;
    this.#epoch++;
    for (const b of this.#toDestroy.splice(0)) b.destroy();
  }

  /** Workgroup counts for `n` invocations of `wg` threads, folded into 2-D past the per-dimension limit. */
  grid(n: number, wg: number): [number, number] {
    const groups = Math.max(1, Math.ceil(n / wg));
    const maxX = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1];
    const y = Math.ceil(groups / maxX);
    if (y > maxX) throw new Error(`webgpu: ${n} invocations exceed the dispatch limits`);
    return [Math.ceil(groups / y), y];
  }

  // ------------------------------------------------------------------ index checks

  /**
   * A slot in which a gather/scatter kernel records its first out-of-range
   * index (word 0: 0xffffffff − position, by atomicMax; word 1: the index).
   * The checks are read back with the next `read` and reported there:
   * without a synchronous read-back an index error surfaces at the next read.
   */
  indexCheck(op: string, limit: number): RawBinding {
    const s = this.#checkSlots++;
    const log = Math.floor(s / CHECK_SLOTS);
    while (this.#checkLogs.length <= log) {
      this.#checkLogs.push(this.device.createBuffer({ size: CHECK_SLOTS * CHECK_SLOT_BYTES, usage: USAGE_STORAGE }));
    }
    this.#checks.push({ op, limit, slot: s });
    return { raw: this.#checkLogs[log], offset: (s % CHECK_SLOTS) * CHECK_SLOT_BYTES, size: 8 };
  }

  /** Has the next read-back report `log`'s out-of-range indices (and clear it), as for the engine's own checks. */
  pendChecks(log: CheckLog): void {
    if (!this.#programChecks.has(log)) this.#programChecks.set(log, false);
  }

  /** Destroys `log`: now, or after the next read-back if its checks are still to be reported. */
  releaseChecks(log: CheckLog): void {
    if (this.#programChecks.has(log)) this.#programChecks.set(log, true);
    else log.raw.destroy();
  }

  // ------------------------------------------------------------------ read-back

  #stagingBuffer(bytes: number): GPUBuffer {
    const i = this.#staging.findIndex((b) => b.size >= bytes && b.size <= 4 * bytes + 65536);
    if (i >= 0) return this.#staging.splice(i, 1)[0];
    return this.device.createBuffer({ size: sizeClass(bytes), usage: USAGE_STAGING });
  }

  /**
   * Flushes pending work, copies `buf` (and the pending index checks) to a
   * MAP_READ staging buffer, maps it and returns the bytes. Throws the first
   * asynchronous GPU error or out-of-range index recorded since the last read.
   */
  async read(buf: GpuBuffer): Promise<ArrayBuffer> {
    this.check();
    if (buf.freed) throw new Error("webgpu backend: buffer read after free");
    const bytes = buf.size * 4;
    const checks = this.#checks;
    const usedSlots = this.#checkSlots;
    this.#checks = [];
    this.#checkSlots = 0;
    const programLogs = [...this.#programChecks];
    this.#programChecks.clear();
    if (bytes === 0 && !checks.length && !programLogs.length) {
      this.flush();
      return new ArrayBuffer(0);
    }
    const checkBase = Math.ceil(bytes / 256) * 256;
    const checkBytes = usedSlots * CHECK_SLOT_BYTES;
    // Compiled programs' logs follow the engine's, each at its byte offset in the staging buffer.
    const programAt: number[] = [];
    let stagingBytes = checkBase + checkBytes;
    for (const [log] of programLogs) {
      programAt.push(stagingBytes);
      stagingBytes += log.checks.length * CHECK_SLOT_BYTES;
    }
    const staging = this.#stagingBuffer(stagingBytes);
    const enc = this.#encoder();
    this.#endPass();
    if (bytes) enc.copyBufferToBuffer(buf.slot.gpu, 0, staging, 0, bytes);
    for (let l = 0; l * CHECK_SLOTS < usedSlots; l++) {
      const n = Math.min(CHECK_SLOTS, usedSlots - l * CHECK_SLOTS) * CHECK_SLOT_BYTES;
      enc.copyBufferToBuffer(this.#checkLogs[l], 0, staging, checkBase + l * CHECK_SLOTS * CHECK_SLOT_BYTES, n);
      enc.clearBuffer(this.#checkLogs[l], 0, n); // in order, after the copy: the log is fresh for later kernels
    }
    programLogs.forEach(([log], i) => {
      const n = log.checks.length * CHECK_SLOT_BYTES;
      enc.copyBufferToBuffer(log.raw, 0, staging, programAt[i], n);
      enc.clearBuffer(log.raw, 0, n);
    });
    this.flush();
    for (const [log, release] of programLogs) if (release) log.raw.destroy();
    this.stats.reads++;
    try {
      await staging.mapAsync(1, /* READ */ 0, stagingBytes);
    } catch (e) {
      this.check();
      throw new Error(`webgpu: reading a buffer back failed: ${e instanceof Error ? e.message : e}`);
    }
    const mapped = staging.getMappedRange(0, stagingBytes);
    const out = mapped.slice(0, bytes);
    const log = checks.length || programLogs.length ? new Uint32Array(mapped.slice(checkBase)) : null;
    staging.unmap();
    this.#staging.push(staging);
    if (this.#asyncError) {
      const e = this.#asyncError;
      this.#asyncError = null;
      throw e;
    }
    if (log) {
      const all = checks.map((c) => ({ op: c.op, limit: c.limit, at: c.slot * CHECK_SLOT_BYTES }));
      programLogs.forEach(([l], i) =>
        l.checks.forEach((c, k) => all.push({ ...c, at: programAt[i] - checkBase + k * CHECK_SLOT_BYTES }))
      );
      for (const c of all) {
        const w = c.at / 4;
        if (log[w] !== 0) {
          const pos = 0xffffffff - log[w], v = log[w + 1] | 0;
          throw new Error(
            `${c.op}: index ${v} at position ${pos} is out of range [0, ${c.limit}) ` +
              `(found on the GPU; webgpu reports bad indices at the next read-back)`,
          );
        }
      }
    }
    return out;
  }

  /** Waits until the GPU has finished all submitted work (for timing). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }
}
