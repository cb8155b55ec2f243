/**
 * Forward cases, part 1: creation, elementwise unary and binary ops,
 * comparisons, logical ops, where and cast. Expected values
 * are written by hand (literals computed independently, 10 significant
 * digits) or as simple identities in the case. Random numbers are in
 * forward_cases_random.ts; reductions, matmul, movement and nn in
 * forward_cases_shapes.ts. {@link FORWARD_CASES} joins them all.
 * @module
 */
import {
  abs,
  add,
  arange,
  cast,
  cos,
  div,
  equal,
  exp,
  eye,
  full,
  greater,
  greaterEqual,
  less,
  lessEqual,
  log,
  logicalAnd,
  logicalNot,
  logicalOr,
  maximum,
  minimum,
  mul,
  neg,
  notEqual,
  ones,
  onesLike,
  pow,
  rsqrt,
  sign,
  sin,
  sqrt,
  square,
  sub,
  tanh,
  tensor,
  where,
  zeros,
  zerosLike,
} from "../../mod.ts";
import { gelu, sigmoid, silu } from "../../core/nn.ts";
import { FORWARD_SHAPE_CASES } from "./forward_cases_shapes.ts";
import { RANDOM_CASES } from "./forward_cases_random.ts";
import { bools, type ForwardCase, ints } from "./types.ts";

const EXACT = { rtol: 0, atol: 0 };
const X6 = () => tensor([-2, -0.5, 0, 0.5, 1, 3]);
const POS = () => tensor([0.25, 1, 4, 10]);
const A23 = () => tensor([[1, 2, 3], [4, 5, 6]]);
const B23 = () => tensor([[10, 20, 30], [40, 50, 60]]);

const CREATION: ForwardCase[] = [
  { name: "tensor nested 2-D", run: () => A23(), expect: [[1, 2, 3], [4, 5, 6]] },
  { name: "tensor nested 3-D", run: () => tensor([[[1], [2]], [[3], [4]]]), expect: [[[1], [2]], [[3], [4]]] },
  { name: "tensor scalar number", run: () => tensor(3.5), expect: 3.5 },
  {
    name: "tensor flat values with shape",
    run: () => tensor([1, 2, 3, 4, 5, 6], [2, 3]),
    expect: [[1, 2, 3], [4, 5, 6]],
  },
  { name: "tensor empty", run: () => tensor([]), expect: [] },
  { name: "tensor int32 from numbers truncates", run: () => ints([1.7, -1.7, 3]), expect: [1, -1, 3], dtype: "int32" },
  {
    name: "tensor booleans give bool",
    run: () => tensor([[true, false], [false, true]]),
    expect: [[1, 0], [0, 1]],
    dtype: "bool",
  },
  {
    name: "tensor Float32Array with shape",
    run: () => tensor(new Float32Array([0.5, -1.25]), [2, 1]),
    expect: [[0.5], [-1.25]],
  },
  {
    name: "tensor Int32Array gives int32",
    run: () => tensor(new Int32Array([7, -3, 0])),
    expect: [7, -3, 0],
    dtype: "int32",
  },
  {
    name: "tensor Uint8Array gives bool (nonzero → true)",
    run: () => tensor(new Uint8Array([0, 2, 1])),
    expect: [0, 1, 1],
    dtype: "bool",
  },
  {
    // 1, −2, max half 65504, smallest subnormal 2^-24, 1365/4096, +inf, −0
    name: "tensor float16 Uint16Array converts to float32",
    run: () => tensor(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00, 0x8000]), undefined, "float16"),
    expect: [1, -2, 65504, 2 ** -24, 0.333251953125, Infinity, -0],
    tol: EXACT,
  },
  {
    name: "tensor float16 with shape",
    run: () => tensor(new Uint16Array([0x3c00, 0x4000, 0x4200, 0x4400]), [2, 2], "float16"),
    expect: [[1, 2], [3, 4]],
    tol: EXACT,
  },
  {
    // bfloat16 is the top half of a float32: 0x4049 → 0x40490000 = 3.140625
    name: "tensor bfloat16 Uint16Array converts to float32",
    run: () => tensor(new Uint16Array([0x3f80, 0xc040, 0x4049, 0x0000, 0xff80]), undefined, "bfloat16"),
    expect: [1, -3, 3.140625, 0, -Infinity],
    tol: EXACT,
  },
  { name: "zeros float32", run: () => zeros([2, 3]), expect: [[0, 0, 0], [0, 0, 0]] },
  { name: "zeros int32", run: () => zeros([2], "int32"), expect: [0, 0], dtype: "int32" },
  { name: "ones float32", run: () => ones([3]), expect: [1, 1, 1] },
  { name: "ones bool", run: () => ones([2, 2], "bool"), expect: [[true, true], [true, true]], dtype: "bool" },
  { name: "full float32", run: () => full([2, 2], 7.5), expect: [[7.5, 7.5], [7.5, 7.5]] },
  { name: "full int32", run: () => full([3], -2, "int32"), expect: [-2, -2, -2], dtype: "int32" },
  { name: "full scalar", run: () => full([], 3), expect: 3 },
  { name: "arange(n) is int32", run: () => arange(5), expect: [0, 1, 2, 3, 4], dtype: "int32" },
  { name: "arange start stop step", run: () => arange(2, 8, 2), expect: [2, 4, 6], dtype: "int32" },
  { name: "arange negative step", run: () => arange(5, 0, -2), expect: [5, 3, 1], dtype: "int32" },
  { name: "arange fractional step is float32", run: () => arange(0, 1, 0.25), expect: [0, 0.25, 0.5, 0.75] },
  { name: "arange with dtype float32", run: () => arange(3, undefined, 1, "float32"), expect: [0, 1, 2] },
  { name: "arange empty", run: () => arange(0), expect: [], dtype: "int32" },
  { name: "eye square", run: () => eye(3), expect: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] },
  { name: "eye rectangular", run: () => eye(2, 3), expect: [[1, 0, 0], [0, 1, 0]] },
  { name: "eye int32", run: () => eye(2, 2, "int32"), expect: [[1, 0], [0, 1]], dtype: "int32" },
  {
    name: "zerosLike keeps int32",
    run: () => zerosLike(ints([[5, 6], [7, 8]])),
    expect: [[0, 0], [0, 0]],
    dtype: "int32",
  },
  { name: "onesLike float32", run: () => onesLike(tensor([9, 8, 7])), expect: [1, 1, 1] },
  { name: "onesLike bool", run: () => onesLike(bools([false, false])), expect: [true, true], dtype: "bool" },
];

