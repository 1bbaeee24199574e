/**
 * What each frame should look like, computed without the machine: the camera's test
 * pattern, the CPU's stamp and the GPU's transform applied as pure functions to plain
 * arrays. A display CRC that differs from the CRC of this is a coherency bug (or a
 * deliberate fault), never a rounding difference.
 */

import { type SimgpuTransformParams, simgpuTransform } from "../drivers/gpu/drm/simgpu/simgpu.js";
import {
  type TpgFormat,
  vividTestPatternInto,
} from "../drivers/media/test-drivers/vivid/vivid-tpg.js";
import { crc32Rows } from "../lib/crc32.js";
import { ScratchBuffer } from "../lib/scratch.js";

export interface FrameGeometry {
  readonly width: number;
  readonly height: number;
  /** Bytes per line of the buffer (V4L2 bytesperline, DRM pitch). */
  readonly stride: number;
  /** Bytes per pixel. */
  readonly bpp: number;
}

/** Lines the CPU stamps at the top of each frame in the camera -> CPU pipelines. */
export function stampLines(height: number): number {
  return Math.min(height, 16);
}

/**
 * The CPU's processing step: the visible bytes of the top lines are replaced by their
 * inverse XOR a per-frame value — it depends on what the CPU read (a stale read gives
 * a wrong stamp) and it is written back (a missing clean hides it from the display).
 * Applied in place to `frame` when the CPU both reads and writes; a write-only CPU
 * writes `frameNo`-derived bytes, a read-only CPU changes nothing.
 */
export function applyStamp(
  frame: Uint8Array,
  g: FrameGeometry,
  frameNo: number,
  reads: boolean,
  writes: boolean,
): void {
  if (!writes) return;
  const lines = stampLines(g.height);
  const rowBytes = g.width * g.bpp;
  const key = (frameNo * 37 + 11) & 0xff;
  for (let y = 0; y < lines; y++) {
    const row = frame.subarray(y * g.stride, y * g.stride + rowBytes);
    if (reads) for (let i = 0; i < row.length; i++) row[i] = (255 - row[i]!) ^ key;
    else row.fill(key);
  }
}

/**
 * CRC-32 of the visible bytes (width * bpp of each line, not the padding), as the display
 * reports it. A row equal to the one above is not hashed again (crc32Rows).
 */
export function visibleCrc(frame: Uint8Array, g: FrameGeometry): number {
  return crc32Rows(frame, g.width * g.bpp, g.stride, g.height);
}

// The expected frames of a pipeline are frame-sized and live for one frame: each is made
// in a buffer reused from frame to frame (fresh frame-sized arrays cost host page faults).
const patternScratch = new ScratchBuffer();
const gpuScratch = new ScratchBuffer();

/**
 * vivid's test pattern for frame `sequence` (see vividTestPattern), in a buffer that is
 * reused: valid, and the caller's to stamp, until the next call.
 */
export function expectedTestPattern(fmt: TpgFormat, sequence: number): Uint8Array {
  return vividTestPatternInto(fmt, sequence, patternScratch.get(fmt.bytesperline * fmt.height));
}

/**
 * What simgpu makes of `src` (see simgpuTransform), in a buffer that is reused: valid
 * until the next call.
 */
export function expectedGpuOutput(
  op: number,
  src: Uint8Array,
  p: SimgpuTransformParams,
): Uint8Array {
  return simgpuTransform(op, src, p, gpuScratch.get(p.dstPitch * p.height));
}
