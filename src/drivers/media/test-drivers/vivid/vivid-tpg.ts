/**
 * The model's test pattern generator (in the spirit of drivers/media/common/v4l2-tpg/):
 * 75% colour bars with the frame's sequence number drawn into the image, so every frame
 * differs and a pipeline can check that it got the frame it thinks it got.
 *
 * The pattern is a pure function of the format and the sequence number, exported so a
 * test or a pipeline can compute the expected bytes independently of the device:
 *
 * - eight vertical bars, white yellow cyan green magenta red blue black (75% amplitude);
 * - a band across the top (height/8 lines, at least 1) of 32 equal blocks, block i white
 *   when bit 31-i of the sequence number is set, black otherwise;
 * - YUYV: BT.601 limited-range Y'CbCr, each pixel pair taking the chroma of its first
 *   pixel; XR24 (V4L2_PIX_FMT_XBGR32): bytes B, G, R, 0;
 * - every other format of vivid's single-planar list (./vivid-formats.ts) from the same
 *   colours: packed RGB, Y'CbCr and HSV words (alpha 255, X bits 0, each component's top
 *   bits), the other 4:2:2 byte orders, greyscale (Y' in the top bits of 10/12/16-bit
 *   words), Bayer mosaics (the pixel's own colour component), and planar and
 *   semi-planar Y'CbCr whose chroma sample is that of the block's top-left pixel; the
 *   chroma planes follow the Y plane, each `bytesperline * bits / 8 / hsub`-byte lines;
 * - the bytes between the line's pixels and `bytesperline`, and any after the planes
 *   up to vivid's sizeimage, are 0.
 *
 * The pictures are the model's, not Linux's v4l2-tpg's (which draws other patterns):
 * only the layout (which byte holds which sample) follows the V4L2 format.
 */

import { V4L2_PIX_FMT_XBGR32, V4L2_PIX_FMT_YUYV } from "../../../../include/uapi/videodev2.js";
import { differingSpan } from "../../../../lib/bytes.js";
import type { SameRows, ScratchBuffer } from "../../../../lib/scratch.js";
import {
  type TpgComponent,
  type TpgLayout,
  type VividFmt,
  vividGetFormat,
} from "./vivid-formats.js";

/** The format fields the pattern depends on. */
export interface TpgFormat {
  readonly width: number;
  readonly height: number;
  readonly bytesperline: number;
  readonly pixelformat: number;
}

/** 75% colour bars, RGB. */
const BARS: readonly (readonly [number, number, number])[] = [
  [191, 191, 191],
  [191, 191, 0],
  [0, 191, 191],
  [0, 191, 0],
  [191, 0, 191],
  [191, 0, 0],
  [0, 0, 191],
  [0, 0, 0],
];
const WHITE: readonly [number, number, number] = [235, 235, 235];
const BLACK: readonly [number, number, number] = [16, 16, 16];

/** The format's entry, for a format the model generates (vivid's single-planar list). */
function generated(pixelformat: number): VividFmt & { readonly layout: TpgLayout } {
  const f = vividGetFormat(pixelformat);
  if (f === undefined || f.layout === undefined)
    throw new RangeError(`vivid-tpg: pixel format 0x${pixelformat.toString(16)} is not generated`);
  return f as VividFmt & { readonly layout: TpgLayout };
}

/** Bytes per pixel of the first plane (bit_depth[0] / 8; 1 for the planar Y'CbCr formats). */
export function tpgBytesPerPixel(pixelformat: number): number {
  return generated(pixelformat).bitDepths[0]! / 8;
}

function ycbcr(rgb: readonly [number, number, number]): [number, number, number] {
  const [r, g, b] = rgb;
  const y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
  const cb = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
  const cr = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
  return [y, cb, cr];
}

/**
 * Writes one line of `color(x)` pixels into `out` at `off`. No array per pixel (a frame
 * is drawn a line or two at a time, but a 4K line is thousands of pixels, twice a frame):
 * the colours are the pattern's few constants, each converted to Y'CbCr once.
 */