const UNARY: ForwardCase[] = [
  // x = [-2, -0.5, 0, 0.5, 1, 3]
  { name: "neg", run: () => neg(X6()), expect: [2, 0.5, -0, -0.5, -1, -3] },
  { name: "exp", run: () => exp(X6()), expect: [0.1353352832, 0.6065306597, 1, 1.648721271, 2.718281828, 20.08553692] },
  { name: "log", run: () => log(POS()), expect: [-1.386294361, 0, 1.386294361, 2.302585093] },
  { name: "log edge cases (0 → -inf, negative → NaN)", run: () => log(tensor([0, -1])), expect: [-Infinity, NaN] },
  { name: "sqrt", run: () => sqrt(POS()), expect: [0.5, 1, 2, 3.16227766] },
  { name: "sqrt of negative is NaN", run: () => sqrt(tensor([-1])), expect: [NaN] },
  { name: "rsqrt", run: () => rsqrt(POS()), expect: [2, 1, 0.5, 0.316227766] },
  { name: "rsqrt(0) is +inf", run: () => rsqrt(tensor([0])), expect: [Infinity] },
  { name: "abs", run: () => abs(X6()), expect: [2, 0.5, 0, 0.5, 1, 3] },
  { name: "sign", run: () => sign(X6()), expect: [-1, -1, 0, 1, 1, 1] },
  {
    name: "tanh",
    run: () => tanh(X6()),
    expect: [-0.9640275801, -0.4621171573, 0, 0.4621171573, 0.761594156, 0.9950547537],
  },
  { name: "tanh saturates", run: () => tanh(tensor([-50, 50])), expect: [-1, 1] },
  {
    name: "sigmoid",
    run: () => sigmoid(X6()),
    expect: [0.119202922, 0.3775406688, 0.5, 0.6224593312, 0.7310585786, 0.9525741268],
  },
  { name: "sigmoid large |x| (no NaN)", run: () => sigmoid(tensor([-100, 100])), expect: [0, 1] },
  {
    name: "silu",
    run: () => silu(X6()),
    expect: [-0.238405844, -0.1887703344, 0, 0.3112296656, 0.7310585786, 2.85772238],
  },
  { name: "silu large |x| (no NaN)", run: () => silu(tensor([-100, 100])), expect: [0, 100] },
  {
    // tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
    name: "gelu (tanh approximation)",
    run: () => gelu(X6()),
    expect: [-0.04540230591, -0.1542859902, 0, 0.3457140098, 0.8411919906, 2.996362608],
  },
  { name: "gelu large |x|", run: () => gelu(tensor([-10, 10])), expect: [0, 10] },
  { name: "square", run: () => square(X6()), expect: [4, 0.25, 0, 0.25, 1, 9] },
  {
    name: "sin",
    run: () => sin(X6()),
    expect: [-0.9092974268, -0.4794255386, 0, 0.4794255386, 0.8414709848, 0.1411200081],
  },
  {
    name: "cos",
    run: () => cos(X6()),
    expect: [-0.4161468365, 0.8775825619, 1, 0.8775825619, 0.5403023059, -0.9899924966],
  },
  { name: "unary keeps 2-D shape", run: () => square(tensor([[1, 2], [3, 4]])), expect: [[1, 4], [9, 16]] },
  { name: "neg int32 stays int32", run: () => neg(ints([3, -4, 0])), expect: [-3, 4, 0], dtype: "int32" },
  { name: "abs int32 stays int32", run: () => abs(ints([-3, 4])), expect: [3, 4], dtype: "int32" },
  { name: "sign int32 stays int32", run: () => sign(ints([-3, 0, 4])), expect: [-1, 0, 1], dtype: "int32" },
  { name: "square int32 stays int32", run: () => square(ints([-3, 4])), expect: [9, 16], dtype: "int32" },
  { name: "exp of int32 is float32", run: () => exp(ints([0, 1])), expect: [1, 2.718281828] },
  { name: "neg of bool is float32", run: () => neg(bools([true, false])), expect: [-1, -0] },
  { name: "logicalNot bool", run: () => logicalNot(bools([true, false])), expect: [false, true], dtype: "bool" },
  {
    name: "logicalNot float (x == 0)",
    run: () => logicalNot(tensor([0, 2.5, -1])),
    expect: [true, false, false],
    dtype: "bool",
  },
  { name: "logicalNot int32", run: () => logicalNot(ints([[0, 3]])), expect: [[true, false]], dtype: "bool" },
];

