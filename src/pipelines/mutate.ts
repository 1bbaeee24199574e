/**
 * Mutation testing of the checker: run a pipeline once recording every cache-maintenance
 * and sync call site (the kernel's fault injector, src/machine/fault-inject.ts), then
 * once per mutant — each site's calls left out, run with the opposite direction, or over
 * half the range — and classify what each mutant did:
 *
 * - **caught**: a violation the unmutated run does not have;
 * - **caught only by wrong bytes**: no new violation, but frames the display scanned out
 *   are wrong (the pipeline's CRC check noticed; the checker did not);
 * - **harmless**: no new violation, the same frames, and no hazard was possible: in the
 *   unmutated run every call of the site found nothing to do (no line to clean or drop,
 *   no bounce copy that changed a byte), so leaving it out changes no state. The
 *   explanation names the earlier call that had already done the work;
 * - **missed**: no new violation and nothing proves it harmless — the call did work in
 *   the unmutated run, and its absence went unreported.
 *
 * The same mechanism injects the scenarios' named faults; a mutant is one more rule.
 */

import type { FaultAction, FaultRule, FaultSiteStats } from "../machine/fault-inject.js";
import type { Violation } from "../machine/violations.js";
import { runPipeline } from "./run.js";
import type { PipelineResult, PipelineSpec } from "./types.js";

export type MutantClass = "caught" | "caught-by-bytes" | "harmless" | "missed";

export const MUTANT_CLASSES: readonly MutantClass[] = [
  "caught",
  "caught-by-bytes",
  "harmless",
  "missed",
];

/** The mutations tried at every site that supports them. */
export const MUTATIONS: readonly FaultAction[] = ["omit", "flip", "shrink"];

export interface Mutant {
  /** The site, as "<call> <- <caller>". */
  readonly site: string;
  readonly action: FaultAction;
  readonly class: MutantClass;
  /** New violations, as "kind[/api]" with counts. */
  readonly newViolations: readonly string[];
  /** The first new violation's hint (what the checker tells the user to do). */
  readonly hint?: string;
  /** Frames whose CRC differs from the expected frame (and not in the unmutated run). */
  readonly wrongFrames: number;
  /** Why a harmless mutant is harmless, or what a missed one changed. */
  readonly explanation?: string;
  /** When the kernel refused the mutated program outright (an errno), its message. */
  readonly error?: string;
}

export interface MutationReport {
  readonly name: string;
  /** The unmutated run's verdict. */
  readonly baseline: PipelineResult["verdict"];
  readonly sites: readonly FaultSiteStats[];
  readonly mutants: readonly Mutant[];
  readonly counts: Readonly<Record<MutantClass, number>>;
  /** caught / (mutants - harmless): the share of mutants that could do harm which the checker named. */
  readonly score: number;
}

export interface MutateOptions {
  /** Mutations to try (default: omit, flip, shrink). */
  readonly actions?: readonly FaultAction[];
  /** Called after each mutant (progress). */
  readonly onMutant?: (m: Mutant, done: number, total: number) => void;
}

const violationKey = (v: Violation): string => (v.api ? `${v.kind}/${v.api}` : v.kind);

function countKeys(vs: readonly Violation[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of vs) m.set(violationKey(v), (m.get(violationKey(v)) ?? 0) + 1);
  return m;
}

/** Runs the mutants of `spec` and classifies them. */
export function mutatePipeline(spec: PipelineSpec, options: MutateOptions = {}): MutationReport {
  const base = runPipeline({ ...spec, recordCallSites: true, trace: false });
  const sites = base.callSites ?? [];
  const baseKeys = countKeys(base.violations);
  const actions = options.actions ?? MUTATIONS;
  const plan: { site: FaultSiteStats; action: FaultAction }[] = [];
  for (const site of sites) {
    for (const action of actions) {
      if (action === "flip" && !site.canFlip) continue;
      if (action === "shrink" && !site.canShrink) continue;
      if (action === "repeat" && !site.canRepeat) continue;
      if (action === "swap" && !site.canSwap) continue;
      plan.push({ site, action });
    }
  }
  const mutants: Mutant[] = [];
  for (const { site, action } of plan) {
    const m = runMutant(spec, base, baseKeys, sites, site, action);
    mutants.push(m);
    options.onMutant?.(m, mutants.length, plan.length);
  }
  const counts = { caught: 0, "caught-by-bytes": 0, harmless: 0, missed: 0 };
  for (const m of mutants) counts[m.class]++;
  const harmful = mutants.length - counts.harmless;
  return {
    name: base.spec.name ?? base.spec.pipeline,
    baseline: base.verdict,
    sites,
    mutants,
    counts,
    score: harmful === 0 ? 1 : counts.caught / harmful,
  };
}