function drawLine(
  out: Uint8Array,
  off: number,
  fmt: TpgFormat,
  color: (x: number) => readonly [number, number, number],
): void {
  const { width, pixelformat } = fmt;
  if (pixelformat === V4L2_PIX_FMT_YUYV) {
    for (let x = 0; x < width; x += 2) {
      const c0 = ycbcrOf(color(x));
      const c1 = x + 1 < width ? ycbcrOf(color(x + 1)) : c0;
      const o = off + x * 2;
      out[o] = c0[0];
      out[o + 1] = c0[1];
      if (x + 1 < width) {
        out[o + 2] = c1[0];
        out[o + 3] = c0[2];
      }
    }
  } else {
    for (let x = 0; x < width; x++) {
      const c = color(x);
      const o = off + x * 4;
      out[o] = c[2];
      out[o + 1] = c[1];
      out[o + 2] = c[0];
      out[o + 3] = 0;
    }
  }
}

/** {@link ycbcr} of each colour drawn, by the colour's (constant) array. */
const ycbcrOfColor = new Map<
  readonly [number, number, number],
  readonly [number, number, number]
>();

function ycbcrOf(rgb: readonly [number, number, number]): readonly [number, number, number] {
  let c = ycbcrOfColor.get(rgb);
  if (c === undefined) {
    c = ycbcr(rgb);
    if (ycbcrOfColor.size >= 64) ycbcrOfColor.clear();
    ycbcrOfColor.set(rgb, c);
  }
  return c;
}

/** Height of the sequence-number band. */
export function tpgBandLines(height: number): number {
  return Math.max(1, Math.floor(height / 8));
}

/**
 * The exact `bytesperline * height` bytes vivid's capture device writes for frame
 * `sequence` in format `fmt`, in a new array.
 */
export function vividTestPattern(fmt: TpgFormat, sequence: number): Uint8Array {
  return vividTestPatternInto(fmt, sequence, new Uint8Array(tpgFrameBytes(fmt)));
}

/**
 * Bytes of one frame of `fmt`: vivid's sizeimage on a single-planar device
 * (vivid_try_fmt_vid_cap: the first plane's `bytesperline * height / vdownsampling`
 * plus, for each further plane in the same buffer, `bytesperline * height *
 * (bit_depth / vdownsampling)` over the first plane's ratio). Checks that the format
 * can be generated and the line holds a row of pixels.
 */
export function tpgFrameBytes(fmt: TpgFormat): number {
  const f = generated(fmt.pixelformat);
  const min = Math.floor((fmt.width * f.bitDepths[0]!) / 8);
  if (fmt.bytesperline < min)
    throw new RangeError(`vivid-tpg: bytesperline ${fmt.bytesperline} is below ${min}`);
  return vividSizeimage(f, fmt.bytesperline, fmt.height);
}

/** sizeimage of a single-buffer format (the planes after the first in the same buffer). */
export function vividSizeimage(f: VividFmt, bytesperline: number, height: number): number {
  const bd = f.bitDepths;
  const vd = f.vdownsampling;
  let size = Math.floor((bytesperline * height) / vd[0]!);
  const first = Math.floor(bd[0]! / vd[0]!);
  for (let p = f.buffers; p < f.planes; p++)
    size += Math.floor((bytesperline * height * Math.floor(bd[p]! / vd[p]!)) / first);
  return size;
}

/**
 * The colour bars over the whole frame: one line drawn (its padding 0), copied down.
 * The bars do not depend on the sequence number; the band is drawn over them.
 */
function drawBars(frame: Uint8Array, fmt: TpgFormat): void {
  drawBarRows(frame, fmt, 0, fmt.height);
  frame.fill(0, fmt.height * fmt.bytesperline);
}

