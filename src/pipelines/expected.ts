/**
 * What each frame should look like, computed without the machine: the camera's test
 * pattern, the CPU's stamp and the GPU's transform applied as pure functions to plain
 * arrays. A display CRC that differs from the CRC of this is a coherency bug (or a
 * deliberate fault), never a rounding difference.
 */

import { crc32 } from "../lib/crc32.js";

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

/** CRC-32 of the visible bytes (width * bpp of each line, not the padding), as the display reports it. */
export function visibleCrc(frame: Uint8Array, g: FrameGeometry): number {
  const rowBytes = g.width * g.bpp;
  if (rowBytes === g.stride) return crc32(frame.subarray(0, g.stride * g.height));
  const packed = new Uint8Array(rowBytes * g.height);
  for (let y = 0; y < g.height; y++) {
    packed.set(frame.subarray(y * g.stride, y * g.stride + rowBytes), y * rowBytes);
  }
  return crc32(packed);
}
