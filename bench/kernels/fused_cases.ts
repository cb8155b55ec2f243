/**
 * The elementwise chains of the 15M TL6 step that the fused-kernel benches time (bench/kernels/cpu_fused.ts,
 * bench/kernels/cpu_fused_codegen.ts): one list, so both ladders measure the same work.
 * @module
 */
import { add, dispose, mean, mul, nn, random, rsqrt, square, sum, type Tensor, valueAndGrad } from "../../mod.ts";
import { adamw, applyUpdates } from "../../optim/mod.ts";

/** One chain: its name, the function jit traces, and its arguments. */
export type FusedCase = [name: string, fn: (...a: never[]) => unknown, args: unknown[]];

/** The chains and their inputs (created on the current backend); `release` frees the inputs. */
export function fusedCases(): { cases: FusedCase[]; release: () => void } {
  const T = 1024, D = 288, H = 768, k = random.split(random.key(0), 6);
  const x = random.normal(k[0], [T, D]), w = random.normal(k[1], [D]), dy = random.normal(k[2], [T, D]);
  const a = random.normal(k[3], [T, H]), b = random.normal(k[4], [T, H]);
  const scores = random.normal(k[5], [24, 256, 256]);
  const rms = (x: Tensor, w: Tensor) => mul(mul(x, rsqrt(add(mean(square(x), -1, { keepdims: true }), 1e-5))), w);
  const opt = adamw(1e-3, { weightDecay: 0.01 });
  const params = { p: random.normal(k[0], [1 << 20]) }, grads = { p: random.normal(k[1], [1 << 20]) };
  const state = opt.init(params);
  const cases: FusedCase[] = [
    ["RMSNorm [1024, 288]", rms, [x, w]],
    ["SwiGLU silu(a)·b [1024, 768]", (a: Tensor, b: Tensor) => mul(nn.silu(a), b), [a, b]],
    ["softmax [24, 256, 256]", (s: Tensor) => nn.softmax(s, -1), [scores]],
    ["AdamW update, 2²⁰ parameters", (p: typeof params, g: typeof grads, s: typeof state) => {
      const { updates, state: next } = opt.update(g, s, p);
      return [applyUpdates(p, updates), next];
    }, [params, grads, state]],
    [
      "RMSNorm backward [1024, 288]",
      (x: Tensor, w: Tensor, dy: Tensor) =>
        valueAndGrad((x: Tensor, w: Tensor) => sum(mul(rms(x, w), dy)), { argnums: [0, 1] })(x, w),
      [x, w, dy],
    ],
  ];
  return { cases, release: () => dispose([x, w, dy, a, b, scores, params, grads, state]) };
}
