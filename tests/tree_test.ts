// Parameter trees: paths, globs, select/at/set, partition/combine.
import assert from "node:assert/strict";
import { type Tensor, tensor, tree } from "../mod.ts";

function model() {
  const t = (v: number) => tensor([v]);
  return {
    embed: t(0),
    layers: [
      { attn: { q_proj: { weight: t(1) }, k_proj: { weight: t(2) } }, norm: t(3) },
      { attn: { q_proj: { weight: t(4) }, k_proj: { weight: t(5) } }, norm: t(6) },
    ],
    lmHead: null,
  };
}

Deno.test("paths are dotted and in the same order as leaves", async () => {
  const m = model();
  assert.deepEqual(tree.paths(m), [
    "embed",
    "layers.0.attn.q_proj.weight",
    "layers.0.attn.k_proj.weight",
    "layers.0.norm",
    "layers.1.attn.q_proj.weight",
    "layers.1.attn.k_proj.weight",
    "layers.1.norm",
  ]);
  const values = await Promise.all(tree.leaves(m).map((t) => t.item()));
  assert.deepEqual(values, [0, 1, 2, 3, 4, 5, 6]);
});

Deno.test("map keeps structure and passes paths", async () => {
  const seen: string[] = [];
  const doubled = tree.map(model(), (t, p) => {
    seen.push(p);
    return tensor([(t.shape[0] ?? 0) * 2]);
  });
  assert.equal(seen.length, 7);
  assert.equal(doubled.lmHead, null);
  assert.equal(await (doubled.layers[1].norm as Tensor).item(), 2);
});

Deno.test("glob: * is one segment, ** any number, {a,b} alternatives, * inside a segment", () => {
  const m = model();
  const sel = (p: string) => tree.select(m, p).map(([path]) => path);
  assert.deepEqual(sel("layers.*.norm"), ["layers.0.norm", "layers.1.norm"]);
  assert.deepEqual(sel("**.q_proj.weight"), ["layers.0.attn.q_proj.weight", "layers.1.attn.q_proj.weight"]);
  assert.deepEqual(sel("layers.1.attn.{q,k}_proj.weight"), [
    "layers.1.attn.q_proj.weight",
    "layers.1.attn.k_proj.weight",
  ]);
  assert.deepEqual(sel("layers.{0,1}.attn.*_proj.**"), [
    "layers.0.attn.q_proj.weight",
    "layers.0.attn.k_proj.weight",
    "layers.1.attn.q_proj.weight",
    "layers.1.attn.k_proj.weight",
  ]);
  assert.deepEqual(sel("**"), tree.paths(m));
  assert.equal(tree.glob("a.**.b")("a.b"), true);
  assert.equal(tree.glob("a.*.b")("a.b"), false);
});

Deno.test("a pattern that matches nothing is an Error naming it", () => {
  assert.throws(() => tree.select(model(), "layers.*.mlp.up"), /pattern "layers\.\*\.mlp\.up" matches no leaf/);
  assert.throws(() => tree.partition(model(), "**.v_proj.weight"), /pattern "\*\*\.v_proj\.weight" matches no leaf/);
  assert.throws(() => tree.glob("a.{b"), /unbalanced braces/);
});

Deno.test("at and set address nodes by path; set is immutable", async () => {
  const m = model();
  assert.equal(await (tree.at(m, "layers.1.norm") as Tensor).item(), 6);
  const replaced = tree.set(m, "layers.1.norm", tensor([60]));
  assert.equal(await (tree.at(replaced, "layers.1.norm") as Tensor).item(), 60);
  assert.equal(await (tree.at(m, "layers.1.norm") as Tensor).item(), 6);
  assert.equal(replaced.layers[0], m.layers[0], "untouched subtrees are shared");
  assert.throws(() => tree.at(m, "layers.2.norm"), /no node at path "layers\.2\.norm"/);
  assert.throws(() => tree.set(m, "layers.0.bias", tensor([1])), /no node at path "layers\.0\.bias"/);
});

Deno.test("partition then combine restores the tree; each part has null where the other has a leaf", () => {
  const m = model();
  const [attn, rest] = tree.partition(m, "**.attn.**");
  assert.equal(tree.leaves(attn).length, 4);
  assert.equal(tree.leaves(rest).length, 3);
  assert.equal(attn.embed, null);
  assert.equal(rest.layers[0].attn.q_proj.weight, null);
  const back = tree.combine(attn, rest);
  assert.deepEqual(tree.paths(back), tree.paths(m));
  tree.leaves(back).forEach((t, i) => assert.equal(t, tree.leaves(m)[i]));
  const [byPred] = tree.partition(m, (p) => p.endsWith("norm"));
  assert.deepEqual(tree.paths(byPred), ["layers.0.norm", "layers.1.norm"]);
  assert.throws(() => tree.combine(m, m), /both have a leaf at "embed"/);
});

Deno.test("unsupported nodes are rejected with their path", () => {
  assert.throws(() => tree.leaves({ a: new Map() }), /unsupported node at "a" \(Map\)/);
});

Deno.test("prototype keys are never tree nodes: paths and walks refuse them, Object.prototype stays clean", () => {
  const t = { a: { w: tensor([1]) } };
  for (const path of ["constructor", "constructor.prototype", "a.__proto__", "prototype.x"]) {
    assert.throws(() => tree.at(t, path), /constructor|__proto__|prototype|no node/);
    assert.throws(() => tree.set(t, path, null), /constructor|__proto__|prototype|no node/);
  }
  const parsed = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": null}}}');
  assert.throws(() => tree.paths(parsed), /prototype keys are never tree nodes/);
  assert.throws(() => tree.map(parsed, (x) => x), /prototype keys are never tree nodes/);
  assert.throws(() => tree.combine(parsed, {}), /prototype keys are never tree nodes/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  tree.leaves(t).forEach((x) => x.dispose());
});
