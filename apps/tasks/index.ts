/**
 * The tasks by name, `@knot/knot/tasks`. Each task is text in, text out (see
 * {@link Task}): the `builtin` task (generated facts about made-up people, the
 * default of examples/train_tl6.ts), `squad`, `dialogsum`, `hellaswag`,
 * `iwslt`, `multi30k`, `gsm8k` and the generic `jsonl`.
 *
 * @example
 * ```ts ignore
 * import { getTask } from "./apps/tasks/index.ts";
 * const task = getTask("gsm8k");
 * const examples = await task.load({ split: "eval", limit: 8 });
 * const { prompt, answer } = task.format(examples[0]);
 * ```
 * @module
 */
import { builtinTask } from "./builtin.ts";
import { dialogsum } from "./dialogsum.ts";
import { gsm8k } from "./gsm8k.ts";
import { hellaswag } from "./hellaswag.ts";
import { jsonl } from "./jsonl.ts";
import { squad, squadTask } from "./squad.ts";
import type { SquadOptions } from "./squad.ts";
import { iwslt, multi30k } from "./translation.ts";
import type { Example, Task } from "./types.ts";

export type {
  Choices,
  ChoiceTask,
  Decoding,
  EndingScore,
  Example,
  Formatted,
  LoadOptions,
  MetricResult,
  Task,
} from "./types.ts";
export { applyStop, isChoiceTask } from "./types.ts";
export { DEFAULT_DATA_ROOT } from "./data.ts";
export * as builtin from "./builtin.ts";
export type { DialogsumExample } from "./dialogsum.ts";
export type { Gsm8kExample } from "./gsm8k.ts";
export type { HellaswagExample } from "./hellaswag.ts";
export type { JsonlExample } from "./jsonl.ts";
export type { SquadExample, SquadOptions } from "./squad.ts";
export type { TranslationExample } from "./translation.ts";
export { dialogsum, gsm8k, hellaswag, iwslt, jsonl, multi30k, squad, squadTask };

/** Options of {@link getTask}; only the tasks named use them. */
export interface TaskOptions extends SquadOptions {}

const TASKS = { builtin: builtinTask, squad, dialogsum, hellaswag, iwslt, multi30k, gsm8k, jsonl } as const;

/** The known task names. */
export const taskNames: readonly string[] = Object.keys(TASKS);

/**
 * The task called `name`, or an Error listing the known names. `options`
 * configure the task (`contextChars` for squad).
 */
export function getTask(name: string, options: TaskOptions = {}): Task<Example> {
  if (!Object.hasOwn(TASKS, name)) {
    throw new Error(`unknown task "${name}"; known tasks: ${taskNames.join(", ")}`);
  }
  if (name === "squad" && options.contextChars !== undefined) return squadTask(options) as Task<Example>;
  return TASKS[name as keyof typeof TASKS] as unknown as Task<Example>;
}
