// An experiment beside the WebGPU matmul ladder: the "dot" layout, both operands K-major (A as [M, K/4] and
// Bᵀ as [N, K/4] vec4s), read from rgba32float textures with textureLoad or (--storage) from storage
// buffers. Not a production program (the backend's tensors are storage buffers, and a K-major copy of B
// would be needed for a plain A·B); kept so the measurement can be repeated.
//
//   deno run -A bench/kernels/webgpu_matmul_dot.ts [--size 1024] [--kstep 1] [--storage] [TMxTN ...]
//   deno run -A bench/kernels/webgpu_matmul_dot.ts 16x16 32x16 32x32
//
// An 8×1 workgroup; invocation (lane) l owns rows m0..m0+TM and columns n0 + l + 8c for c < TN, and adds
// `kstep` dot products of vec4s per accumulator per k-loop iteration. Prints compile time (the first
// dispatch: llvmpipe compiles there, not at pipeline creation), GFLOP/s (median of 5 batches of 4) and the
// max error of 256 sampled outputs.

import { parseArgs } from "node:util";
import { createWebGpuBackend } from "../../backends/webgpu/mod.ts";
import { table } from "../util.ts";

/**
 * WGSL of the dot-layout program for a TM×TN tile per invocation (M a multiple of TM, N of 8·TN, K of
 * 4·kstep), reading textures TA, TB or (storage) buffers SA, SB.
 */
export function dotMatmulSource(tm: number, tn: number, K: number, N: number, kstep = 1, storage = false): string {
  const L: string[] = [];
  for (let r = 0; r < tm; r++) for (let c = 0; c < tn; c++) L.push(`var c${r}_${c} = 0.0;`);
  L.push(`for (var k = 0u; k < ${K / 4}u; k += ${kstep}u) {`);
  for (let j = 0; j < kstep; j++) {
    for (let r = 0; r < tm; r++) {
      L.push(
        storage
          ? `  let a${r}_${j} = SA[(m0 + ${r}u) * ${K / 4}u + k + ${j}u];`
          : `  let a${r}_${j} = textureLoad(TA, vec2u(k + ${j}u, m0 + ${r}u), 0);`,
      );
    }
    for (let c = 0; c < tn; c++) {
      L.push(
        storage
          ? `  let b${c}_${j} = SB[(n0 + ${c * 8}u) * ${K / 4}u + k + ${j}u];`
          : `  let b${c}_${j} = textureLoad(TB, vec2u(k + ${j}u, n0 + ${c * 8}u), 0);`,
      );
    }
  }
  for (let r = 0; r < tm; r++) {
    for (let c = 0; c < tn; c++) {
      L.push(`  c${r}_${c} += ${Array.from({ length: kstep }, (_, j) => `dot(a${r}_${j}, b${c}_${j})`).join(" + ")};`);
    }
  }
  L.push("}");
  for (let r = 0; r < tm; r++) {
    for (let c = 0; c < tn; c++) L.push(`C[(m0 + ${r}u) * ${N}u + n0 + ${c * 8}u] = c${r}_${c};`);
  }
  const decl = storage
    ? `@group(0) @binding(0) var<storage, read> SA: array<vec4f>;
@group(0) @binding(1) var<storage, read> SB: array<vec4f>;`
    : `@group(0) @binding(0) var TA: texture_2d<f32>;
@group(0) @binding(1) var TB: texture_2d<f32>;`;
  return `${decl}
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let m0 = g.y * ${tm}u;
  let n0 = g.x * ${8 * tn}u + l.x;
  ${L.join("\n  ")}
}`;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      size: { type: "string", default: "1024" },
      kstep: { type: "string", default: "1" },
      storage: { type: "boolean", default: false },
    },
  });
  const size = Number(values.size), kstep = Number(values.kstep), storage = values.storage;
  const tiles = (positionals.length ? positionals : ["8x8", "16x16", "32x16"]).map((t) => {
    const [tm, tn] = t.split("x").map(Number);
    if (!(tm > 0 && tn > 0)) throw new Error(`tile "${t}": expected TMxTN, e.g. 32x16`);
    return [tm, tn] as const;
  });
  if (size % (4 * kstep)) throw new Error(`--size ${size} must be a multiple of 4·kstep (${4 * kstep})`);
  const gpu = await createWebGpuBackend();
  const device = gpu.engine.device;
  console.log(
    `# Dot-layout matmul, ${size}², ${storage ? "storage buffers" : "textures"}, kstep ${kstep} (${gpu.description})\n`,
  );
  const M = size, K = size, N = size;
  let seed = 1;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  const A = Float32Array.from({ length: M * K }, rand) as Float32Array<ArrayBuffer>;
  const B = Float32Array.from({ length: K * N }, rand);
  const BT = new Float32Array(N * K) as Float32Array<ArrayBuffer>;
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) BT[n * K + k] = B[k * N + n];
  const texture = (data: Float32Array<ArrayBuffer>, rows: number) => {
    const t = device.createTexture({
      size: [K / 4, rows],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    device.queue.writeTexture({ texture: t }, data, { bytesPerRow: K * 4 }, [K / 4, rows]);
    return t;
  };
  const buffer = (data: Float32Array<ArrayBuffer>) => {
    const b = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  // A is already K-major ([M, K] row-major); Bᵀ is B's columns as rows.
  const operands: [GPUBindingResource, GPUBindingResource] = storage
    ? [{ buffer: buffer(A) }, { buffer: buffer(BT) }]
    : [texture(A, M).createView(), texture(BT, N).createView()];
  const out = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const readBack = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const rows: string[][] = [];
  for (const [tm, tn] of tiles) {
    if (M % tm || N % (8 * tn)) {
      console.error(`${tm}x${tn}: ${size} is not a multiple of the tile; skipped`);
      continue;
    }
    const t0 = performance.now();
    const module = device.createShaderModule({ code: dotMatmulSource(tm, tn, K, N, kstep, storage) });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: operands[0] }, { binding: 1, resource: operands[1] }, {
        binding: 2,
        resource: { buffer: out },
      }],
    });
    const run = (reps: number) => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(N / (8 * tn), M / tm);
      pass.end();
      device.queue.submit([enc.finish()]);
      return device.queue.onSubmittedWorkDone();
    };
    await run(1);
    const compileMs = performance.now() - t0;
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(out, 0, readBack, 0, M * N * 4);
    device.queue.submit([enc.finish()]);
    await readBack.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(readBack.getMappedRange().slice(0));
    readBack.unmap();
    let maxErr = 0;
    for (let s = 0; s < 256; s++) {
      const m = (s * 131) % M, n = (s * 977) % N;
      let want = 0;
      for (let k = 0; k < K; k++) want += A[m * K + k] * B[k * N + n];
      maxErr = Math.max(maxErr, Math.abs(got[m * N + n] - want));
    }
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await run(4);
      times.push((performance.now() - t) / 4);
    }
    const ms = times.sort((a, b) => a - b)[2];
    const gflops = (2 * M * N * K) / ms / 1e6;
    rows.push([`${tm}x${tn}`, (compileMs / 1000).toFixed(1), gflops.toFixed(1), maxErr.toExponential(1)]);
    console.error(`${tm}x${tn}: ${gflops.toFixed(1)} GFLOP/s, compile ${(compileMs / 1000).toFixed(1)} s`);
  }
  console.log(table(["tile", "compile+first run (s)", "GFLOP/s", "max |error|"], rows));
  device.destroy(); // the operands with it
}
