/**
 * Applications built on the library, `@knot/knot/apps`: the fine-tune driver
 * behind examples/train_tl6.ts and examples/sweep.ts (prepare a task, train a
 * plan, evaluate, write a run directory), run records, evaluation helpers,
 * SVG line charts and a terminal progress bar. Tasks and metrics have their
 * own entries (`@knot/knot/tasks`, `@knot/knot/metrics`).
 * @module
 */
export {
  finetune,
  type FinetuneOptions,
  type FinetuneResult,
  formatMetric,
  type PreparedTask,
  prepareTask,
  runSettings,
  taskMetric,
} from "./finetune.ts";
export { adapterOptimizer } from "./finetune.ts";
export { type AnswerOptions, generateAnswers, meanLoss, scoreEndings } from "./evaluate.ts";
export {
  type CodeVersion,
  describeRun,
  formatDiffs,
  readRun,
  type Resumed,
  resumeRun,
  RUN_FILE,
  type RunRecord,
  type RunSettings,
  type RunStatus,
  SAFE_TO_CHANGE,
  settingDiffs,
  type SettingValue,
  startRun,
} from "./run.ts";
export { type ChartOptions, lineChart, type Series, smooth } from "./plot.ts";
export { ProgressBar } from "./progress.ts";
export {
  loadMethodModule,
  type PlanFactory,
  prepareSweepData,
  presetMethod,
  readResults,
  runSweep,
  type RunTraining,
  type SweepData,
  type SweepDataOptions,
  type SweepHeader,
  type SweepMethod,
  type SweepModel,
  type SweepOptions,
  type SweepOutcome,
  type SweepResults,
  trainRun,
} from "./sweep.ts";
export { type SweepReport, sweepReport } from "./sweep_report.ts";
export {
  all,
  behind,
  type Candidate,
  type Cell,
  type CellPlan,
  checkClaims,
  chooseLr,
  type Claim,
  type Collapse,
  collapses,
  type Diff,
  diff,
  gridEdge,
  type LrChoice,
  meanStd,
  planCell,
  rankSelection,
  type RunId,
  runKey,
  stability,
  summarize,
  type SweepRun,
  type SweepShape,
  type Verdict,
  within,
} from "./sweep_stats.ts";