const BINARY: ForwardCase[] = [
  { name: "add same shape", run: () => add(A23(), B23()), expect: [[11, 22, 33], [44, 55, 66]] },
  { name: "add broadcast scalar tensor", run: () => add(A23(), tensor(10)), expect: [[11, 12, 13], [14, 15, 16]] },
  {
    name: "add broadcast row [3] + [2,3]",
    run: () => add(tensor([10, 20, 30]), A23()),
    expect: [[11, 22, 33], [14, 25, 36]],
  },
  {
    name: "add broadcast row+col [2,1] + [1,3]",
    run: () => add(tensor([[1], [2]]), tensor([[10, 20, 30]])),
    expect: [[11, 21, 31], [12, 22, 32]],
  },
  {
    name: "add broadcast leading axes [2,1,2] + [3,1]",
    run: () => add(tensor([[[1, 2]], [[3, 4]]]), tensor([[10], [20], [30]])),
    expect: [[[11, 12], [21, 22], [31, 32]], [[13, 14], [23, 24], [33, 34]]],
  },
  { name: "add number keeps float32", run: () => add(tensor([1.5, 2]), 1), expect: [2.5, 3] },
  { name: "add number keeps int32", run: () => add(ints([1, 2]), 3), expect: [4, 5], dtype: "int32" },
  { name: "add int32 + float32 promotes", run: () => add(ints([1, 2]), tensor([0.5, 0.25])), expect: [1.5, 2.25] },
  {
    name: "add bool + bool is logical or",
    run: () => add(bools([true, true, false]), bools([true, false, false])),
    expect: [true, true, false],
    dtype: "bool",
  },
  {
    name: "add bool + int32 is int32",
    run: () => add(bools([true, false]), ints([2, 3])),
    expect: [3, 3],
    dtype: "int32",
  },
  { name: "sub same shape", run: () => sub(A23(), B23()), expect: [[-9, -18, -27], [-36, -45, -54]] },
  { name: "sub broadcast column", run: () => sub(A23(), tensor([[1], [4]])), expect: [[0, 1, 2], [0, 1, 2]] },
  { name: "sub number on the left keeps int32", run: () => sub(10, ints([1, 2])), expect: [9, 8], dtype: "int32" },
  {
    name: "sub bool - bool is int32",
    run: () => sub(bools([true, false, true]), bools([false, true, true])),
    expect: [1, -1, 0],
    dtype: "int32",
  },
  { name: "mul same shape", run: () => mul(A23(), B23()), expect: [[10, 40, 90], [160, 250, 360]] },
  { name: "mul broadcast row", run: () => mul(A23(), tensor([1, -1, 2])), expect: [[1, -2, 6], [4, -5, 12]] },
  { name: "mul by number", run: () => mul(tensor([1, -2]), 0.5), expect: [0.5, -1] },
  { name: "mul int32 stays int32", run: () => mul(ints([3, -4]), ints([5, 6])), expect: [15, -24], dtype: "int32" },
  // Weak typing as in JAX: a fractional number does not truncate to an int32 tensor's dtype.
  { name: "mul int32 by fractional number is float32", run: () => mul(ints([1, 3]), 0.5), expect: [0.5, 1.5] },
  { name: "add int32 + fractional number is float32", run: () => add(ints([1, 2]), 0.25), expect: [1.25, 2.25] },
  {
    name: "mul bool * bool is logical and",
    run: () => mul(bools([true, true, false]), bools([true, false, false])),
    expect: [true, false, false],
    dtype: "bool",
  },
  { name: "div broadcast row", run: () => div(A23(), tensor([2, 4, 8])), expect: [[0.5, 0.5, 0.375], [2, 1.25, 0.75]] },
  { name: "div int32 / int32 is float32", run: () => div(ints([1, 2, 3]), ints([2, 2, 2])), expect: [0.5, 1, 1.5] },
  { name: "div int32 by number is float32", run: () => div(ints([1, 2]), 2), expect: [0.5, 1] },
  { name: "div by zero", run: () => div(tensor([1, -1, 0]), 0), expect: [Infinity, -Infinity, NaN] },
  { name: "pow by number", run: () => pow(tensor([1, 2, 3]), 2), expect: [1, 4, 9] },
  { name: "pow fractional exponent", run: () => pow(tensor([4, 9, 0.25]), 0.5), expect: [2, 3, 0.5] },
  { name: "pow number base", run: () => pow(2, tensor([0, 1, -1, 3])), expect: [1, 2, 0.5, 8] },
  {
    name: "pow broadcast [2,1] ^ [1,2]",
    run: () => pow(tensor([[2], [3]]), tensor([[2, 3]])),
    expect: [[4, 8], [9, 27]],
  },
  { name: "pow int32 ^ int32 is float32", run: () => pow(ints([2, 3]), ints([3, 2])), expect: [8, 9] },
  { name: "pow int32 ^ fractional number", run: () => pow(ints([4, 9]), 0.5), expect: [2, 3] },
  { name: "maximum", run: () => maximum(tensor([1, 5, -2]), tensor([3, 2, -2])), expect: [3, 5, -2] },
  { name: "maximum with number (relu)", run: () => maximum(tensor([[-1, 0], [2, -3]]), 0), expect: [[0, 0], [2, 0]] },
  { name: "maximum broadcast col", run: () => maximum(tensor([[1], [4]]), tensor([2, 3])), expect: [[2, 3], [4, 4]] },
  { name: "maximum int32 stays int32", run: () => maximum(ints([1, 7]), ints([4, 2])), expect: [4, 7], dtype: "int32" },
  { name: "maximum propagates NaN", run: () => maximum(tensor([NaN, 1]), tensor([1, NaN])), expect: [NaN, NaN] },
  { name: "minimum", run: () => minimum(tensor([1, 5, -2]), tensor([3, 2, -2])), expect: [1, 2, -2] },
  {
    name: "minimum broadcast scalar",
    run: () => minimum(tensor([[-1, 0], [2, -3]]), tensor(1)),
    expect: [[-1, 0], [1, -3]],
  },
  { name: "minimum int32 stays int32", run: () => minimum(ints([1, 7]), ints([4, 2])), expect: [1, 2], dtype: "int32" },
  { name: "minimum propagates NaN", run: () => minimum(tensor([NaN, 1]), tensor([1, NaN])), expect: [NaN, NaN] },
];

