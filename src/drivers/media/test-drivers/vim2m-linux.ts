/**
 * vim2m exactly as Linux 6.12's drivers/media/test-drivers/vim2m.c offers it, for the
 * conformance suite: its formats[] (RGB565, RGB565X, RGB24 and BGR24 on both queues;
 * YUYV and the four 8-bit Bayer orders on CAPTURE only), its limits (32x32 to 640x480,
 * even widths, even heights for Bayer), bytesperline always `width * depth / 8`,
 * sizeimage `bytesperline * height`, Rec. 709 colorimetry, RGB565 640x480 for a new
 * file, and device_process()'s computation: a plain copy of each line when format and
 * size match, otherwise pixel pairs through RGB with the Bresenham horizontal scaler.
 *
 * The model's default vim2m (./vim2m.ts) stays what the pipelines use (YUYV and XR24 on
 * both queues, sizes to 8192); `vim2mProbe(host, { formats: "linux" })` gives this one.
 * As the default, the device is a DMA master reading and writing the buffers by DMA
 * (vim2m computes with the CPU through vb2-vmalloc), and hflip/vflip and the
 * transaction-time controls are not modelled (no flip; a job lasts its two transfers).
 */

import { KernelError } from "../../../errno.js";
import {
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_COLORSPACE_REC709,
  V4L2_PIX_FMT_RGB24,
  V4L2_PIX_FMT_YUYV,
  V4L2_TYPE_IS_OUTPUT,
  v4l2FourccCode,
} from "../../../include/uapi/videodev2.js";
import type { M2mDriverDesc, M2mFormatDesc, M2mFormatRequest, M2mPixFormat } from "./m2m-common.js";

/** struct vim2m_fmt: depth in bits, and whether OUTPUT takes it too (MEM2MEM_OUTPUT). */
interface Vim2mFmt extends M2mFormatDesc {
  readonly depth: number;
  readonly output: boolean;
  readonly bayer: boolean;
}

const RGB565 = v4l2FourccCode("RGBP");
const RGB565X = v4l2FourccCode("RGBR");
const BGR24 = v4l2FourccCode("BGR3");

const fmt = (
  code: number | string,
  depth: number,
  output: boolean,
  description: string,
): Vim2mFmt => ({
  fourcc: typeof code === "number" ? code : v4l2FourccCode(code),
  depth,
  output,
  bayer: depth === 8,
  description,
});

/** vim2m.c formats[], in its order (descriptions: v4l_fill_fmtdesc). */
export const VIM2M_LINUX_FORMATS: readonly Vim2mFmt[] = [
  fmt(RGB565, 16, true, "16-bit RGB 5-6-5"),
  fmt(RGB565X, 16, true, "16-bit RGB 5-6-5 BE"),
  fmt(V4L2_PIX_FMT_RGB24, 24, true, "24-bit RGB 8-8-8"),
  fmt(BGR24, 24, true, "24-bit BGR 8-8-8"),
  fmt(V4L2_PIX_FMT_YUYV, 16, false, "YUYV 4:2:2"),
  fmt("BA81", 8, false, "8-bit Bayer BGBG/GRGR"),
  fmt("GBRG", 8, false, "8-bit Bayer GBGB/RGRG"),
  fmt("GRBG", 8, false, "8-bit Bayer GRGR/BGBG"),
  fmt("RGGB", 8, false, "8-bit Bayer RGRG/GBGB"),
];

const MIN_W = 32;
const MIN_H = 32;
const MAX_W = 640;
const MAX_H = 480;

function find(fourcc: number): Vim2mFmt | undefined {
  return VIM2M_LINUX_FORMATS.find((f) => f.fourcc === fourcc);
}

function depthOf(fourcc: number): number {
  return find(fourcc)!.depth;
}

/**
 * vidioc_try_fmt_vid_cap/out + vidioc_try_fmt(): an unknown fourcc becomes formats[0]
 * (RGB565); one the queue does not take is EINVAL; the size is clamped and aligned
 * (get_alignment: 2 pixels wide, 2 lines high for Bayer); no custom bytesperline.
 */
export function vim2mLinuxTryFmt(type: number, req: M2mFormatRequest): M2mPixFormat {
  let f = find(req.pixelformat);
  if (f === undefined) f = VIM2M_LINUX_FORMATS[0]!;
  if (V4L2_TYPE_IS_OUTPUT(type) && !f.output)
    throw new KernelError("EINVAL", `vim2m: fourcc 0x${f.fourcc.toString(16)} is capture only`);
  let width = Math.min(Math.max(req.width, MIN_W), MAX_W);
  let height = Math.min(Math.max(req.height, MIN_H), MAX_H);
  width &= ~1;
  if (f.bayer) height &= ~1;
  const bytesperline = (width * f.depth) >> 3;
  return { width, height, pixelformat: f.fourcc, bytesperline, sizeimage: height * bytesperline };
}

/** The RGB of a source pixel at byte `o` (copy_two_pixels' first switch). */
function readRgb(src: Uint8Array, fourcc: number, o: number): [number, number, number] {
  if (fourcc === RGB565 || fourcc === RGB565X) {
    const pix = fourcc === RGB565 ? src[o]! | (src[o + 1]! << 8) : (src[o]! << 8) | src[o + 1]!;
    return [
      ((((pix & 0xf800) >> 11) << 3) | 0x07) & 0xff,
      ((((pix & 0x07e0) >> 5) << 2) | 0x03) & 0xff,
      (((pix & 0x1f) << 3) | 0x07) & 0xff,
    ];
  }
  if (fourcc === BGR24) return [src[o + 2]!, src[o + 1]!, src[o]!];
  return [src[o]!, src[o + 1]!, src[o + 2]!];
}

