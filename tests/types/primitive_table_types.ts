/**
 * Type-level tests of the primitive table: `deno task check` compiles this
 * file. A table of vjp rules that lacks a primitive, or whose rule for a
 * primitive reads another primitive's parameters, is a compile error; so is
 * recording a primitive with the wrong parameters. Nothing here runs.
 * @module
 */
import type { Primitive, PrimitiveParams, primitives, VjpRule, VjpRules } from "../../core/primitives.ts";
import type { record } from "../../core/tape.ts";
import { vjpRules } from "../../autodiff/vjp_rules.ts";

/** True when A and B are the same type (not merely assignable). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
/** Compiles only for `true`. */
type Expect<T extends true> = T;

// The real table covers exactly the declared primitives, and so does the shape/dtype table.
export type RulesCoverAll = Expect<Equals<keyof typeof vjpRules, Primitive>>;
export type ShapesCoverAll = Expect<Equals<keyof typeof primitives, Primitive>>;

// A table missing one primitive (here: matmul) does not compile.
const { matmul: _dropped, ...allButMatmul } = vjpRules;
// @ts-expect-error Property 'matmul' is missing: every primitive needs a vjp rule.
export const missingOne: VjpRules = allButMatmul;

// A rule reads its own primitive's parameters: permute's rule cannot stand for slice's.
// @ts-expect-error permute's params have no begin/size.
export const wrongParams: VjpRule<"slice"> = vjpRules.permute;

// record() is typed by the primitive: its parameters must match the declaration.
declare const rec: typeof record;
declare const x: Parameters<typeof record>[2][number];
export const recordOk = () => rec("permute", { axes: [1, 0] }, [x], x);
// @ts-expect-error reshape takes { shape }, not { axes }.
export const recordBad = () => rec("reshape", { axes: [1, 0] }, [x], x);
export type ReduceParamsShape = Expect<Equals<PrimitiveParams["sum"]["axes"], readonly number[]>>;
