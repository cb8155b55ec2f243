/**
 * Type-level tests of the public API: `deno task check` compiles this file,
 * and every assertion below is a compile error when an inferred type is
 * wrong (or `any`). Nothing here runs; no values are created.
 *
 * Covered: `grad` / `valueAndGrad` (one argument, an `argnums` tuple,
 * `hasAux`), `plan.init` → `plan.build` typed by the base model, optimizer
 * states (`adamw`'s is Optax's `ScaleByAdamState`, `chain`'s the tuple of its
 * parts'), and the path adapt → build → forward → valueAndGrad → adamw →
 * trainStep with no `any` on it.
 * @module
 */
import { grad, llama, mul, nn, optim, peft, type Tensor, type Tree, valueAndGrad } from "../../mod.ts";
import { type LmBatch, planLoss, type TrainState, trainStep } from "../../train/mod.ts";

/** True when A and B are the same type (not merely assignable), as in type-testing libraries. */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
/** True when T is `any`. */
type IsAny<T> = 0 extends 1 & T ? true : false;
/** Compiles only for `true`. */
type Expect<T extends true> = T;
/** Compiles only for `false`. */
type ExpectFalse<T extends false> = T;

type Params = { w: Tensor; b: Tensor; layers: { scale: Tensor }[] };

// Declared, never defined: only their types are used.
declare const params: Params;
declare const base: llama.LlamaParams;
declare const config: llama.LlamaConfig;
declare const tokens: Tensor;
declare const batch: LmBatch;

export function gradTypes(): void {
  // One argument: the gradient has the argument's type.
  const loss = (p: Params, x: Tensor, scale: number) => nn.logsumexp(mul(mul(p.w, x), scale));
  const g = grad(loss)(params, tokens, 2);
  type _g = Expect<Equals<typeof g, Params>>;
  type _gNotAny = ExpectFalse<IsAny<typeof g>>;

  // An argnums tuple: a tuple of gradients, in that order.
  const g02 = grad((a: Params, b: number, c: Tensor) => nn.logsumexp(mul(mul(a.b, c), b)), { argnums: [0, 2] })(
    params,
    1,
    tokens,
  );
  type _g02 = Expect<Equals<typeof g02, [Params, Tensor]>>;

  // argnums 1 alone.
  const g1 = grad((a: Tensor, b: Params) => nn.logsumexp(mul(a, b.w)), { argnums: 1 })(tokens, params);
  type _g1 = Expect<Equals<typeof g1, Params>>;

  // hasAux: [gradient, aux]; valueAndGrad: [value, gradient(, aux)].
  const ga = grad((p: Params) => [nn.logsumexp(p.w), { note: "aux" }] as const, { hasAux: true })(params);
  type _ga = Expect<Equals<typeof ga, [Params, { readonly note: "aux" }]>>;
  const vg = valueAndGrad(loss)(params, tokens, 1);
  type _vg = Expect<Equals<typeof vg, [Tensor, Params]>>;

  // Unannotated parameters are tensors.
  const gt = grad((x) => nn.logsumexp(x))(tokens);
  type _gt = Expect<Equals<typeof gt, Tensor>>;

  // @ts-expect-error the gradient of a Params argument is not a Tensor
  const _wrong: Tensor = grad(loss)(params, tokens, 2);
}

export function planTypes(): void {
  const plan = peft.tl6({ rank: 4 });
  const { trainable, frozen } = plan.init(base);
  type _t = Expect<Equals<typeof trainable, peft.PlanTree<llama.LlamaParams>>>;
  type _base = Expect<Equals<typeof trainable.base, llama.LlamaParams>>;
  const model = plan.build(trainable, frozen);
  type _model = Expect<Equals<typeof model, llama.LlamaParams>>;
  type _modelNotAny = ExpectFalse<IsAny<typeof model>>;
  // The adapted model goes straight into the forward.
  const logits = llama.forward(model, tokens, config);
  type _logits = Expect<Equals<typeof logits, Tensor>>;
}

export function optimizerTypes(): void {
  const adam = optim.adamw(1e-3);
  const s = adam.init(params);
  type _s = Expect<Equals<typeof s, optim.AdamWState>>;
  type _fields = Expect<Equals<optim.AdamWState, { count: Tensor; mu: Tree; nu: Tree }>>;
  // A schedule takes the step as a tensor (a jitted step traces once); one written for numbers does not compile.
  // @ts-expect-error a schedule of numbers
  optim.adamw((step: number) => 1e-3 * Math.min(1, step / 100));
  const warm = optim.schedules.cosineWithWarmup(1e-3, 10, 100);
  optim.sgd(warm);
  const _logged: (step: number) => number = warm; // the built-in schedules also take numbers, for logs
  const chained = optim.chain(optim.clipByGlobalNorm(1), optim.adamw(optim.schedules.constant(1e-3)));
  const cs = chained.init(params);
  type _cs = Expect<Equals<typeof cs, [optim.ClipByGlobalNormState, optim.AdamWState]>>;
  // update keeps the gradient tree's type and the state's.
  const { updates, state } = adam.update(params, s, params);
  type _u = Expect<Equals<typeof updates, Params>>;
  type _st = Expect<Equals<typeof state, optim.AdamWState>>;
  // @ts-expect-error an sgd state is not an adamw state
  adam.update(params, optim.sgd(0.1).init(params), params);
}

export function trainPathTypes(): void {
  // adapt → build → forward → valueAndGrad → adamw → trainStep, typed end to end.
  const plan = peft.compose(peft.adapt({ where: "layers.*.attn.qkv", rank: 4 }));
  const { trainable, frozen } = plan.init(base);
  const lossFn = planLoss(plan, config);
  const [value, g] = valueAndGrad(lossFn)(trainable, frozen, batch);
  type _value = Expect<Equals<typeof value, Tensor>>;
  type _g = Expect<Equals<typeof g, peft.PlanTree<llama.LlamaParams>>>;
  const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adamw(1e-3));
  const step = trainStep(lossFn, opt);
  const out = step({ trainable, opt: opt.init(trainable) }, frozen, batch);
  type _state = Expect<
    Equals<
      typeof out.state,
      TrainState<peft.PlanTree<llama.LlamaParams>, [optim.ClipByGlobalNormState, optim.AdamWState]>
    >
  >;
  type _out = Expect<Equals<keyof typeof out, "state" | "loss">>; // no `grads: null`
  type _notAny = ExpectFalse<IsAny<typeof out.state.trainable>>;
}