/** The Bayer component each of a pair takes, on even and odd lines. */
const BAYER: Record<string, readonly [readonly [number, number], readonly [number, number]]> = {
  BA81: [
    [2, 1],
    [1, 0],
  ],
  GBRG: [
    [1, 2],
    [0, 1],
  ],
  GRBG: [
    [1, 0],
    [2, 1],
  ],
  RGGB: [
    [0, 1],
    [1, 2],
  ],
};

/** copy_two_pixels()'s second switch: writes a pair at `o`; returns the bytes written. */
function writePair(
  dst: Uint8Array,
  o: number,
  fourcc: number,
  p: readonly [readonly [number, number, number], readonly [number, number, number]],
  ypos: number,
): number {
  if (fourcc === RGB565 || fourcc === RGB565X) {
    for (let i = 0; i < 2; i++) {
      const [r, g, b] = p[i]!;
      const pix = ((r << 8) & 0xf800) | ((g << 3) & 0x07e0) | (b >> 3);
      dst[o + 2 * i] = fourcc === RGB565 ? pix & 0xff : pix >> 8;
      dst[o + 2 * i + 1] = fourcc === RGB565 ? pix >> 8 : pix & 0xff;
    }
    return 4;
  }
  if (fourcc === V4L2_PIX_FMT_RGB24 || fourcc === BGR24) {
    for (let i = 0; i < 2; i++) {
      const [r, g, b] = p[i]!;
      const [a, c] = fourcc === V4L2_PIX_FMT_RGB24 ? [r, b] : [b, r];
      dst.set([a, g, c], o + 3 * i);
    }
    return 6;
  }
  const code = String.fromCharCode(
    fourcc & 0xff,
    (fourcc >> 8) & 0xff,
    (fourcc >> 16) & 0xff,
    fourcc >>> 24,
  );
  const bayer = BAYER[code];
  if (bayer !== undefined) {
    const [c0, c1] = bayer[ypos & 1]!;
    dst[o] = p[0][c0]!;
    dst[o + 1] = p[1][c1]!;
    return 2;
  }
  // YUYV: the first pixel's Y, U and V, the second's Y.
  const [r, g, b] = p[0];
  const [r1, g1, b1] = p[1];
  dst[o] = ((8453 * r + 16594 * g + 3223 * b + 524288) >> 15) & 0xff;
  dst[o + 1] = ((-4878 * r - 9578 * g + 14456 * b + 4210688) >> 15) & 0xff;
  dst[o + 2] = ((8453 * r1 + 16594 * g1 + 3223 * b1 + 524288) >> 15) & 0xff;
  dst[o + 3] = ((14456 * r - 12105 * g - 2351 * b + 4210688) >> 15) & 0xff;
  return 4;
}

/**
 * device_process() without flips: `cap.sizeimage` bytes. Identical format and size
 * copies each line's pixels; otherwise each destination line y samples source line
 * `y * H_in / H_out` and each pair of destination pixels two source pixels stepped by
 * the Bresenham scaler, converted through RGB.
 */
export function vim2mLinuxProcess(
  src: Uint8Array,
  out: M2mPixFormat,
  cap: M2mPixFormat,
): Uint8Array {
  const dst = new Uint8Array(cap.sizeimage);
  const inDepth = depthOf(out.pixelformat);
  const bpl = (out.width * inDepth) >> 3;
  const bpp = inDepth >> 3;
  if (out.pixelformat === cap.pixelformat && out.width === cap.width && out.height === cap.height) {
    for (let y = 0; y < cap.height; y++)
      dst.set(src.subarray(y * bpl, y * bpl + ((cap.width * inDepth) >> 3)), y * bpl);
    return dst;
  }
  const width = cap.width;
  const xInt = Math.floor(out.width / width);
  const xFract = out.width % width;
  let o = 0;
  for (let y = 0; y < cap.height; y++) {
    const line = Math.floor((y * out.height) / cap.height) * bpl;
    let xOffset = 0;
    let xErr = 0;
    let p0 = line;
    for (let x = 0; x < width >> 1; x++) {
      xOffset += xInt;
      xErr += xFract;
      if (xErr > width) {
        xOffset++;
        xErr -= width;
      }
      const p1 = line + xOffset * bpp;
      o += writePair(
        dst,
        o,
        cap.pixelformat,
        [readRgb(src, out.pixelformat, p0), readRgb(src, out.pixelformat, p1)],
        y,
      );
      xOffset += xInt;
      xErr += xFract;
      if (xErr > width) {
        xOffset++;
        xErr -= width;
      }
      p0 = line + xOffset * bpp;
    }
  }
  return dst;
}

/** Linux's vim2m as an m2m test driver description. */
export const VIM2M_LINUX: M2mDriverDesc = {
  driver: "vim2m",
  card: "vim2m",
  busInfo: "platform:vim2m",
  outputFormats: VIM2M_LINUX_FORMATS.filter((f) => f.output),
  captureFormats: VIM2M_LINUX_FORMATS,
  colorspace: V4L2_COLORSPACE_REC709,
  defaults: () => {
    const f = vim2mLinuxTryFmt(V4L2_BUF_TYPE_VIDEO_OUTPUT, {
      width: 640,
      height: 480,
      pixelformat: RGB565,
      bytesperline: 0,
    });
    return { out: f, cap: f };
  },
  tryFmt: (type, req) => vim2mLinuxTryFmt(type, req),
  process: vim2mLinuxProcess,
};
