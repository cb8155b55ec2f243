// What one load costs on this WebGPU adapter, by kind of memory: the measurement behind the matmul ladder's
// choices on CPU adapters (llvmpipe), where the invocations of a workgroup are the lanes of one SIMD register.
//
//   deno run -A bench/kernels/webgpu_loads.ts
//
// Each kernel runs a loop of 16 loads summed into 4 accumulators (little register pressure), 8 invocations
// per workgroup. Reported: thread-nanoseconds per load of one 8-invocation group (wall time × threads /
// loads), so a matmul's cost can be estimated as (loads per k-step × this) + (FMAs per k-step × the "no load"
// row). On Mesa 22.3 llvmpipe every kind costs 10–20 ns, uniform index or not (a vec4 load ~20 ns, ~10×
// an FMA on 8 lanes): a register-blocked tile of T×T outputs per invocation needs 2T vec4 loads per 4T² FMAs,
// which is why only very large tiles (and their long compiles) approach the CPU backend there.

import { createWebGpuBackend } from "../../backends/webgpu/mod.ts";
import { table } from "../util.ts";

/** A kind of load: the WGSL declaration it needs and the expression loading element `i` in lane `l`. */
interface LoadKind {
  decl: string;
  load: (i: string) => string;
}

const KINDS: Record<string, LoadKind> = {
  "storage f32, per-lane index": {
    decl: "@group(0) @binding(1) var<storage, read> S: array<f32>;",
    load: (i) => `vec4f(S[((${i}) * 64u + l) & 262143u])`,
  },
  "storage vec4, per-lane index": {
    decl: "@group(0) @binding(1) var<storage, read> V: array<vec4f>;",
    load: (i) => `V[((${i}) * 64u + l) & 65535u]`,
  },
  "storage vec4, uniform index": {
    decl: "@group(0) @binding(1) var<storage, read> V: array<vec4f>;",
    load: (i) => `V[(${i}) & 65535u]`,
  },
  "texture rgba32float, per-lane": {
    decl: "@group(0) @binding(2) var T: texture_2d<f32>;",
    load: (i) => `textureLoad(T, vec2u(l, (${i}) & 255u), 0)`,
  },
  "texture rgba32float, uniform": {
    decl: "@group(0) @binding(2) var T: texture_2d<f32>;",
    load: (i) => `textureLoad(T, vec2u(3u, (${i}) & 255u), 0)`,
  },
  "uniform vec4, uniform index": {
    decl: "@group(0) @binding(3) var<uniform> U: array<vec4f, 4096>;",
    load: (i) => `U[(${i}) & 4095u]`,
  },
  "workgroup vec4, uniform index": {
    decl: "var<workgroup> W: array<vec4f, 1024>;",
    load: (i) => `W[(${i}) & 1023u]`,
  },
  "no load (vec4 arithmetic)": { decl: "", load: (i) => `vec4f(f32(${i}))` },
};

const ITERS = 4096, UNROLL = 16, GROUPS = 256;

/** WGSL of the probe for one kind. */
export function loadProbeSource(kind: LoadKind): string {
  const body = Array.from({ length: UNROLL }, (_, u) => `s${u % 4} += ${kind.load(`i + ${u}u`)};`).join("\n    ");
  return `@group(0) @binding(0) var<storage, read_write> O: array<vec4f>;
${kind.decl}
@compute @workgroup_size(8)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) g: vec3u) {
  var s0 = vec4f(0.0); var s1 = vec4f(0.0); var s2 = vec4f(0.0); var s3 = vec4f(0.0);
  for (var i = g.x; i < g.x + ${ITERS * UNROLL}u; i += ${UNROLL}u) {
    ${body}
  }
  O[g.x * 8u + l] = s0 + s1 + s2 + s3;
}`;
}

if (import.meta.main) {
  const gpu = await createWebGpuBackend();
  const device = gpu.engine.device;
  // llvmpipe runs compute on one thread per core (LP_NUM_THREADS overrides it).
  const threads = Number(Deno.env.get("LP_NUM_THREADS") ?? navigator.hardwareConcurrency);
  console.log(`# Cost of one 8-invocation load (${gpu.description}, ${threads} threads assumed)\n`);
  const out = device.createBuffer({ size: GROUPS * 8 * 16, usage: GPUBufferUsage.STORAGE });
  const storage = device.createBuffer({ size: 1 << 20, usage: GPUBufferUsage.STORAGE });
  const uniform = device.createBuffer({ size: 65536, usage: GPUBufferUsage.UNIFORM });
  const texture = device.createTexture({
    size: [256, 256],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING,
  });
  const resources: GPUBindingResource[] = [{ buffer: out }, { buffer: storage }, texture.createView(), {
    buffer: uniform,
  }];
  const rows: string[][] = [];
  for (const [name, kind] of Object.entries(KINDS)) {
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code: loadProbeSource(kind) }), entryPoint: "main" },
    });
    const used = [0, ...[1, 2, 3].filter((b) => kind.decl.includes(`binding(${b})`))];
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: used.map((binding) => ({ binding, resource: resources[binding] })),
    });
    const run = () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(GROUPS);
      pass.end();
      device.queue.submit([enc.finish()]);
      return device.queue.onSubmittedWorkDone();
    };
    await run(); // compile and warm up
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      await run();
      times.push(performance.now() - t0);
    }
    const ms = times.sort((a, b) => a - b)[2];
    const ns = (ms * 1e6 * threads) / (GROUPS * ITERS * UNROLL);
    rows.push([name, ns.toFixed(2), ms.toFixed(1)]);
    console.error(`${name}: ${ns.toFixed(2)} ns`);
  }
  console.log(table(["load", "ns per 8-lane load", "ms per run"], rows));
  for (const b of [out, storage, uniform]) b.destroy();
  texture.destroy();
}
