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
 * - the bytes between the line's pixels and `bytesperline` are 0.
 */

import { V4L2_PIX_FMT_XBGR32, V4L2_PIX_FMT_YUYV } from "../../../../include/uapi/videodev2.js";

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

/** Bytes per pixel of the formats the model generates. */
export function tpgBytesPerPixel(pixelformat: number): number {
  if (pixelformat === V4L2_PIX_FMT_YUYV) return 2;
  if (pixelformat === V4L2_PIX_FMT_XBGR32) return 4;
  throw new RangeError(`vivid-tpg: pixel format 0x${pixelformat.toString(16)} is not generated`);
}

function ycbcr(rgb: readonly [number, number, number]): [number, number, number] {
  const [r, g, b] = rgb;
  const y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
  const cb = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
  const cr = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
  return [y, cb, cr];
}

/** Writes one line of `color(x)` pixels into `out` at `off`. */
function drawLine(
  out: Uint8Array,
  off: number,
  fmt: TpgFormat,
  color: (x: number) => readonly [number, number, number],
): void {
  const { width, pixelformat } = fmt;
  if (pixelformat === V4L2_PIX_FMT_YUYV) {
    for (let x = 0; x < width; x += 2) {
      const c0 = color(x);
      const c1 = x + 1 < width ? color(x + 1) : c0;
      const [y0, cb, cr] = ycbcr(c0);
      const y1 = ycbcr(c1)[0];
      const o = off + x * 2;
      out[o] = y0;
      out[o + 1] = cb;
      if (x + 1 < width) {
        out[o + 2] = y1;
        out[o + 3] = cr;
      }
    }
  } else {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = color(x);
      const o = off + x * 4;
      out[o] = b;
      out[o + 1] = g;
      out[o + 2] = r;
      out[o + 3] = 0;
    }
  }
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

/** Bytes of one frame of `fmt` (and a check that the format can be generated). */
function tpgFrameBytes(fmt: TpgFormat): number {
  const bpp = tpgBytesPerPixel(fmt.pixelformat);
  if (fmt.bytesperline < fmt.width * bpp)
    throw new RangeError(`vivid-tpg: bytesperline ${fmt.bytesperline} is below ${fmt.width * bpp}`);
  return fmt.bytesperline * fmt.height;
}

/**
 * Frames of colour bars by format and geometry, the most recent few. The bars do not
 * depend on the sequence number: a frame is this template with its band drawn in, so
 * the per-frame work is one copy and the band, not the whole pattern.
 */
const templates = new Map<string, Uint8Array>();
const TEMPLATES_KEPT = 2;

function barsTemplate(fmt: TpgFormat, size: number): Uint8Array {
  const key = `${fmt.width}x${fmt.height}/${fmt.bytesperline}/${fmt.pixelformat}`;
  const have = templates.get(key);
  if (have !== undefined) return have;
  const out = new Uint8Array(size);
  // The bars: draw one line, copy it down.
  const barOf = (x: number): readonly [number, number, number] =>
    BARS[Math.min(7, Math.floor((x * 8) / fmt.width))]!;
  drawLine(out, 0, fmt, barOf);
  for (let y = 1; y < fmt.height; y++) out.copyWithin(y * fmt.bytesperline, 0, fmt.bytesperline);
  if (templates.size >= TEMPLATES_KEPT) templates.delete(templates.keys().next().value!);
  templates.set(key, out);
  return out;
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
  const { width, height, bytesperline } = fmt;
  if (height === 0 || width === 0) {
    frame.fill(0);
    return frame;
  }
  frame.set(barsTemplate(fmt, size));
  const band = Math.min(height, tpgBandLines(height));
  const seq = sequence >>> 0;
  const bit = (x: number): readonly [number, number, number] => {
    const i = Math.min(31, Math.floor((x * 32) / width));
    return (seq >>> (31 - i)) & 1 ? WHITE : BLACK;
  };
  drawLine(frame, 0, fmt, bit);
  for (let y = 1; y < band; y++) frame.copyWithin(y * bytesperline, 0, bytesperline);
  return frame;
}

/** Reads the sequence number back out of a frame's band (for checks and demos). */
export function tpgDecodeSequence(fmt: TpgFormat, frame: Uint8Array): number {
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
