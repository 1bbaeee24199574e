/**
 * Bounded input: every size, count and rate a scenario can set is checked against the
 * machine's and the devices' limits before anything is built or run, and each problem
 * names the scenario field it comes from. Also the limits on the scenario file itself
 * (its size, its nesting, its YAML aliases).
 *
 * This is a layer of its own so that any scenario language can call it: it checks a
 * {@link PipelineSpec} (what every scenario turns into) and reports field paths in the
 * words scenario files use ("machine.ram.size", "buffers.count"). The machine's own
 * bounds live with the profiles ({@link checkProfile}); the frame geometry against the
 * display's is geometryProblem's (src/sweep/validate.ts).
 */

import { statSync } from "node:fs";
import { checkProfile, formatBytes, PROFILE_LIMITS } from "../machine/profiles.js";
import { machineFor, resolveSpec } from "../pipelines/spec.js";
import type { PipelineSpec } from "../pipelines/types.js";

/** Limits on the scenario text and on the work a run may ask for. */
export const SCENARIO_LIMITS = {
  /** A scenario file is a page of settings: 1 MiB is far more than any needs. */
  maxFileBytes: 1024 * 1024,
  /** Nesting of mappings and sequences (a scenario needs about 5). */
  maxDepth: 64,
  /** YAML aliases resolved (yaml's maxAliasCount): defeats "billion laughs" files. */
  maxAliasCount: 100,
  /** Bytes of all buffers in rotation: the frames are written in full, on the host too. */
  maxBufferBytesTotal: 2 * 1024 ** 3,
  /** Frame bytes over the whole run (frames × frame size): the host work of the DMA. */
  maxRunBytes: 64 * 1024 ** 3,
} as const;

/** A field outside its limits, by the scenario path that set it. */
export interface LimitIssue {
  readonly path: readonly (string | number)[];
  readonly problem: string;
}

/** Where the profile fields come from in a scenario. */
function scenarioPath(profileField: string): (string | number)[] {
  const parts = profileField
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (parts[0] === "device" && parts[1] === "bandwidthBytesPerNs")
    return ["machine", "device", "bandwidth"];
  return ["machine", ...parts];
}

/**
 * Checks a pipeline spec against the limits of the machine it asks for, of the devices
 * its frames pass through, and of the run's host work. Returns every problem; specs the
 * runner itself rejects (a buffer smaller than a line) are left to the runner's message.
 */
export function checkSpecLimits(spec: PipelineSpec): LimitIssue[] {
  let resolved: ReturnType<typeof resolveSpec>;
  try {
    resolved = resolveSpec(spec);
  } catch {
    return [];
  }
  const out: LimitIssue[] = [];
  // The machine, as built for this spec (CMA grown for the buffers and all).
  let profileIssues: ReturnType<typeof checkProfile> = [];
  try {
    profileIssues = checkProfile(machineFor(resolved).profile);
  } catch {
    // An unknown profile name: the schema reports it.
  }
  for (const i of profileIssues) out.push({ path: scenarioPath(i.field), problem: i.problem });
  const L = PROFILE_LIMITS;
  for (const dev of ["camera", "gpu", "display"] as const) {
    const bw = spec.devices?.[dev]?.bandwidthBytesPerNs;
    if (bw !== undefined && !(bw >= L.minBytesPerNs && bw <= L.maxBytesPerNs))
      out.push({
        path: ["devices", dev, "bandwidth"],
        problem: `expected ${L.minBytesPerNs} to ${L.maxBytesPerNs} bytes per ns (1 MB/s to 10 TB/s); got ${bw}`,
      });
  }
  // The frame geometry against the display's limits is checked by geometryProblem
  // (src/sweep/validate.ts), which both `dmabuf run` and `dmabuf sweep` call.
  const sizeField = spec.bufferBytes !== undefined ? "bufferBytes" : undefined;
  const S = SCENARIO_LIMITS;
  const frameBytes = resolved.width * resolved.height * 4;
  if (frameBytes * resolved.buffers > S.maxBufferBytesTotal)
    out.push({
      path: ["buffers", sizeField ?? (spec.buffers !== undefined ? "count" : "width")],
      problem: `${resolved.buffers} buffers of ${formatBytes(frameBytes)} are more than the ${formatBytes(S.maxBufferBytesTotal)} a run may fill`,
    });
  else if (frameBytes * resolved.frames > S.maxRunBytes)
    out.push({
      path: ["pipeline", "frames"],
      problem: `${resolved.frames} frames of ${formatBytes(frameBytes)} move more than the ${formatBytes(S.maxRunBytes)} a run may move`,
    });
  return out;
}

/**
 * Checks that `path` can be read as a scenario: a regular file of at most
 * {@link SCENARIO_LIMITS}.maxFileBytes. Returns the problem, or undefined. (A device
 * such as /dev/zero or a FIFO would be read without end.)
 */
export function checkScenarioFile(path: string): string | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return undefined; // the read reports ENOENT and friends
  }
  if (st.isDirectory()) return undefined;
  if (!st.isFile()) return "not a regular file (a device or a pipe is not a scenario)";
  if (st.size > SCENARIO_LIMITS.maxFileBytes)
    return `the file is ${formatBytes(st.size)}; a scenario file may be at most ${formatBytes(SCENARIO_LIMITS.maxFileBytes)}`;
  return undefined;
}

/**
 * The deepest nesting of brackets and braces in JSON or flow-style YAML text, counted
 * without recursion (outside strings), so that a file nested 100,000 deep is refused
 * before a recursive parser overflows its stack. Returns the offset where the limit is
 * passed, or undefined.
 */
export function findExcessiveNesting(
  text: string,
  max = SCENARIO_LIMITS.maxDepth,
): number | undefined {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"') quote = c;
    else if (c === "[" || c === "{") {
      if (++depth > max) return i;
    } else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      const nl = text.indexOf("\n", i);
      if (nl < 0) break;
      i = nl;
    }
  }
  return undefined;
}