/** Lines `from` to `to` (exclusive) of the colour bars: one drawn (its padding 0), copied down. */
function drawBarRows(frame: Uint8Array, fmt: TpgFormat, from: number, to: number): void {
  const { bytesperline } = fmt;
  const at = from * bytesperline;
  frame.fill(0, at, at + bytesperline);
  drawLine(frame, at, fmt, barColor(fmt.width));
  for (let y = from + 1; y < to; y++) frame.copyWithin(y * bytesperline, at, at + bytesperline);
}

/**
 * {@link vividTestPattern} written into `out` (at least a frame long; every byte of the
 * frame is written): returns the frame's view of `out`.
 */
export function vividTestPatternInto(
  fmt: TpgFormat,
  sequence: number,
  out: Uint8Array,
): Uint8Array {
  const size = tpgFrameBytes(fmt);
  if (out.length < size)
    throw new RangeError(`vivid-tpg: ${out.length} bytes cannot hold a ${size}-byte frame`);
  const frame = out.subarray(0, size);
  const { width, height } = fmt;
  if (height === 0 || width === 0) {
    frame.fill(0);
    return frame;
  }
  if (fmt.pixelformat !== V4L2_PIX_FMT_YUYV && fmt.pixelformat !== V4L2_PIX_FMT_XBGR32)
    return drawGeneric(fmt, generated(fmt.pixelformat), sequence, frame);
  drawBars(frame, fmt);
  drawBand(frame, fmt, sequence);
  return frame;
}

/** Draws the sequence-number band of frame `sequence` over the top lines of a bars frame (YUYV, XBGR32). */
function drawBand(frame: Uint8Array, fmt: TpgFormat, sequence: number): void {
  const { height, bytesperline } = fmt;
  const band = Math.min(height, tpgBandLines(height));
  // The line's padding too: the band may be drawn over lines changed in place.
  frame.fill(0, 0, bytesperline);
  drawLine(frame, 0, fmt, bandColor(fmt.width, sequence));
  for (let y = 1; y < band; y++) frame.copyWithin(y * bytesperline, 0, bytesperline);
}

/** A band line drawn apart, to compare with the one in the frame (grown as needed). */
let bandLine = new Uint8Array(0);

/**
 * {@link drawBand} over a band whose lines from `intact` on hold another frame's band
 * line (in a band as drawn, every line): the new line is drawn apart and written whole
 * into the lines above `intact` (changed in place: their padding cleared too), and
 * into the others only where it differs from the old line (the blocks of the bits that
 * changed, from the first to the last). The same bytes as drawBand: a frame's band
 * differs from the last frame's in a block or two, and copying whole lines down a 4K
 * band is 4 MiB a frame.
 */
function redrawBand(frame: Uint8Array, fmt: TpgFormat, sequence: number, intact: number): void {
  const { width, height, bytesperline } = fmt;
  const band = Math.min(height, tpgBandLines(height));
  // drawLine writes the pixels, width * bpp bytes from the line's start; the rest is 0.
  const n = width * (fmt.pixelformat === V4L2_PIX_FMT_YUYV ? 2 : 4);
  if (bandLine.length < n) bandLine = new Uint8Array(n);
  const line = bandLine.subarray(0, n);
  drawLine(line, 0, fmt, bandColor(width, sequence));
  for (let y = 0; y < intact; y++) {
    frame.set(line, y * bytesperline);
    frame.fill(0, y * bytesperline + n, (y + 1) * bytesperline);
  }
  const { lo, hi } = differingSpan(line, 0, frame, intact * bytesperline, n);
  if (lo === n) return;
  const span = line.subarray(lo, hi);
  for (let y = intact; y < band; y++) frame.set(span, y * bytesperline + lo);
}

/** The content key of vivid's pattern in `fmt` (see ScratchContent): it varies with the sequence in its band only. */
function tpgContentKey(fmt: TpgFormat): string {
  return `vivid-tpg ${fmt.width}x${fmt.height}/${fmt.bytesperline}/${fmt.pixelformat}`;
}

/**
 * {@link vividTestPattern} in `buf`, made by changing what `buf` holds as little as it
 * takes: nothing when it already holds that frame, the band when it holds another frame
 * of the same format (the bars are the same in every frame), the whole frame otherwise.
 * The result is `buf`'s, valid until `buf` is used again, and must not be changed in
 * place unless `buf.forget()` is called. The bytes are exactly vividTestPattern's.
 */
