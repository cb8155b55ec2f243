/**
 * `WebGpuBackend.compile`: a traced program (../program.ts) lowered once into
 * prepared dispatches. At compile time the kernels are recorded through the
 * eager kernel functions (record.ts), memory is planned by liveness
 * (plan.ts), constants are uploaded, the arena buffers allocated, every
 * dispatch's params written into one params buffer, and every bind group whose
 * buffers are fixed (arena, constants, the index-check log) created. A run
 * then only binds the caller's buffers (bind groups for those are cached by
 * buffer, so a training loop whose outputs take over its donated inputs
 * creates none after its first step) and records every dispatch into the
 * engine's one command encoder (after any eager work queued before it). It
 * does not submit: the next read does, with the copy it reads through, so a
 * training step and the read of its loss are one submit (work no read follows
 * is submitted once the encoder holds the engine's most dispatches). Nothing
 * is read back: a read happens when the caller reads an output.
 * @module
 */
import type { BackendBuffer } from "../backend.ts";
import type { CompiledProgram, Program } from "../program.ts";
import { CHECK_SLOT_BYTES, type CheckLog, GpuBuffer, PARAM_BYTES, USAGE_STORAGE } from "./engine.ts";
import type { WebGpuBackend } from "./backend.ts";
import { countChecks, recordProgram } from "./record.ts";
import { type Location, type OutputPlacement, planMemory, validateProgram } from "./plan.ts";

/** A binding a run fills in: a caller's buffer (an input, or an output's buffer). */
interface External {
  /** Binding index. */
  readonly binding: number;
  /** Input or output it binds. */
  readonly loc: Location & { kind: "input" | "output" };
  /** Bytes bound. */
  readonly bytes: number;
}

/** One dispatch ready to record. */
interface Prepared {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Dynamic offset of its params in the program's params buffer. */
  readonly offset: number;
  readonly groups: readonly [number, number?, number?];
  /** The bind group, when every binding is fixed. */
  readonly group: GPUBindGroup | null;
  /** Otherwise: the entries (fixed ones filled), the bindings a run fills, and groups cached by those buffers. */
  readonly entries: GPUBindGroupEntry[];
  readonly external: readonly External[];
  readonly cache: Map<string, GPUBindGroup>;
}

/** Bind groups kept per dispatch for changing caller buffers (a loop cycles through few). */
const CACHE_PER_DISPATCH = 16;

/** A program compiled for the WebGPU backend; see the module doc. */
export class WebGpuProgram implements CompiledProgram {
  /** Dispatches recorded per run. */
  readonly dispatches: number;
  /** Arena buffers (intermediates and kernel scratch share them by liveness) and their total bytes. */
  readonly arena: { readonly buffers: number; readonly bytes: number; readonly intermediates: number };
  /** Where each output's memory comes from (plan.ts). */
  readonly outputs: readonly OutputPlacement[];
  readonly #backend: WebGpuBackend;
  readonly #program: Program;
  readonly #prepared: Prepared[] = [];
  #constants: GpuBuffer[] = [];
  #arena: GpuBuffer[] = [];
  /** Per swapped output: the buffer the next run writes it into (made on the first run, then a donated input's). */
  #spares: (GpuBuffer | null)[] = [];
  #params: GPUBuffer | null = null;
  #checkLog: CheckLog | null = null;
  #disposed = false;

