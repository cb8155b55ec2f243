/**
 * Data movement kernels: constant padding, concatenation, gather (embedding
 * lookup) and its adjoint scatterAdd. Gather and scatterAdd record the first
 * out-of-range index (position and value) in an engine check slot, reported at
 * the next read-back, from within their own dispatch: one invocation walks the
 * indices in order (a separate pass only for gathers of over 65,536 indices).
 * @module
 */
import type { GpuBuffer, KernelHost, RawBinding } from "./engine.ts";
import { contiguous, declare, entry, wgslType, wordOf } from "./wgsl.ts";

const WG = 256;

/** Pads each axis of x (shape `shape`) with `before[k]`/`after[k]` elements equal to `value`. */
export function pad(
  engine: KernelHost,
  x: GpuBuffer,
  shape: readonly number[],
  before: readonly number[],
  after: readonly number[],
  value: number,
): GpuBuffer {
  const outShape = shape.map((d, k) => d + before[k] + after[k]);
  const n = outShape.reduce((a, b) => a * b, 1);
  const out = engine.alloc(x.dtype, n);
  if (n === 0) return out;
  const rank = shape.length;
  const t = wgslType(x.dtype);
  const inStrides = contiguous(shape);
  // Params: n, value, then per axis k: out dim, before, in dim, in stride.
  const params = [n, wordOf(x.dtype, value)];
  for (let k = 0; k < rank; k++) params.push(outShape[k], before[k], shape[k], inStrides[k]);
  const { src: decl, kinds } = declare([["out", t, "w"], ["x", t, "r"]]);
  const axes: string[] = [];
  for (let k = rank - 1; k >= 0; k--) {
    const p = 2 + 4 * k;
    axes.push(k > 0 ? `  { let d = P[${p}]; let c = r % d; r = r / d;` : "  { let c = r;");
    axes.push(
      `    inside = inside && c >= P[${p + 1}] && c - P[${p + 1}] < P[${p + 2}]; src += (c - P[${p + 1}]) * P[${
        p + 3
      }]; }`,
    );
  }
  const src = `${decl}
${entry(WG)}
  if (i >= P[0]) { return; }
  var r = i; var src = 0u; var inside = true;
${axes.join("\n")}
  if (inside) { out[i] = x[src]; } else { out[i] = bitcast<${t}>(P[1]); }
}`;
  engine.run(src, kinds, [out, x], params, engine.grid(n, WG));
  return out;
}

/**
 * Concatenates inputs viewed as [outer, widths[k]] along the second axis: one copy dispatch per group of as
 * many inputs as a kernel binds (a chunked LM head's 16 gradient pieces are two dispatches, not sixteen).
 */
export function concat(
  engine: KernelHost,
  xs: readonly GpuBuffer[],
  outer: number,
  widths: readonly number[],
): GpuBuffer {
  const total = widths.reduce((a, b) => a + b, 0);
  const out = engine.alloc(xs[0].dtype, outer * total);
  const t = wgslType(xs[0].dtype);
  const per = Math.max(1, engine.limits.maxStorageBuffersPerShaderStage - 2); // the output and params bind too
  const pieces = xs.map((x, k) => ({ x, w: widths[k], col: widths.slice(0, k).reduce((a, b) => a + b, 0) }))
    .filter((p) => p.w > 0 && outer > 0);
  for (let g = 0; g < pieces.length; g += per) {
    const group = pieces.slice(g, g + per);
    // Params: n, the group's width, the total width, its first column, then each piece's end column in it.
    const ends: number[] = [];
    for (const p of group) ends.push((ends[ends.length - 1] ?? 0) + p.w);
    const gw = ends[ends.length - 1], n = outer * gw;
    const { src: decl, kinds } = declare([["out", t, "w"], ...group.map((_, k) => [`x${k}`, t, "r"] as const)]);
    const copies = group.map((_, k) => {
      const start = k ? `P[${3 + k}]` : "0u", end = `P[${4 + k}]`;
      return `if (c < ${end}) { out[dst] = x${k}[o * (${end} - ${start}) + c - ${start}]; return; }`;
    });
    const src = `${decl}
${entry(WG)}
  if (i >= P[0]) { return; }
  let o = i / P[1];
  let c = i - o * P[1];
  let dst = o * P[2] + P[3] + c;
  ${copies.join("\n  ")}
}`;
    engine.run(src, kinds, [out, ...group.map((p) => p.x)], [n, gw, total, group[0].col, ...ends], engine.grid(n, WG));
  }
  return out;
}

/** Writes the index at the recorded position into word 1 of a check slot (one invocation). */
function finishCheck(engine: KernelHost, idx: GpuBuffer, check: RawBinding): void {
  const { src: decl, kinds } = declare([["chk", "atomic<u32>", "w"], ["idx", "i32", "r"]]);
  const src = `${decl}
@compute @workgroup_size(1)
fn main() {
  let w = atomicLoad(&chk[0]);
  if (w != 0u) { atomicStore(&chk[1], bitcast<u32>(idx[0xffffffffu - w])); }
}`;
  engine.run(src, kinds, [check, idx], [0], [1]);
}

