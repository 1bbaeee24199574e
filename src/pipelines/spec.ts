/**
 * Filling in a PipelineSpec: defaults, frame geometry from a buffer size, and what each
 * mapping strategy means for the machine and the V4L2 queue.
 */

import { type Profile, type ProfileOverrides, resolveProfile } from "../machine/profiles.js";
import type { GraphBufferSource, PipelineResult, PipelineSpec } from "./types.js";

export type ResolvedSpec = PipelineResult["spec"];

/** Bytes per pixel of the formats the pipelines move. */
export function bytesPerPixel(format: string): number {
  switch (format) {
    case "XR24":
      return 4;
    case "YUYV":
      return 2;
    default:
      throw new RangeError(`pipeline: unknown format '${format}' (known: XR24, YUYV)`);
  }
}

/** Width of a frame made to a buffer size when no width is given: 1024 pixels, doubled until the height fits. */
export const SIZED_FRAME_WIDTH = 1024;
/** The tallest frame the pipelines make from a size (the display's limit, drm_framebuffer.c's mode_config.max_height). */
export const MAX_FRAME_HEIGHT = 4096;

/** The pool the first camera of a graph captures into (not GEM dumb: cameras refuse those). */
function graphCameraPool(spec: PipelineSpec):
  | {
      source: Exclude<GraphBufferSource, "gem-dumb" | "accel-bo" | "gpu-bo">;
      heap?: string;
      count: number;
    }
  | undefined {
  const g = spec.graph;
  if (g === undefined) return undefined;
  for (const s of g.stages) {
    if (s.device === undefined || g.devices[s.device]?.kind !== "camera" || s.pool === undefined)
      continue;
    const p = g.pools[s.pool];
    if (
      p === undefined ||
      p.source === "gem-dumb" ||
      p.source === "accel-bo" ||
      p.source === "gpu-bo"
    )
      return undefined;
    return { source: p.source, count: p.count, ...(p.heap !== undefined ? { heap: p.heap } : {}) };
  }
  return undefined;
}

/** The spec with every default filled in and the frame geometry settled. */
export function resolveSpec(spec: PipelineSpec): ResolvedSpec {
  const pipeline = spec.pipeline ?? "camera-gpu-display";
  const format = spec.format ?? "XR24";
  const bpp = bytesPerPixel(format);
  let width = spec.width ?? 640;
  let height = spec.height ?? 480;
  if (spec.bufferBytes !== undefined) {
    width = spec.width ?? SIZED_FRAME_WIDTH;
    if (spec.width === undefined) {
      while (spec.bufferBytes / (width * bpp) > MAX_FRAME_HEIGHT && width < 16384) width *= 2;
    }
    const stride = width * bpp;
    if (spec.bufferBytes < stride) {
      throw new RangeError(
        `pipeline: bufferBytes ${spec.bufferBytes} is smaller than one line of ${width} ${format} pixels (${stride} bytes)`,
      );
    }
    height = Math.floor(spec.bufferBytes / stride);
  }
  if (!(Number.isInteger(width) && width >= 16 && width % 2 === 0)) {
    throw new RangeError(`pipeline: width ${width} must be an even integer >= 16`);
  }
  if (!(Number.isInteger(height) && height >= 1)) {
    throw new RangeError(`pipeline: height ${height} must be a positive integer`);
  }
  const frames = spec.frames ?? 8;
  const buffers = spec.buffers ?? 4;
  if (!(Number.isInteger(frames) && frames >= 1))
    throw new RangeError(`pipeline: frames ${frames}`);
  if (!(Number.isInteger(buffers) && buffers >= 2 && buffers <= 32)) {
    throw new RangeError(`pipeline: buffers ${buffers} must be between 2 and 32`);
  }
  const cpuTouches = pipeline === "camera-cpu-display";
  // A graph's first camera pool stands for "the buffers" in one-line summaries.
  const camPool = graphCameraPool(spec);
  return {
    ...spec,
    profile: spec.profile ?? "arm64",
    pipeline: spec.graph !== undefined ? "graph" : pipeline,
    strategy: spec.strategy ?? "streaming",
    source: camPool?.source ?? spec.source ?? "v4l2-mmap",
    heap: camPool?.heap ?? spec.heap ?? "system",
    width,
    height,
    format: pipeline === "camera-display" || pipeline === "camera-cpu-display" ? "XR24" : format,
    frames,
    buffers: camPool?.count ?? buffers,
    fps: spec.fps ?? 30,
    cpuReads: spec.cpuReads ?? cpuTouches,
    cpuWrites: spec.cpuWrites ?? cpuTouches,
    bufferBytes: width * height * bpp,
  };
}

/**
 * The machine a spec runs on. The strategy decides how the shared buffers are
 * maintained (the one rule of src/pipelines/validity.ts): "streaming" and
 * "cache-hints" line by line; "whole-cache" by set/way from
 * `machine.maintenance.thresholdBytes` on — 0 when the scenario gives none, and then
 * invalidations are flushed whole too; with a threshold they stay by line, as
 * arch/arm/mm/cache-l2x0.c keeps them. "coherent" keeps the machine's policy for
 * whatever else is maintained. CMA grows to hold the pipeline's buffers when the
 * profile's is too small and the scenario did not size it.
 */
export function machineFor(spec: ResolvedSpec): { profile: Profile; overrides: ProfileOverrides } {
  const user = spec.overrides ?? {};
  const base = resolveProfile(spec.profile, user);
  let maintenance: ProfileOverrides["maintenance"] = user.maintenance;
  if (spec.strategy === "whole-cache") {
    const threshold = user.maintenance?.thresholdBytes;
    maintenance = {
      kind: "whole-cache-above",
      thresholdBytes: threshold ?? 0,
      invalidateWhole: threshold === undefined,
    };
  } else if (spec.strategy !== "coherent") {
    maintenance = { kind: "per-line", thresholdBytes: Number.POSITIVE_INFINITY };
  }
  const outBytes = spec.width * spec.height * 4;
  // Camera buffers, display buffers (three for GPU output), plus slack for alignment.
  const needed = spec.bufferBytes * spec.buffers + outBytes * 3 + 16 * 1024 * 1024;
  const cmaBytes =
    user.cmaBytes === undefined && base.cmaBytes < needed
      ? Math.ceil(needed / (4 << 20)) * (4 << 20)
      : undefined;
  // The RAM must hold the grown CMA area and the rest of the machine.
  const ram =
    cmaBytes !== undefined && base.ram.size < cmaBytes * 2 && user.ram === undefined
      ? { base: base.ram.base, size: Math.ceil((cmaBytes * 2) / (1 << 30)) * (1 << 30) }
      : undefined;
  const overrides: ProfileOverrides = {
    ...user,
    ...(maintenance ? { maintenance: { ...base.maintenance, ...maintenance } } : {}),
    ...(cmaBytes !== undefined ? { cmaBytes } : {}),
    ...(ram !== undefined ? { ram } : {}),
  };
  return { profile: resolveProfile(spec.profile, overrides), overrides };
}
