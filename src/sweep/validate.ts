/**
 * Checks a grid point's spec before anything runs, so a sweep is refused whole, up front,
 * naming the field, instead of failing point by point after the grid has run: the frame
 * must be one the display can scan out (simdisplay's mode_config limits, which
 * DRM_IOCTL_MODE_ADDFB2 enforces as drm_framebuffer.c's framebuffer_check does), and a
 * requested buffer size must be a whole number of the frame's lines, so the size that
 * runs, and labels the row, is the size that was asked for.
 */

import { MAX_FRAME_HEIGHT, resolveSpec } from "../pipelines/spec.js";
import type { PipelineSpec } from "../pipelines/types.js";
import { formatBytes } from "./grid.js";

/** The display's limits (src/drivers/gpu/drm/simdisplay: mode_config.max_width/height). */
export const DISPLAY_MAX_WIDTH = 4096;
export const DISPLAY_MAX_HEIGHT = MAX_FRAME_HEIGHT;

/** What is wrong with a spec's geometry, naming the scenario field; undefined when it fits. */
export function geometryProblem(spec: PipelineSpec): string | undefined {
  let resolved: ReturnType<typeof resolveSpec>;
  try {
    resolved = resolveSpec(spec);
  } catch (e) {
    if (e instanceof RangeError) return e.message.replace(/^pipeline: /, "");
    throw e;
  }
  const { width, height, format } = resolved;
  const lineBytes = resolved.bufferBytes / height;
  if (spec.bufferBytes !== undefined && resolved.bufferBytes !== spec.bufferBytes) {
    const below = resolved.bufferBytes;
    const above = below + lineBytes;
    return `buffers.bufferBytes ${formatBytes(spec.bufferBytes)} (${spec.bufferBytes}) is not a whole number of ${width}-pixel ${format} lines (${lineBytes} bytes each); the nearest sizes that are: ${below} and ${above}`;
  }
  if (resolved.pipeline === "cpu-output") return undefined;
  if (width > DISPLAY_MAX_WIDTH) {
    return `buffers.width ${width} is wider than the display scans out (at most ${DISPLAY_MAX_WIDTH} pixels)`;
  }
  if (height > DISPLAY_MAX_HEIGHT) {
    const size =
      spec.bufferBytes !== undefined
        ? `buffers.bufferBytes ${formatBytes(spec.bufferBytes)} at buffers.width ${width}`
        : `buffers.height ${height}`;
    return `${size} makes a frame ${height} lines tall; the display scans out at most ${DISPLAY_MAX_HEIGHT}${spec.bufferBytes !== undefined && spec.width !== undefined ? " (leave buffers.width out and the width is chosen to fit, or make it wider)" : ""}`;
  }
  return undefined;
}