export function vividTestPatternCached(
  fmt: TpgFormat,
  sequence: number,
  buf: ScratchBuffer,
): Uint8Array {
  const size = tpgFrameBytes(fmt);
  const banded =
    fmt.width > 0 &&
    fmt.height > 0 &&
    (fmt.pixelformat === V4L2_PIX_FMT_YUYV || fmt.pixelformat === V4L2_PIX_FMT_XBGR32);
  const key = tpgContentKey(fmt);
  const have = buf.content;
  if (banded && have !== undefined && have.key === key && buf.capacity >= size) {
    const frame = buf.peek(size);
    if (have.seq !== sequence >>> 0) {
      const band = Math.min(fmt.height, tpgBandLines(fmt.height));
      // The band lines that still hold a pattern's band line, from `intact` on: all of
      // them in a pattern as drawn, those below the rows a CPU changed in place
      // (ScratchBuffer.touchRows: a negative seq, and what was there before).
      const before = have.before;
      const intact =
        have.seq >= 0 ? 0 : before !== undefined && before.seq >= 0 ? before.from : band;
      if (intact < band) redrawBand(frame, fmt, sequence, intact);
      else drawBand(frame, fmt, sequence);
      // Rows below the band changed in place (a CPU's stamp, ScratchBuffer.touchRows): bars again.
      if (have.rows > band) drawBarRows(frame, fmt, band, Math.min(fmt.height, have.rows));
      buf.content = { key, seq: sequence >>> 0, rows: band, same: tpgSameLines(fmt) };
    }
    return frame;
  }
  const frame = vividTestPatternInto(fmt, sequence, buf.get(size));
  // Only the banded formats differ from frame to frame in their top rows alone (the
  // others' chroma planes carry the band too).
  if (banded)
    buf.content = {
      key,
      seq: sequence >>> 0,
      rows: Math.min(fmt.height, tpgBandLines(fmt.height)),
      same: tpgSameLines(fmt),
    };
  return frame;
}

/**
 * Which lines of {@link vividTestPattern} in `fmt` are the line above again, whatever
 * the sequence number (`same[y] !== 0`), as the drawing makes them: the band's lines
 * after its first and the bars' lines after theirs are copies (drawBand, drawBarRows).
 * For YUYV and XBGR32 (whose frame is its `height` lines); undefined for the other
 * formats, whose structure is not claimed. The array is shared: do not change it.
 */
export function tpgSameRows(fmt: TpgFormat): Uint8Array | undefined {
  const { width, height, pixelformat } = fmt;
  if (width <= 0 || height <= 0) return undefined;
  if (pixelformat !== V4L2_PIX_FMT_YUYV && pixelformat !== V4L2_PIX_FMT_XBGR32) return undefined;
  const key = `${tpgContentKey(fmt)} rows`;
  let same = sameRowsCache.get(key);
  if (same === undefined) {
    const band = Math.min(height, tpgBandLines(height));
    same = new Uint8Array(height).fill(1);
    same[0] = 0;
    if (band < height) same[band] = 0;
    if (sameRowsCache.size >= 8) sameRowsCache.delete(sameRowsCache.keys().next().value!);
    sameRowsCache.set(key, same);
  }
  return same;
}

/** {@link tpgSameRows} as a buffer's claim about its lines (whole `bytesperline` lines). */
function tpgSameLines(fmt: TpgFormat): SameRows | undefined {
  const same = tpgSameRows(fmt);
  return same === undefined
    ? undefined
    : { pitch: fmt.bytesperline, rowBytes: fmt.bytesperline, same };
}

/** {@link tpgSameRows} by format, the most recent few. */
const sameRowsCache = new Map<string, Uint8Array>();

/** The colour of pixel x of a bar line. */
function barColor(width: number): (x: number) => readonly [number, number, number] {
  return (x) => BARS[Math.min(7, Math.floor((x * 8) / width))]!;
}

