/**
 * What each frame should look like, computed without the machine: the camera's test
 * pattern, the CPU's stamp and the GPU's transform applied as pure functions to plain
 * arrays. A display CRC that differs from the CRC of this is a coherency bug (or a
 * deliberate fault), never a rounding difference.
 */

import {
  type SimgpuTransformParams,
  simgpuJobRowBytes,
  simgpuResultBytes,
  simgpuTransform,
} from "../drivers/gpu/drm/simgpu/simgpu.js";
import {
  type TpgFormat,
  vividTestPatternCached,
} from "../drivers/media/test-drivers/vivid/vivid-tpg.js";
import { xorBytes } from "../lib/bytes.js";
import { crc32Combine, crc32Rows } from "../lib/crc32.js";
import { type SameRows, ScratchBuffer, type ScratchContent, sameRowsAs } from "../lib/scratch.js";

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
  for (let y = 0; y < lines; y++)
    stampBytes(frame.subarray(y * g.stride, y * g.stride + rowBytes), frameNo, reads);
}

/**
 * A CPU stage's change to bytes it stamps: the inverse of what it read XOR a per-frame
 * key when it reads and writes (a stale read gives a wrong result), the key alone when
 * it only writes. `(255 - b) ^ key` is `b ^ (255 ^ key)`: one XOR, a word at a time.
 */
export function stampBytes(bytes: Uint8Array, frameNo: number, reads: boolean): void {
  const key = (frameNo * 37 + 11) & 0xff;
  if (reads) xorBytes(bytes, 255 ^ key);
  else bytes.fill(key);
}

/**
 * CRC-32 of the visible bytes (width * bpp of each line, not the padding), as the display
 * reports it. A row equal to the one above is not hashed again (crc32Rows). With the
 * frame's `content` known (see ScratchContent), the rows below its varying top rows are
 * the same in every frame of that content's key: their CRC is kept from the first such
 * frame and combined with the top's (crc32Combine), so only the top rows are read.
 */
export function visibleCrc(frame: Uint8Array, g: FrameGeometry, content?: ScratchContent): number {
  const rowBytes = g.width * g.bpp;
  // Rows the frame's producer knows equal to the one above are not compared.
  const same = sameRowsAs(content?.same, g.stride, rowBytes);
  if (
    content === undefined ||
    content.rows >= g.height ||
    frame.length < g.stride * (g.height - 1) + rowBytes
  )
    return crc32Rows(frame, rowBytes, g.stride, g.height, same);
  const key = `${content.key} rows ${content.rows}: ${g.width}x${g.height}x${g.bpp}/${g.stride}`;
  let tail = tailCrcs.get(key);
  if (tail === undefined) {
    tail = crc32Rows(
      frame.subarray(content.rows * g.stride),
      rowBytes,
      g.stride,
      g.height - content.rows,
      same?.subarray(Math.min(same.length, content.rows)),
    );
    if (tailCrcs.size >= 16) tailCrcs.delete(tailCrcs.keys().next().value!);
    tailCrcs.set(key, tail);
  }
  const head = crc32Rows(frame, rowBytes, g.stride, content.rows, same);
  return crc32Combine(head, tail, (g.height - content.rows) * rowBytes);
}

/** The CRC of the rows below the varying ones, by content key and geometry (the most recent few). */
const tailCrcs = new Map<string, number>();

// The expected frames of a pipeline are frame-sized and live for one frame: each is made
// in a buffer reused from frame to frame (fresh frame-sized arrays cost host page faults).
const patternScratch = new ScratchBuffer();
const gpuScratch = new ScratchBuffer();

/**
 * vivid's test pattern for frame `sequence` (see vividTestPattern), in `into` (by
 * default a buffer of this module): valid until `into` is used again. Only the band is
 * redrawn when `into` holds another frame of the same format; a caller that stamps the
 * result in place must call `into.forget()`.
 */
export function expectedTestPattern(
  fmt: TpgFormat,
  sequence: number,
  into: ScratchBuffer = patternScratch,
): Uint8Array {
  return vividTestPatternCached(fmt, sequence, into);
}

/**
 * What simgpu makes of `src` (see simgpuTransform), in `into` (by default a buffer of
 * this module): valid until `into` is used again. `srcContent`, what `src` holds when
 * known, lets a result of the same transform of another frame of the same key be
 * brought up to date by redoing the varying top rows only (the transform is row by row:
 * a result row depends on its source row alone); the result's content is then known too.
 */
export function expectedGpuOutput(
  op: number,
  src: Uint8Array,
  p: SimgpuTransformParams,
  into: ScratchBuffer = gpuScratch,
  srcContent?: ScratchContent,
): Uint8Array {
  const size = p.dstPitch * p.height;
  const key =
    srcContent === undefined
      ? undefined
      : `simgpu op ${op} ${p.width}x${p.height} ${p.srcPitch}->${p.dstPitch} ${p.srcFormat ?? "-"}->${p.dstFormat ?? "-"} of ${srcContent.key}`;
  const rowBytes = simgpuJobRowBytes(op, p);
  // Source rows known equal to the one above give result rows equal to the one above
  // (the transform is row by row).
  const srcSame = sameRowsAs(srcContent?.same, p.srcPitch, rowBytes.src);
  const same: SameRows | undefined =
    srcSame === undefined
      ? undefined
      : { pitch: p.dstPitch, rowBytes: rowBytes.dst, same: srcSame };
  const have = into.content;
  if (key !== undefined && have !== undefined && have.key === key && into.capacity >= size) {
    const out = into.peek(size);
    // The rows either source may vary in (the last one's may have been stamped deeper).
    const rows = Math.min(p.height, Math.max(have.rows, srcContent!.rows));
    if (have.seq !== srcContent!.seq && rows > 0) {
      simgpuTransform(op, src, { ...p, height: rows }, out, {
        src: srcSame,
        was: sameRowsAs(have.same, p.dstPitch, rowBytes.dst),
      });
      into.content = { key, seq: srcContent!.seq, rows: srcContent!.rows, same };
    }
    return out.subarray(0, simgpuResultBytes(op, p));
  }
  const out = simgpuTransform(op, src, p, into.get(size), { src: srcSame });
  if (key !== undefined) into.content = { key, seq: srcContent!.seq, rows: srcContent!.rows, same };
  return out;
}
