/**
 * What a sweep concludes, once: per profile, where whole-cache flushing starts to beat
 * per-line maintenance and the cheapest coherent strategy at each buffer size, both by
 * the sharing cost of src/report/sharing-cost.ts. The terminal prints these sentences,
 * the JSON carries the same figures and the HTML shows them, so the three reach the
 * same answer (test/sweep/conclusions.test.ts compares them).
 */

import { formatBytes, formatNs, sweepProfiles } from "./plots.js";
import {
  type Cheapest,
  type Crossover,
  cheapestStrategy,
  wholeCacheCrossover,
} from "./sharing-cost.js";
import type { SweepReport } from "./sweep-types.js";

/** One profile's conclusions. */
export interface ProfileConclusion {
  readonly profile: string;
  /** Undefined when whole-cache never wins at the top of the sizes measured. */
  readonly crossover?: Crossover;
  /** The cheapest coherent strategy at each size with a coherent run, smallest first. */
  readonly cheapest: readonly ({ readonly bufferBytes: number } & Cheapest)[];
}

/** Every profile's conclusions, profiles in first-seen order. */
export function sweepConclusions(sweep: SweepReport): ProfileConclusion[] {
  return sweepProfiles(sweep).map((profile) => {
    const sizes = [
      ...new Set(sweep.rows.filter((r) => r.profile === profile).map((r) => r.bufferBytes)),
    ].sort((a, b) => a - b);
    const cheapest = sizes.flatMap((bufferBytes) => {
      const c = cheapestStrategy(sweep.rows, profile, bufferBytes);
      return c === undefined ? [] : [{ bufferBytes, ...c }];
    });
    const crossover = wholeCacheCrossover(sweep.rows, profile);
    return { profile, ...(crossover !== undefined ? { crossover } : {}), cheapest };
  });
}

/** The crossover as one sentence. */
export function crossoverSentence(c: ProfileConclusion): string {
  const x = c.crossover;
  return x !== undefined
    ? `${c.profile}: whole-cache cheaper than per-line (streaming) from ${formatBytes(x.bytes)} up (sharing cost ${formatNs(x.wholeNs)} vs ${formatNs(x.streamingNs)} per frame).`
    : `${c.profile}: whole-cache never cheaper than per-line (streaming) at the sizes measured (or one of them is missing).`;
}

/** The cheapest strategy at one size as one sentence. */
export function cheapestSentence(
  profile: string,
  c: ProfileConclusion["cheapest"][number],
): string {
  const up = c.runnerUp;
  return `${profile}, ${formatBytes(c.bufferBytes)}: cheapest ${c.strategies.join(" and ")} (sharing cost ${formatNs(c.sharingNs)} per frame, total ${formatNs(c.totalNs)})${up !== undefined ? `; runner-up ${up.strategy} (${formatNs(up.sharingNs)})` : ""}.`;
}

/** The terminal's conclusions: the crossover and the cheapest strategy per size, per profile. */
export function conclusionsText(sweep: SweepReport): string {
  const lines: string[] = [];
  for (const c of sweepConclusions(sweep)) {
    lines.push(crossoverSentence(c));
    for (const s of c.cheapest) lines.push(`  ${cheapestSentence(c.profile, s)}`);
  }
  return lines.length > 0
    ? `\nBy sharing cost per frame (cache maintenance, CPU access, bounce, IOMMU):\n${lines.join("\n")}\n`
    : "";
}