  /** Compiles `program` for `backend` (use `backend.compile`). */
  constructor(backend: WebGpuBackend, program: Program) {
    this.#backend = backend;
    this.#program = program;
    const engine = backend.engine;
    engine.check();
    validateProgram(program);
    const device = engine.device;
    const nChecks = countChecks(program);
    let checkRaw: GPUBuffer | null = null;
    try {
      if (nChecks) checkRaw = device.createBuffer({ size: nChecks * CHECK_SLOT_BYTES, usage: USAGE_STORAGE });
      const rec = recordProgram(engine, program, checkRaw);
      if (checkRaw) this.#checkLog = { raw: checkRaw, checks: rec.checks };
      const plan = planMemory(program, rec.events, rec.bytes);
      this.outputs = plan.outputs;
      const outputs = new Set(program.outputs);
      const intermediates = program.steps.filter((s) => !outputs.has(s.out)).length;
      const bytes = plan.arena.reduce((a, b) => a + b, 0);
      this.arena = { buffers: plan.arena.length, bytes, intermediates };

      this.#constants = program.constants.map((c) => backend.upload(c.data, program.values[c.id].dtype) as GpuBuffer);
      this.#arena = plan.arena.map((bytes) => engine.alloc("float32", bytes / 4));

      // Params of every dispatch in one buffer, written once, at aligned dynamic offsets.
      const all = rec.dispatches.flat();
      const align = engine.paramAlign;
      const offsets: number[] = [];
      let total = 0;
      for (const d of all) {
        if (d.params.length * 4 > PARAM_BYTES) throw new Error(`webgpu: internal: ${d.params.length} params words`);
        offsets.push(total);
        total += Math.ceil(Math.max(4, d.params.length * 4) / align) * align;
      }
      const host = new Uint32Array((total + PARAM_BYTES) / 4);
      all.forEach((d, i) => host.set(d.params, offsets[i] / 4));
      const params = this.#params = device.createBuffer({ size: host.byteLength, usage: 0x80 | 0x08 });
      device.queue.writeBuffer(params, 0, host);

      all.forEach((d, i) => {
        const entries: GPUBindGroupEntry[] = [];
        const external: External[] = [];
        d.bufs.forEach((b, binding) => {
          if (typeof b !== "number") {
            entries.push({ binding, resource: { buffer: b.raw, offset: b.offset, size: b.size } });
            return;
          }
          const loc = plan.where[b], bytes = rec.bytes[b];
          const fixed = loc.kind === "arena"
            ? this.#arena[loc.slot]
            : loc.kind === "constant"
            ? this.#constants[loc.index]
            : null;
          if (fixed) entries.push({ binding, resource: { buffer: fixed.slot.gpu, offset: 0, size: bytes } });
          else {
            external.push({ binding, loc: loc as External["loc"], bytes });
            entries.push({ binding, resource: { buffer: params, offset: 0, size: 4 } }); // filled per run
          }
        });
        entries.push({ binding: d.bufs.length, resource: { buffer: params, offset: 0, size: PARAM_BYTES } });
        const layout = engine.layout(d.kinds).group;
        let group: GPUBindGroup | null = null;
        if (!external.length) {
          group = device.createBindGroup({ layout, entries });
          engine.stats.programBindGroups++;
        }
        this.#prepared.push({
          pipeline: d.pipeline,
          layout,
          offset: offsets[i],
          groups: d.groups,
          group,
          entries,
          external,
          cache: new Map(),
        });
      });
      this.dispatches = this.#prepared.length;
    } catch (e) {
      const logMade = this.#checkLog !== null;
      this.#release();
      if (checkRaw && !logMade) checkRaw.destroy();
      throw e;
    }
  }

  /**
   * Runs the program: see {@link CompiledProgram.run}. Every dispatch goes
   * into the engine's command encoder, submitted by the next read (see the
   * module docs); donated inputs are consumed
   * (their memory becomes outputs' or returns to the pool).
   */
  run(inputs: readonly BackendBuffer[]): BackendBuffer[] {
    if (this.#disposed) throw new Error("webgpu: run of a compiled program after dispose");
    const engine = this.#backend.engine;
    engine.check();
    const p = this.#program;
    if (inputs.length !== p.inputs) {
      throw new Error(`webgpu: compiled program: expected ${p.inputs} input buffers, got ${inputs.length}`);
    }
    const ins = inputs.map((b, j) => {
      if (!(b instanceof GpuBuffer)) throw new Error(`webgpu: compiled program: input ${j} is not a webgpu buffer`);
      if (b.freed) throw new Error(`webgpu: compiled program: input ${j} was freed (or donated to an earlier run)`);
      const want = p.values[j];
      if (b.dtype !== want.dtype || b.size !== want.size) {
        throw new Error(
          `webgpu: compiled program: input ${j} is ${b.size} ${b.dtype} elements, expected ${want.size} ${want.dtype}`,
        );
      }
      return b;
    });
    for (let j = 0; j < ins.length; j++) {
      if (p.donated[j] && ins.some((b, i) => i !== j && b === ins[j])) {
        throw new Error(
          `webgpu: compiled program: input ${j} is donated but its buffer is also passed as another input`,
        );
      }
    }
    // Outputs get their memory now, before any donated memory is released: swapped ones the spare, new ones a
    // buffer from the pool; those going into a donated input take it over after the dispatches are recorded.
    const outs: GpuBuffer[] = p.outputs.map((v, k) => {
      const { dtype, size } = p.values[v];
      const place = this.outputs[k];
      if (place.kind === "into") return null as unknown as GpuBuffer;
      if (place.kind === "new") return engine.alloc(dtype, size);
      const spare = this.#spares[k] ?? engine.alloc(dtype, size);
      this.#spares[k] = null;
      return spare;
    });
    const bufOf = (loc: External["loc"]) => (loc.kind === "input" ? ins[loc.index] : outs[loc.index]);
    engine.makeRoom(this.#prepared.length);
    for (const d of this.#prepared) {
      let group = d.group;
      if (!group) {
        let key = "";
        for (const x of d.external) key += `${bufOf(x.loc).slot.id},`;
        group = d.cache.get(key) ?? null;
        if (group) engine.stats.bindGroupHits++;
        else {
          for (const x of d.external) {
            d.entries[x.binding] = {
              binding: x.binding,
              resource: { buffer: bufOf(x.loc).slot.gpu, offset: 0, size: x.bytes },
            };
          }
          group = engine.device.createBindGroup({ layout: d.layout, entries: d.entries });
          engine.stats.programBindGroups++;
          if (d.cache.size >= CACHE_PER_DISPATCH) d.cache.clear();
          d.cache.set(key, group);
        }
      }
      engine.dispatchPrepared(d.pipeline, group, d.offset, d.groups);
    }
    for (const b of ins) engine.touch(b);
    for (const b of outs) if (b) engine.touch(b);
    const adopted = new Set<number>();
    p.outputs.forEach((v, k) => {
      const place = this.outputs[k];
      if (place.kind === "new") return;
      const { dtype, size } = p.values[v];
      const taken = engine.adopt(ins[place.input], dtype, size);
      if (place.kind === "into") outs[k] = taken;
      else this.#spares[k] = taken;
      adopted.add(place.input);
    });
    ins.forEach((b, j) => {
      if (p.donated[j] && !adopted.has(j)) engine.free(b);
    });
    engine.stats.programRuns++;
    engine.stats.programDispatches += this.#prepared.length;
    if (this.#checkLog) engine.pendChecks(this.#checkLog);
    return outs;
  }

  #release(): void {
    const engine = this.#backend.engine;
    // Runs not yet submitted bind the params and check buffers destroyed below: submit them first.
    engine.flush();
    for (const b of [...this.#constants, ...this.#arena, ...this.#spares]) if (b) engine.free(b);
    this.#constants = [];
    this.#arena = [];
    this.#spares = [];
    this.#params?.destroy();
    this.#params = null;
    if (this.#checkLog) engine.releaseChecks(this.#checkLog);
    this.#checkLog = null;
    this.#prepared.length = 0;
  }

  /** Frees the constants, arena and spare buffers and destroys the params and check buffers. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#release();
  }
}
