/**
 * LoRA, VeRA and Tied-LoRA TL1–TL6 as plain compositions of `adapt`, `tie`
 * and `freeze` (see docs/TIED_LORA.md in the repository, Tables 1–2). The default
 * site is each layer's fused Q|K|V map, where Tied-LoRA's update
 * z = Wx + Λv B Λu A x is added (scale 1, no alpha/r).
 *
 * | preset | A               | B               | u             | v             |
 * |--------|-----------------|-----------------|---------------|---------------|
 * | lora   | train, per layer, Kaiming-uniform | train, per layer, 0 | —  | —  |
 * | vera   | frozen, tied, Kaiming-uniform | frozen, tied, Kaiming-uniform | train, 1 | train, 0 |
 * | tl1    | train, tied, 0  | frozen, tied, N(0,1) | —        | —             |
 * | tl2    | train, tied, N(0,1) | frozen, tied, N(0,1) | train, 1 | train, 0 |
 * | tl3    | frozen, tied, N(0,1) | train, tied, 0 | —          | —             |
 * | tl4    | frozen, tied, N(0,1) | train, tied, 0 | train, 1   | —             |
 * | tl5    | train, tied, N(0,1) | train, tied, 0 | —          | —             |
 * | tl6    | train, tied, N(0,1) | train, tied, N(0,1) | train, 1 | train, 0   |
 *
 * "—" is the paper's frozen vector of ones, which is the same as no vector:
 * presets leave it out. Every initializer and the sites can be overridden.
 * @module
 */
import type { Key } from "../../core/random.ts";
import { constant, type Initializer, kaimingUniform, normal, ones, zeros } from "../initializers.ts";
import { compose, type Part, type Plan, type Transform, withMeta } from "../plan.ts";
import { adapt, freeze, type PathPattern, tie } from "../transforms.ts";

/** Options every preset takes. */
export interface PresetOptions {
  /** Rank r. */
  rank: number;
  /** Sites (default `layers.*.attn.qkv`, the fused Q|K|V map of every layer). */
  where?: PathPattern;
  /** Initializer overrides per part. */
  init?: Partial<Record<Part, Initializer>>;
  /** Default PRNG key for `plan.init` when none is passed. */
  key?: Key;
}

/** What distinguishes one preset from another. */
interface Recipe {
  parts: Part[];
  tied: Part[];
  frozen: Part[];
  init: Partial<Record<Part, Initializer>>;
}

const N01 = normal(1);

/** The recipes of Table 1 (and the initializations of the reference code). */
export const RECIPES: Readonly<Record<string, Recipe>> = {
  lora: { parts: ["A", "B"], tied: [], frozen: [], init: { A: kaimingUniform(), B: zeros } },
  vera: {
    parts: ["A", "B", "u", "v"],
    tied: ["A", "B"],
    frozen: ["A", "B"],
    init: { A: kaimingUniform(), B: kaimingUniform(), u: ones, v: zeros },
  },
  tl1: { parts: ["A", "B"], tied: ["A", "B"], frozen: ["B"], init: { A: zeros, B: N01 } },
  tl2: { parts: ["A", "B", "u", "v"], tied: ["A", "B"], frozen: ["B"], init: { A: N01, B: N01, u: ones, v: zeros } },
  tl3: { parts: ["A", "B"], tied: ["A", "B"], frozen: ["A"], init: { A: N01, B: zeros } },
  tl4: { parts: ["A", "B", "u"], tied: ["A", "B"], frozen: ["A"], init: { A: N01, B: zeros, u: ones } },
  tl5: { parts: ["A", "B"], tied: ["A", "B"], frozen: [], init: { A: N01, B: zeros } },
  tl6: { parts: ["A", "B", "u", "v"], tied: ["A", "B"], frozen: [], init: { A: N01, B: N01, u: ones, v: zeros } },
};

/** Names of the presets. */
export const PRESET_NAMES = Object.keys(RECIPES) as readonly string[];

/** The leaves `parts` at the sites matched by `where`. */
function partsAt(where: PathPattern, parts: Part[]): PathPattern {
  if (typeof where === "string") return `${where}.{${parts.join(",")}}`;
  return (p: string) => {
    const i = p.lastIndexOf(".");
    return parts.includes(p.slice(i + 1) as Part) && where(p.slice(0, i));
  };
}

function fromRecipe(name: string, opts: PresetOptions): Plan {
  const r = RECIPES[name];
  const where = opts.where ?? "layers.*.attn.qkv";
  const steps: Transform[] = [adapt({ where, rank: opts.rank, parts: r.parts, init: { ...r.init, ...opts.init } })];
  if (r.tied.length) steps.push(tie({ where: partsAt(where, r.tied) }));
  if (r.frozen.length) steps.push(freeze({ where: partsAt(where, r.frozen) }));
  return withMeta(compose(...steps), {
    preset: name,
    rank: opts.rank,
    where: typeof where === "string" ? where : "<predicate>",
    init: Object.fromEntries(
      Object.entries({ ...r.init, ...opts.init }).map(([k, v]) => [k, { name: v!.name, args: v!.args }]),
    ),
    ...(opts.key ? { key: [opts.key.k0, opts.key.k1] } : {}),
  });
}

/** LoRA: per-layer trainable A (Kaiming-uniform) and B (zeros). 4Ldr parameters at the fused site. */
export const lora = (opts: PresetOptions): Plan => fromRecipe("lora", opts);
/** VeRA: frozen tied random A, B; trainable per-layer u (ones) and v (zeros). L(r + m) parameters. */
export const vera = (opts: PresetOptions & { uInit?: number }): Plan =>
  fromRecipe("vera", {
    ...opts,
    init: { ...(opts.uInit !== undefined ? { u: constant(opts.uInit) } : {}), ...opts.init },
  });
/** TL1: tied trainable A (zeros), tied frozen B (N(0,1)). dr parameters. */
export const tl1 = (opts: PresetOptions): Plan => fromRecipe("tl1", opts);
/** TL2: tied trainable A, tied frozen B, per-layer trainable u, v. dr + L(r + m). */
export const tl2 = (opts: PresetOptions): Plan => fromRecipe("tl2", opts);
/** TL3: tied frozen A, tied trainable B (zeros). mr. */
export const tl3 = (opts: PresetOptions): Plan => fromRecipe("tl3", opts);
/** TL4: tied frozen A, tied trainable B, per-layer trainable u. mr + Lr. */
export const tl4 = (opts: PresetOptions): Plan => fromRecipe("tl4", opts);
/** TL5: tied trainable A and B. (d + m)r. */
export const tl5 = (opts: PresetOptions): Plan => fromRecipe("tl5", opts);
/** TL6: tied trainable A and B, per-layer trainable u and v. (d + m)r + L(r + m). */
export const tl6 = (opts: PresetOptions): Plan => fromRecipe("tl6", opts);

const PRESETS: Record<string, (opts: PresetOptions) => Plan> = { lora, vera, tl1, tl2, tl3, tl4, tl5, tl6 };

/** A preset by name ("lora", "vera", "tl1" … "tl6"). */
export function preset(name: string, opts: PresetOptions): Plan {
  const key = String(name).toLowerCase();
  // Own keys only: "constructor" or "toString" must be unknown methods, not Object's members.
  const make = Object.hasOwn(PRESETS, key) ? PRESETS[key] : undefined;
  if (!make) throw new Error(`preset: unknown method "${name}" (known: ${PRESET_NAMES.join(", ")})`);
  return make(opts);
}