/** The colour of pixel x of a band line of frame `sequence`. */
function bandColor(
  width: number,
  sequence: number,
): (x: number) => readonly [number, number, number] {
  const seq = sequence >>> 0;
  return (x) => ((seq >>> (31 - Math.min(31, Math.floor((x * 32) / width)))) & 1 ? WHITE : BLACK);
}

/** rgb → HSV, each 0..255 (hue in 256ths of the circle). */
function hsv(rgb: readonly [number, number, number]): [number, number, number] {
  const [r, g, b] = rgb;
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  if (d === 0) return [0, 0, max];
  let h: number;
  if (max === r) h = (g - b) / d;
  else if (max === g) h = 2 + (b - r) / d;
  else h = 4 + (r - g) / d;
  h = Math.round(((h < 0 ? h + 6 : h) * 256) / 6) & 0xff;
  return [h, Math.round((d * 255) / max), max];
}

/** An 8-bit component of a colour. */
function component(c: TpgComponent, rgb: readonly [number, number, number]): number {
  switch (c) {
    case "r":
      return rgb[0];
    case "g":
      return rgb[1];
    case "b":
      return rgb[2];
    case "a":
      return 255;
    case "y":
      return ycbcr(rgb)[0];
    case "u":
      return ycbcr(rgb)[1];
    case "v":
      return ycbcr(rgb)[2];
    case "h":
      return hsv(rgb)[0];
    case "s":
      return hsv(rgb)[1];
    case "w":
      return hsv(rgb)[2];
  }
}

/** An 8-bit value in a `bits`-wide field: its top bits, or shifted up. */
function scaleTo(v: number, bits: number): number {
  return bits <= 8 ? v >> (8 - bits) : v << (bits - 8);
}

/** Writes `bytes` bytes of `word` at `o`, little- or big-endian. */
function putWord(
  out: Uint8Array,
  o: number,
  word: number,
  bytes: number,
  bigEndian: boolean,
): void {
  for (let i = 0; i < bytes; i++) {
    const v = Math.floor(word / 2 ** (8 * i)) & 0xff;
    out[bigEndian ? o + bytes - 1 - i : o + i] = v;
  }
}

const BAYER_INDEX = { r: 0, g: 1, b: 2 } as const;

/**
 * One line of the first (or only) plane: `bytesperline` bytes, pixels then zeros.
 * `row` is the line's number (Bayer alternates its colours by line).
 */
function packedLine(
  f: VividFmt & { readonly layout: TpgLayout },
  width: number,
  bytesperline: number,
  row: number,
  color: (x: number) => readonly [number, number, number],
): Uint8Array {
  const line = new Uint8Array(bytesperline);
  const l = f.layout;
  if (l.kind === "word") {
    for (let x = 0; x < width; x++) {
      const c = color(x);
      let word = 0;
      for (const [comp, shift, bits] of l.fields)
        word += scaleTo(component(comp, c), bits) * 2 ** shift;
      putWord(line, x * l.bytes, word, l.bytes, l.bigEndian);
    }
  } else if (l.kind === "yuv422") {
    for (let x = 0; x < width; x += 2) {
      const [y0, u, v] = ycbcr(color(x));
      const y1 = x + 1 < width ? ycbcr(color(x + 1))[0] : y0;
      const o = x * 2;
      for (let i = 0; i < 4; i++) {
        const ch = l.order[i];
        line[o + i] = ch === "U" ? u : ch === "V" ? v : i === l.order.indexOf("Y") ? y0 : y1;
      }
    }
  } else if (l.kind === "bayer") {
    const bytes = l.bits > 8 ? 2 : 1;
    for (let x = 0; x < width; x++) {
      const ch = l.order[(row & 1) * 2 + (x & 1)]!.toLowerCase() as "r" | "g" | "b";
      putWord(line, x * bytes, scaleTo(color(x)[BAYER_INDEX[ch]], l.bits), bytes, false);
    }
  } else {
    for (let x = 0; x < width; x++) line[x] = ycbcr(color(x))[0];
  }
  return line;
}