function runMutant(
  spec: PipelineSpec,
  base: PipelineResult,
  baseKeys: Map<string, number>,
  sites: readonly FaultSiteStats[],
  site: FaultSiteStats,
  action: FaultAction,
): Mutant {
  const rule: FaultRule = { call: site.call, caller: site.caller, action };
  let r: PipelineResult;
  try {
    r = runPipeline({
      ...spec,
      trace: false,
      recordCallSites: true,
      injections: [...(spec.injections ?? []), rule],
    });
  } catch (e) {
    // The kernel refused the mutated program (an errno): loud, so caught.
    return {
      site: site.id,
      action,
      class: "caught",
      newViolations: [],
      wrongFrames: 0,
      error: e instanceof Error ? e.message : String(e),
    };
  }
  const keys = countKeys(r.violations);
  const added: string[] = [];
  for (const [k, n] of keys) {
    const was = baseKeys.get(k) ?? 0;
    if (n > was) added.push(`${k} ×${n - was}`);
  }
  const firstNew = r.violations.find(
    (v) => (keys.get(violationKey(v)) ?? 0) > (baseKeys.get(violationKey(v)) ?? 0),
  );
  const wrongFrames = r.frames.filter((f, i) => !f.ok && base.frames[i]?.ok !== false).length;
  const sameFrames =
    r.frames.length === base.frames.length &&
    r.frames.every((f, i) => f.crc === base.frames[i]!.crc);
  const common = {
    site: site.id,
    action,
    newViolations: added,
    wrongFrames,
    ...(firstNew ? { hint: firstNew.hint } : {}),
  };
  if (added.length > 0) return { ...common, class: "caught" };
  if (wrongFrames > 0)
    return base.verdict === "coherent"
      ? {
          ...common,
          class: "missed",
          explanation: "frames went wrong and the checker said nothing",
        }
      : {
          ...common,
          class: "caught-by-bytes",
          explanation:
            "frames went wrong; the run was already flagged by the same kinds of violation",
        };
  if (!sameFrames) {
    const repaired = r.frames.filter((f, i) => f.ok && base.frames[i]?.ok === false).length;
    if (repaired > 0)
      return {
        ...common,
        class: "harmless",
        explanation: `it undoes the scenario's own fault: ${repaired} frame(s) that were wrong are right`,
      };
    if (changedFramesFlagged(r, base))
      return {
        ...common,
        class: "caught-by-bytes",
        explanation:
          "frames that were already wrong came out differently wrong; every one of them is flagged by a violation of a kind the run already had",
      };
    return { ...common, class: "missed", explanation: "the frames changed without a violation" };
  }
  return {
    ...common,
    class: "harmless",
    explanation: whyHarmless(sites, site, r.callSites ?? [], action),
  };
}

/**
 * Whether every frame whose CRC the mutant changed is wrong and has a violation reported
 * while it was being produced (after the previous frame's completion, up to its own).
 */
function changedFramesFlagged(r: PipelineResult, base: PipelineResult): boolean {
  if (r.frames.length !== base.frames.length) return false;
  return r.frames.every((f, i) => {
    if (f.crc === base.frames[i]!.crc) return true;
    if (f.ok) return false;
    const from = i === 0 ? -1 : r.frames[i - 1]!.time;
    return r.violations.some((v) => v.time > from && v.time <= f.time);
  });
}

/**
 * The rule that makes a mutant with the same frames and no new violation harmless, from
 * the two runs' call-site records:
 * - a swiotlb bounce copy left out whose bytes nobody read before they were overwritten (a
 *   read is checked against the slot: stale-device-read, stale-cpu-read);
 * - the site did nothing in the unmutated run (the earlier call that had already done the
 *   work is named: videobuf2's finish at DQBUF before a DMA_BUF_IOCTL_SYNC(START));
 * - later calls picked up the work (the zeroing's dirty lines cleaned by the first QBUF);
 * - what was left undone was clean copies no one read (a CPU read of one is a
 *   stale-cpu-read) or dirty lines no device touched (a device access would be a
 *   stale-device-read or dirty-line-under-dma): the checker watches every access that
 *   could have gone wrong, and none did.
 */
function whyHarmless(
  sites: readonly FaultSiteStats[],
  site: FaultSiteStats,
  mutantSites: readonly FaultSiteStats[],
  action: FaultAction,
): string {
  if (site.call.startsWith("swiotlb_"))
    return site.bouncesChanging === 0
      ? `no-op: each of its ${site.calls} bounce copy(ies) found the destination already holding the same bytes`
      : site.call === "swiotlb_sync_single_for_cpu"
        ? "the bytes it would have copied back were never read by the CPU (that read would be a stale-cpu-read)"
        : "the bytes it would have copied into the slot were never read by the device: it wrote over the slot first (a device read of the slot's old bytes would be a stale-device-read)";
  if (site.linesAffected === 0) {
    if (site.requestedBytes > 0 && site.maintainedBytes === 0)
      return `no cache maintenance behind ${site.call} here (a coherent device, or an exporter whose CPU-access hooks do none)`;
    const i = sites.indexOf(site);
    const earlier = sites
      .slice(0, i)
      .filter((s) => s.linesAffected > 0 && s.caller !== site.caller)
      .map((s) => s.caller)
      .filter((c, j, all) => all.indexOf(c) === j);
    const by = earlier.length > 0 ? `: already done by ${earlier.slice(-2).join(" and ")}` : "";
    return `no-op: each of its ${site.calls} call(s) found no cache line to clean or drop${by}`;
  }
  const before = new Map(sites.map((s) => [s.id, s]));
  const pickedUp = mutantSites
    .filter((s) => s.id !== site.id && s.linesAffected > (before.get(s.id)?.linesAffected ?? 0))
    .map((s) => s.caller)
    .filter((c, j, all) => all.indexOf(c) === j);
  const own = mutantSites.find((s) => s.id === site.id);
  if (own !== undefined && own.linesAffected >= site.linesAffected)
    return `the mutated call still found all ${site.linesAffected} line(s) (${action === "shrink" ? "they all lie in the half it still covers" : action === "flip" ? "this architecture maintains the same way in both directions here, as arm64's arch_sync_dma_for_device cleans whatever the direction" : "the change does not alter its maintenance"})`;
  if (pickedUp.length > 0)
    return `the work was done later by ${pickedUp.slice(0, 2).join(" and ")}`;
  if (site.dirtyLines === 0)
    return "it only dropped clean copies, and the CPU never read one of them afterwards (that read would be a stale-cpu-read)";
  return "the dirty lines it left were never reached by a device (that access would be a stale-device-read or dirty-line-under-dma)";
}
