/**
 * threefry2x32 (20 rounds) in WGSL with u32 arithmetic, the exact mapping of
 * core/threefry.ts: element i uses threefry2x32(key, [0, i]). Uniform floats
 * are bit-identical to the CPU's (23 random mantissa bits, an exact product);
 * normals use the same Box–Muller formula, up to f32 log/cos rounding.
 * @module
 */
import type { GpuBuffer, KernelHost } from "./engine.ts";
import { declare, entry } from "./wgsl.ts";

const ROTATIONS = [13, 15, 26, 6, 17, 29, 16, 24];
const WG = 256;

/** The unrolled threefry2x32 rounds as WGSL statements over x0, x1 and ks0..ks2. */
function rounds(): string {
  const out: string[] = [];
  for (let block = 0; block < 5; block++) {
    for (let r = 0; r < 4; r++) {
      const rot = ROTATIONS[(block % 2) * 4 + r];
      out.push(`  x0 = x0 + x1; x1 = ((x1 << ${rot}u) | (x1 >> ${32 - rot}u)) ^ x0;`);
    }
    const s = block + 1;
    out.push(`  x0 = x0 + ks${s % 3}; x1 = x1 + ks${(s + 1) % 3} + ${s}u;`);
  }
  return out.join("\n");
}

/** float32 random numbers: element i from threefry2x32(key, [0, i]). */
export function random(
  engine: KernelHost,
  kind: "uniform" | "normal",
  key: readonly [number, number],
  size: number,
): GpuBuffer {
  const out = engine.alloc("float32", size);
  if (size === 0) return out;
  const { src: decl, kinds } = declare([["out", "f32", "w"]]);
  // cos(2πu) with u = k·2⁻²³ reduced exactly to [0, 1/4] first, where the f32 cos is most accurate.
  const value = kind === "uniform" ? "uni(x0)" : `normal(x0, x1)`;
  const src = `${decl}
fn uni(bits: u32) -> f32 { return f32(bits >> 9u) * 1.1920928955078125e-7; }
fn cos2pi(u: f32) -> f32 {
  var v = abs(u - round(u));
  var s = 1.0;
  if (v > 0.25) { v = 0.5 - v; s = -1.0; }
  return s * cos(6.283185307179586 * v);
}
fn normal(a: u32, b: u32) -> f32 {
  let u1 = 1.0 - uni(a);
  return sqrt(-2.0 * log(u1)) * cos2pi(uni(b));
}
${entry(WG)}
  if (i >= P[0]) { return; }
  let ks0 = P[1]; let ks1 = P[2]; let ks2 = 0x1bd11bdau ^ ks0 ^ ks1;
  var x0 = 0u + ks0;
  var x1 = i + ks1;
${rounds()}
  out[i] = ${value};
}`;
  engine.run(src, kinds, [out], [size, key[0] >>> 0, key[1] >>> 0], engine.grid(size, WG));
  return out;
}