/** One line of the chroma plane(s) of a planar or semi-planar format. */
function chromaLines(
  l: TpgLayout & { kind: "planar" | "semi" },
  width: number,
  stride: number,
  color: (x: number) => readonly [number, number, number],
): Uint8Array[] {
  const n = Math.ceil(width / l.hsub);
  if (l.kind === "semi") {
    const line = new Uint8Array(stride);
    for (let i = 0; i < n && 2 * i + 1 < stride; i++) {
      const [, u, v] = ycbcr(color(i * l.hsub));
      line[2 * i] = l.swapUV ? v : u;
      line[2 * i + 1] = l.swapUV ? u : v;
    }
    return [line];
  }
  const cb = new Uint8Array(stride);
  const cr = new Uint8Array(stride);
  for (let i = 0; i < n && i < stride; i++) {
    const [, u, v] = ycbcr(color(i * l.hsub));
    cb[i] = u;
    cr[i] = v;
  }
  return l.swapUV ? [cr, cb] : [cb, cr];
}

/** Every format but YUYV and XBGR32 (whose templates keep their original, faster path). */
function drawGeneric(
  fmt: TpgFormat,
  f: VividFmt & { readonly layout: TpgLayout },
  sequence: number,
  frame: Uint8Array,
): Uint8Array {
  const { width, height, bytesperline } = fmt;
  const band = Math.min(height, tpgBandLines(height));
  const colors = [barColor(width), bandColor(width, sequence)] as const;
  const kindOf = (y: number): 0 | 1 => (y < band ? 1 : 0);
  frame.fill(0);
  // The first plane: one line per (kind, parity), copied down.
  const lines = new Map<number, Uint8Array>();
  for (let y = 0; y < height; y++) {
    const key = kindOf(y) * 2 + (y & 1);
    let line = lines.get(key);
    if (line === undefined) {
      line = packedLine(f, width, bytesperline, y, colors[kindOf(y)]);
      lines.set(key, line);
    }
    frame.set(line, y * bytesperline);
  }
  const l = f.layout;
  if (l.kind !== "planar" && l.kind !== "semi") return frame;
  // The chroma planes after the Y plane; chroma line cy samples luma line cy * vsub.
  const stride = Math.floor((bytesperline * (l.kind === "semi" ? 2 : 1)) / l.hsub);
  const rows = Math.floor(height / l.vsub);
  const chroma = [0, 1].map((k) => chromaLines(l, width, stride, colors[k as 0 | 1]));
  let off = bytesperline * height;
  for (let plane = 0; plane < chroma[0]!.length; plane++) {
    for (let cy = 0; cy < rows; cy++) {
      const line = chroma[kindOf(cy * l.vsub)]![plane]!;
      if (off + stride > frame.length) return frame;
      frame.set(line, off);
      off += stride;
    }
  }
  return frame;
}

/** Reads the sequence number back out of a frame's band (for checks and demos). */
export function tpgDecodeSequence(fmt: TpgFormat, frame: Uint8Array): number {
  if (fmt.pixelformat !== V4L2_PIX_FMT_YUYV && fmt.pixelformat !== V4L2_PIX_FMT_XBGR32)
    throw new RangeError("vivid-tpg: the sequence is read back from YUYV and XBGR32 frames only");
  const bpp = tpgBytesPerPixel(fmt.pixelformat);
  let seq = 0;
  for (let i = 0; i < 32; i++) {
    const x = Math.min(fmt.width - 1, Math.floor(((i + 0.5) * fmt.width) / 32));
    // Y of YUYV, or G of BGRX: either is 235 for white and 16 for black.
    const v = fmt.pixelformat === V4L2_PIX_FMT_YUYV ? frame[x * 2]! : frame[x * bpp + 1]!;
    seq = (seq << 1) | (v > 128 ? 1 : 0);
  }
  return seq >>> 0;
}
