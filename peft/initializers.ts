/**
 * Initializers for adapter leaves. Each is a named, serialisable recipe
 * `{name, args, fn(key, shape)}` drawing from an explicit PRNG key, so a plan
 * can be written to adapter.json and rebuilt exactly.
 * @module
 */
import type { Key } from "../core/random.ts";
import { kaimingUniform as kaimingUniformDraw, normal as normalDraw } from "../core/random.ts";
import { full } from "../core/ops/creation.ts";
import type { Shape } from "../core/shape.ts";
import type { Tensor } from "../core/tensor.ts";

/** A named initializer: `fn(key, shape)` returns the initial value. */
export interface Initializer {
  /** The name written to adapter.json (`zeros`, `normal`, …). */
  readonly name: string;
  /** The arguments written to adapter.json (e.g. `{std: 0.02}`). */
  readonly args: Readonly<Record<string, number>>;
  /** Draws the initial value of a leaf of `shape` from `key`. */
  readonly fn: (key: Key, shape: Shape) => Tensor;
}

/** All zeros. */
export const zeros: Initializer = { name: "zeros", args: {}, fn: (_k, s) => full(s, 0) };

/** All ones. */
export const ones: Initializer = { name: "ones", args: {}, fn: (_k, s) => full(s, 1) };

/** Every element equal to `c`. */
export function constant(c: number): Initializer {
  return { name: "constant", args: { value: c }, fn: (_k, s) => full(s, c) };
}

/** N(0, std²) (default std 1, the Tied-LoRA reference code's choice for tied A and B). */
export function normal(std = 1): Initializer {
  return { name: "normal", args: { std }, fn: (k, s) => normalDraw(k, s, { std }) };
}

/**
 * Kaiming-uniform as torch.nn.Linear's default: U(±1/√fanIn) with fanIn the
 * last axis (LoRA's A). `a` is PyTorch's negative-slope parameter (default √5).
 */
export function kaimingUniform(a: number = Math.sqrt(5)): Initializer {
  return { name: "kaimingUniform", args: { a }, fn: (k, s) => kaimingUniformDraw(k, s, { a }) };
}

/** Xavier/Glorot normal: N(0, gain²·2/(fanIn + fanOut)) for a [fanOut, fanIn] matrix (vectors: fanIn = fanOut = n). */
export function xavierNormal(gain = 1): Initializer {
  return {
    name: "xavierNormal",
    args: { gain },
    fn: (k, s) => {
      const fanIn = s[s.length - 1] ?? 1, fanOut = s.length > 1 ? s[s.length - 2] : fanIn;
      return normalDraw(k, s, { std: gain * Math.sqrt(2 / (fanIn + fanOut)) });
    },
  };
}

const FACTORIES: Record<string, (args: Record<string, number>) => Initializer> = {
  zeros: () => zeros,
  ones: () => ones,
  constant: (a) => constant(a.value),
  normal: (a) => normal(a.std),
  kaimingUniform: (a) => kaimingUniform(a.a),
  xavierNormal: (a) => xavierNormal(a.gain),
};

/** Rebuilds an initializer from its `{name, args}` (as stored in adapter.json). */
export function initializerFrom(desc: { name: string; args?: Record<string, number> }): Initializer {
  const make = Object.hasOwn(FACTORIES, desc.name) ? FACTORIES[desc.name] : undefined;
  if (!make) {
    throw new Error(
      `initializer: unknown initializer ${JSON.stringify(desc.name)} (known: ${Object.keys(FACTORIES).join(", ")})`,
    );
  }
  const args = desc.args ?? {};
  for (const [k, v] of Object.entries(args)) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`initializer: ${desc.name} argument "${k}" must be a finite number, got ${JSON.stringify(v)}`);
    }
  }
  const init = make(args);
  // A missing argument would draw NaN everywhere (e.g. normal with std undefined → NaN); refuse it by name.
  for (const [k, v] of Object.entries(init.args)) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`initializer: ${desc.name} needs a finite "${k}" argument, got ${JSON.stringify(v)}`);
    }
  }
  return init;
}
