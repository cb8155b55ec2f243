/**
 * The columns program, shaped for CPU adapters that vectorise across
 * invocations (llvmpipe: 8 consecutive invocations are the 8 lanes of one
 * AVX2 register). Neighbouring lanes own neighbouring output columns, and all
 * lanes of a workgroup share the same R rows, so in the k loop every
 * B[k, n] load is one contiguous vector load across lanes and every A[m, k]
 * load is uniform (a broadcast). Each invocation keeps only R×C accumulators
 * (columns n = base + lx + j·WG), few enough to stay in the 16 ymm registers.
 * @module
 */

/** Shape of a columns program. */
export interface ColsConfig {
  /** Rows per workgroup (every invocation of the workgroup computes all of them). */
  rows: number;
  /** Columns per invocation, spaced by the workgroup width. */
  cols: number;
  /** Workgroup width (invocations along N). */
  wg: number;
  /** k-loop unroll. */
  unroll: number;
  transA: boolean;
  transB: boolean;
}

/** WGSL for a columns program. `prologue` declares M, K, N, aOff, bOff, cOff, k0, k1 from params and `g`. */
export function colsSource(cfg: ColsConfig, decl: string, prologue: string): string {
  const { rows: R, cols: C, wg: W, unroll: U, transA, transB } = cfg;
  const L: string[] = [];
  for (let r = 0; r < R; r++) {
    L.push(
      transA ? `  let mr${r} = aOff + min(m0 + ${r}u, M - 1u);` : `  let mr${r} = aOff + min(m0 + ${r}u, M - 1u) * K;`,
    );
  }
  for (let c = 0; c < C; c++) {
    L.push(
      transB
        ? `  let nc${c} = bOff + min(n0 + ${c * W}u, N - 1u) * K;`
        : `  let nc${c} = bOff + min(n0 + ${c * W}u, N - 1u);`,
    );
  }
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) L.push(`  var c${r}_${c} = 0.0;`);
  const step = (k: string, u: number, ind: string) => {
    const kk = u === 0 ? k : `(${k} + ${u}u)`;
    const out: string[] = [];
    for (let c = 0; c < C; c++) {
      out.push(`${ind}let b${c}_${u} = B[${transB ? `nc${c} + ${kk}` : `${kk} * N + nc${c}`}];`);
    }
    for (let r = 0; r < R; r++) {
      out.push(`${ind}{ let a = A[${transA ? `${kk} * M + mr${r}` : `mr${r} + ${kk}`}];`);
      out.push(
        `${ind}  ` + Array.from({ length: C }, (_, c) => `c${r}_${c} = fma(a, b${c}_${u}, c${r}_${c});`).join(" ") +
          " }",
      );
    }
    return out;
  };
  L.push(`  var k = k0;`);
  if (U > 1) {
    L.push(`  for (; k + ${U - 1}u < k1; k += ${U}u) {`);
    for (let u = 0; u < U; u++) L.push(...step("k", u, "    "));
    L.push("  }");
  }
  L.push(`  for (; k < k1; k++) {`);
  L.push(...step("k", 0, "    "));
  L.push("  }");
  for (let r = 0; r < R; r++) {
    L.push(`  if (m0 + ${r}u < M) {`);
    L.push(`    let row = cOff + (m0 + ${r}u) * N;`);
    for (let c = 0; c < C; c++) L.push(`    if (n0 + ${c * W}u < N) { C[row + n0 + ${c * W}u] = c${r}_${c}; }`);
    L.push("  }");
  }
  return `${decl}
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
${prologue}
  let m0 = g.y * ${R}u;
  let n0 = g.x * ${W * C}u + l.x;
${L.join("\n")}
}`;
}
