/**
 * A frame's rows as DMA segments: what a device that moves a frame row by row (a GPU
 * job's source and result, a display's scanout) walks, one bus access per segment.
 * Built in one pass over the buffer's segments, and kept per buffer and geometry: a
 * pipeline hands a device the same few buffers frame after frame, and a list of
 * thousands of rows per job or flip is work and garbage that only depends on them.
 */

import type { DmaSegment } from "../machine/device.js";

/**
 * The DMA segments of `height` rows of `rowBytes` bytes, `pitch` apart from byte `base`
 * of a buffer laid over `segs`, appended to `out` in order: for each row, exactly what
 * dmaSegmentsSlice gives for `[base + y * pitch, +rowBytes)` (a row past the buffer's
 * end cut short or left out), in one pass over `segs` instead of one per row.
 */
export function dmaRowSegments(
  segs: readonly DmaSegment[],
  base: number,
  pitch: number,
  rowBytes: number,
  height: number,
  out: DmaSegment[] = [],
): DmaSegment[] {
  // segs[i] starts at byte `pos` of the buffer: the first segment a row can touch
  // (rows start at non-decreasing offsets).
  let i = 0;
  let pos = 0;
  for (let y = 0; y < height; y++) {
    const offset = base + y * pitch;
    const end = offset + rowBytes;
    while (i < segs.length && pos + segs[i]!.len <= offset) {
      pos += segs[i]!.len;
      i++;
    }
    for (let j = i, p = pos; j < segs.length && p < end; j++) {
      const s = segs[j]!;
      const sEnd = p + s.len;
      if (sEnd > offset) {
        const a = Math.max(offset, p);
        out.push({ dmaAddr: s.dmaAddr + (a - p), len: Math.min(end, sEnd) - a });
      }
      p = sEnd;
    }
  }
  return out;
}

interface RowList {
  readonly segs: readonly DmaSegment[];
  readonly base: number;
  readonly pitch: number;
  readonly rowBytes: number;
  readonly height: number;
  readonly rows: readonly DmaSegment[];
}

/**
 * {@link dmaRowSegments} of the last few buffers and geometries a device was asked for
 * (the most recently used first): the same list (the same array) while the buffer's
 * segments, compared entry by entry, and the geometry are the same. Callers must not
 * change a list they are given.
 */
export class DmaRowLists {
  readonly #lists: RowList[] = [];

  /** @param max buffers and geometries kept (a pipeline's buffers per device, with room) */
  constructor(readonly max = 16) {}

  rows(
    segs: readonly DmaSegment[],
    base: number,
    pitch: number,
    rowBytes: number,
    height: number,
  ): readonly DmaSegment[] {
    const lists = this.#lists;
    for (let k = 0; k < lists.length; k++) {
      const c = lists[k]!;
      if (
        c.base === base &&
        c.pitch === pitch &&
        c.rowBytes === rowBytes &&
        c.height === height &&
        sameSegments(c.segs, segs)
      ) {
        if (k > 0) {
          lists.splice(k, 1);
          lists.unshift(c);
        }
        return c.rows;
      }
    }
    const rows = dmaRowSegments(segs, base, pitch, rowBytes, height);
    // A copy of the segments: the caller's array may change after this.
    const copy = segs.map((s) => ({ dmaAddr: s.dmaAddr, len: s.len }));
    lists.unshift({ segs: copy, base, pitch, rowBytes, height, rows });
    if (lists.length > this.max) lists.length = this.max;
    return rows;
  }
}

function sameSegments(a: readonly DmaSegment[], b: readonly DmaSegment[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.dmaAddr !== y.dmaAddr || x.len !== y.len) return false;
  }
  return true;
}