const X = () => tensor([1, 2, 3]), Y = () => tensor([3, 2, 1]);
const COMPARE: ForwardCase[] = [
  { name: "equal", run: () => equal(X(), Y()), expect: [false, true, false], dtype: "bool" },
  { name: "notEqual", run: () => notEqual(X(), Y()), expect: [true, false, true], dtype: "bool" },
  { name: "less", run: () => less(X(), Y()), expect: [true, false, false], dtype: "bool" },
  { name: "lessEqual", run: () => lessEqual(X(), Y()), expect: [true, true, false], dtype: "bool" },
  { name: "greater", run: () => greater(X(), Y()), expect: [false, false, true], dtype: "bool" },
  { name: "greaterEqual", run: () => greaterEqual(X(), Y()), expect: [false, true, true], dtype: "bool" },
  {
    name: "greater broadcast col vs row",
    run: () => greater(tensor([[1], [2], [3]]), tensor([[1, 2, 3]])),
    expect: [[false, false, false], [true, false, false], [true, true, false]],
    dtype: "bool",
  },
  {
    name: "equal int32 with number",
    run: () => equal(ints([1, 2, 3]), 2),
    expect: [false, true, false],
    dtype: "bool",
  },
  {
    name: "less float32 vs int32",
    run: () => less(tensor([1.5, 2.5]), ints([2, 2])),
    expect: [true, false],
    dtype: "bool",
  },
  {
    name: "equal bool vs bool",
    run: () => equal(bools([true, false]), bools([true, true])),
    expect: [true, false],
    dtype: "bool",
  },
  {
    name: "comparisons with NaN",
    run: () => [equal(tensor([NaN]), tensor([NaN])), notEqual(tensor([NaN]), tensor([NaN])), less(tensor([NaN]), 1)],
    expect: [[false], [true], [false]],
    dtype: "bool",
  },
  {
    name: "logicalAnd",
    run: () => logicalAnd(bools([true, true, false, false]), bools([true, false, true, false])),
    expect: [true, false, false, false],
    dtype: "bool",
  },
  {
    name: "logicalOr",
    run: () => logicalOr(bools([true, true, false, false]), bools([true, false, true, false])),
    expect: [true, true, true, false],
    dtype: "bool",
  },
  {
    name: "logicalOr broadcast",
    run: () => logicalOr(bools([[true], [false]]), bools([true, false])),
    expect: [[true, true], [true, false]],
    dtype: "bool",
  },
  {
    name: "logicalAnd of non-bool (x != 0)",
    run: () => logicalAnd(tensor([0, 2, -1]), ints([1, 1, 0])),
    expect: [false, true, false],
    dtype: "bool",
  },
  {
    name: "where",
    run: () => where(bools([true, false, true]), tensor([1, 2, 3]), tensor([10, 20, 30])),
    expect: [1, 20, 3],
  },
  {
    name: "where broadcast cond [2,1] with number",
    run: () => where(bools([[true], [false]]), tensor([1, 2, 3]), 0),
    expect: [[1, 2, 3], [0, 0, 0]],
  },
  {
    name: "where int32 branches stay int32",
    run: () => where(bools([false, true]), ints([1, 2]), ints([7, 8])),
    expect: [7, 2],
    dtype: "int32",
  },
  {
    name: "where float cond (x != 0)",
    run: () => where(tensor([0, 0.5]), tensor([1, 2]), tensor([3, 4])),
    expect: [3, 2],
  },
  { name: "where two numbers", run: () => where(bools([[true, false]]), 1, 2), expect: [[1, 2]] },
  {
    name: "cast float32 → int32 truncates toward zero",
    run: () => cast(tensor([-1.7, -0.5, 0.5, 1.7, 2.5]), "int32"),
    expect: [-1, 0, 0, 1, 2],
    dtype: "int32",
  },
  {
    name: "cast float32 → bool (x != 0)",
    run: () => cast(tensor([0, -0.5, 2, -0]), "bool"),
    expect: [false, true, true, false],
    dtype: "bool",
  },
  { name: "cast NaN → bool is true (NaN != 0)", run: () => cast(tensor([NaN]), "bool"), expect: [true], dtype: "bool" },
  { name: "cast int32 → float32", run: () => cast(ints([-3, 7]), "float32"), expect: [-3, 7] },
  { name: "cast int32 → bool", run: () => cast(ints([0, 5, -3]), "bool"), expect: [false, true, true], dtype: "bool" },
  { name: "cast bool → int32", run: () => cast(bools([true, false]), "int32"), expect: [1, 0], dtype: "int32" },
  { name: "cast bool → float32", run: () => cast(bools([[true], [false]]), "float32"), expect: [[1], [0]] },
  { name: "cast to same dtype", run: () => cast(tensor([1.25]), "float32"), expect: [1.25] },
];

/** Every forward case, in table order. */
export const FORWARD_CASES: ForwardCase[] = [
  ...CREATION,
  ...UNARY,
  ...BINARY,
  ...COMPARE,
  ...RANDOM_CASES,
  ...FORWARD_SHAPE_CASES,
];