/**
 * Up to this many indices, invocation 0 of the kernel using them scans them in order and records the first bad
 * one (position and value) itself; more, and bad invocations race to record the first position (atomicMax) and a
 * one-invocation kernel after it reads that position's value.
 */
const SCAN_INDICES = 1 << 16;

/** WGSL recording, from invocation 0, the first of P[count] indices outside [0, P[limit]) (see SCAN_INDICES). */
function scanIndices(count: number, limit: number): string {
  return `if (i == 0u && atomicLoad(&chk[0]) == 0u) {
    for (var k = 0u; k < P[${count}]; k++) {
      let r = idx[k];
      if (r < 0 || u32(r) >= P[${limit}]) {
        atomicStore(&chk[0], 0xffffffffu - k); atomicStore(&chk[1], bitcast<u32>(r)); break;
      }
    }
  }`;
}

/** out[i, :] = table[idx[i], :] for a table viewed as [rows, rowSize]; bad indices give zeros (and an error at the next read). */
export function gather(engine: KernelHost, table: GpuBuffer, rows: number, rowSize: number, idx: GpuBuffer): GpuBuffer {
  const n = idx.size * rowSize;
  const out = engine.alloc(table.dtype, n);
  if (idx.size === 0) return out;
  const check = engine.indexCheck("take", rows);
  const scan = idx.size <= SCAN_INDICES;
  const t = wgslType(table.dtype);
  const { src: decl, kinds } = declare([["out", t, "w"], ["table", t, "r"], ["idx", "i32", "r"], [
    "chk",
    "atomic<u32>",
    "w",
  ]]);
  const src = `${decl}
${entry(WG)}
  ${scan ? scanIndices(3, 2) : ""}
  if (i >= P[0]) { return; }
  let row = i / P[1];
  let col = i - row * P[1];
  let r = idx[row];
  if (r < 0 || u32(r) >= P[2]) {
    out[i] = ${t}(0);
    ${scan ? "" : "if (col == 0u) { atomicMax(&chk[0], 0xffffffffu - row); }"}
    return;
  }
  out[i] = table[u32(r) * P[1] + col];
}`;
  if (n > 0) engine.run(src, kinds, [out, table, idx, check], [n, rowSize, rows, idx.size], engine.grid(n, WG));
  else {
    // Nothing to copy, but the indices are still checked.
    const chkSrc = `${declare([["idx", "i32", "r"], ["chk", "atomic<u32>", "w"]]).src}
${entry(WG)}
  ${scan ? scanIndices(0, 1) : ""}
  if (${scan ? "true" : "i >= P[0]"}) { return; }
  let r = idx[i];
  if (r < 0 || u32(r) >= P[1]) { atomicMax(&chk[0], 0xffffffffu - i); }
}`;
    engine.run(chkSrc, "rw", [idx, check], [idx.size, rows], engine.grid(scan ? 1 : idx.size, WG));
  }
  if (!scan) finishCheck(engine, idx, check);
  return out;
}

/**
 * out = zeros[rows, rowSize]; out[idx[i], :] += upd[i, :]. Without float
 * atomics: one invocation per output column walks all indices in order, so
 * repeated indices accumulate without races and in the CPU's order.
 */
export function scatterAdd(
  engine: KernelHost,
  idx: GpuBuffer,
  upd: GpuBuffer,
  rows: number,
  rowSize: number,
): GpuBuffer {
  const fillSrc = `${declare([["out", "f32", "w"]]).src}
${entry(WG)}
  if (i < P[0]) { out[i] = 0.0; }
}`;
  const n = rows * rowSize;
  const out = engine.alloc("float32", n);
  if (n > 0) engine.run(fillSrc, "w", [out], [n], engine.grid(n, WG));
  if (idx.size === 0) return out;
  const check = engine.indexCheck("scatterAdd", rows);
  const { src: decl, kinds } = declare([["out", "f32", "w"], ["idx", "i32", "r"], ["upd", "f32", "r"], [
    "chk",
    "atomic<u32>",
    "w",
  ]]);
  const src = `${decl}
${entry(64)}
  let cols = max(P[1], 1u);
  if (i >= cols) { return; }
  for (var k = 0u; k < P[0]; k++) {
    let r = idx[k];
    if (r < 0 || u32(r) >= P[2]) {
      // Invocation 0 walks the indices in order: the first bad one it meets is the first.
      if (i == 0u && atomicLoad(&chk[0]) == 0u) {
        atomicStore(&chk[0], 0xffffffffu - k); atomicStore(&chk[1], bitcast<u32>(r));
      }
      continue;
    }
    if (i < P[1]) { out[u32(r) * P[1] + i] += upd[k * P[1] + i]; }
  }
}`;
  engine.run(src, kinds, [out, idx, upd, check], [idx.size, rowSize, rows], engine.grid(Math.max(1, rowSize), 64));
  return out;
}
