/**
 * vim2m, the Virtual Memory-to-Memory driver (drivers/media/test-drivers/vim2m.c), as a
 * DMA device: an ISP/scaler block that converts between pixel formats and scales with
 * nearest-neighbour sampling, one frame per job, through the mem2mem framework
 * (v4l2-mem2mem.ts, m2m-common.ts).
 *
 * As vim2m: one /dev/videoN node with V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING, driver
 * and card "vim2m", bus_info "platform:vim2m"; formats per open file (q_data), the
 * capture size independent of the output size (the scaler), V4L2_BUF_FLAG_TIMESTAMP_COPY
 * with the source's timestamp copied to the destination, and the source and destination
 * buffers finished together.
 *
 * Where it differs, and why:
 * - It is a DMA master that reads the source and writes the destination by DMA (vim2m
 *   computes with the CPU through vb2-vmalloc): the point of the model is the buffer
 *   sharing. Its queues use vb2-dma-contig (or dma-sg), offer MMAP (+EXPBUF) and DMABUF.
 * - Formats: YUYV, XR24 (XBGR32) and RGB3 (RGB24) on both queues — the model's camera
 *   and display formats — instead of vim2m's RGB565/RGB24/BGR24 (+YUYV and Bayer on
 *   capture). Sizes: even widths 16..8192, heights 16..8192 (vim2m stops at 640x480),
 *   bytesperline may be larger than a line (padding is kept, as vivid does).
 * - No hflip/vflip controls, no transtime: a job lasts as long as its two DMA transfers
 *   take on the device's bandwidth and setup cost.
 *
 * {@link vim2mProcess} is the device's computation as a pure function, so a pipeline can
 * compute what a destination buffer must hold apart from the machine.
 */

import { KernelError } from "../../../errno.js";
import {
  V4L2_PIX_FMT_RGB24,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
} from "../../../include/uapi/videodev2.js";
import { bt601ToXrgb } from "../../gpu/drm/simgpu/simgpu.js";
import type { DriverHost } from "../../host.js";
import {
  type M2mDriverDesc,
  type M2mDriverOptions,
  type M2mFormatDesc,
  type M2mFormatRequest,
  type M2mPixFormat,
  type M2mTestDevice,
  m2mTestProbe,
} from "./m2m-common.js";
import { VIM2M_LINUX } from "./vim2m-linux.js";

/** The formats both queues offer. */
export const VIM2M_FORMATS: readonly M2mFormatDesc[] = [
  { fourcc: V4L2_PIX_FMT_YUYV, description: "YUYV 4:2:2" },
  { fourcc: V4L2_PIX_FMT_XBGR32, description: "32-bit BGRX 8-8-8-8" },
  { fourcc: V4L2_PIX_FMT_RGB24, description: "24-bit RGB 8-8-8" },
];

const MIN_W = 16;
const MAX_W = 8192;
const MIN_H = 16;
const MAX_H = 8192;

/** Bytes per pixel of a vim2m format (YUYV: 2, a pixel pair sharing its chroma). */
export function vim2mBytesPerPixel(pixelformat: number): number {
  if (pixelformat === V4L2_PIX_FMT_YUYV) return 2;
  if (pixelformat === V4L2_PIX_FMT_XBGR32) return 4;
  if (pixelformat === V4L2_PIX_FMT_RGB24) return 3;
  throw new KernelError(
    "EINVAL",
    `vim2m: pixel format 0x${pixelformat.toString(16)} not supported`,
  );
}

/**
 * vim2m_try_fmt(): an unknown pixel format becomes the queue's first (YUYV), the size is
 * clamped to the limits (even widths), bytesperline is at least a line, sizeimage =
 * bytesperline * height.
 */
export function vim2mTryFmt(req: M2mFormatRequest): M2mPixFormat {
  const pixelformat = VIM2M_FORMATS.some((f) => f.fourcc === req.pixelformat)
    ? req.pixelformat
    : V4L2_PIX_FMT_YUYV;
  const width = Math.min(Math.max(req.width & ~1, MIN_W), MAX_W);
  const height = Math.min(Math.max(req.height, MIN_H), MAX_H);
  const line = width * vim2mBytesPerPixel(pixelformat);
  const bytesperline = Math.min(Math.max(req.bytesperline, line), line * 4);
  return { width, height, pixelformat, bytesperline, sizeimage: bytesperline * height };
}

/** BT.601 limited-range RGB to Y, Cb, Cr (the integer form vivid's test pattern uses). */
export function rgbToYcbcr601(r: number, g: number, b: number): [number, number, number] {
  return [
    ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16,
    ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128,
    ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128,
  ];
}

/** Nearest-neighbour source coordinate of each destination coordinate. */
function nearest(dst: number, src: number): Int32Array {
  const map = new Int32Array(dst);
  for (let i = 0; i < dst; i++) map[i] = Math.floor((i * src) / dst);
  return map;
}

/** Reads source pixel (x, row at `rowOff`) as 0xXXRRGGBB. */
function readRgb(src: Uint8Array, fourcc: number, rowOff: number, x: number): number {
  if (fourcc === V4L2_PIX_FMT_XBGR32) {
    const o = rowOff + x * 4;
    return ((src[o + 2]! << 16) | (src[o + 1]! << 8) | src[o]!) >>> 0;
  }
  if (fourcc === V4L2_PIX_FMT_RGB24) {
    const o = rowOff + x * 3;
    return ((src[o]! << 16) | (src[o + 1]! << 8) | src[o + 2]!) >>> 0;
  }
  const pair = rowOff + (x >> 1) * 4;
  return bt601ToXrgb(src[pair + (x & 1) * 2]!, src[pair + 1]!, src[pair + 3]!);
}

/**
 * What vim2m writes into the destination for one source frame: `cap.sizeimage` bytes,
 * each line's pixels then zero padding up to bytesperline.
 *
 * Every destination pixel (x, y) samples source pixel (floor(x * W_out / W_cap),
 * floor(y * H_out / H_cap)). Equal formats copy the sampled bytes (YUYV takes the two
 * lumas it samples and the chroma of the first one's pair); otherwise pixels go through
 * RGB: YUYV is read with BT.601 limited range (as simgpu's conversion), XR24 is written
 * B, G, R, 0xff, and a YUYV destination pair gets each pixel's luma and the chroma of
 * the two pixels' mean RGB.
 */
export function vim2mProcess(src: Uint8Array, out: M2mPixFormat, cap: M2mPixFormat): Uint8Array {
  const dst = new Uint8Array(cap.sizeimage);
  const xs = nearest(cap.width, out.width);
  const ys = nearest(cap.height, out.height);
  const sf = out.pixelformat;
  const df = cap.pixelformat;
  for (let y = 0; y < cap.height; y++) {
    const so = ys[y]! * out.bytesperline;
    const d = y * cap.bytesperline;
    if (sf === df && sf === V4L2_PIX_FMT_YUYV) {
      for (let x = 0; x < cap.width; x += 2) {
        const s0 = xs[x]!;
        const s1 = xs[x + 1]!;
        const pair = so + (s0 >> 1) * 4;
        const o = d + x * 2;
        dst[o] = src[pair + (s0 & 1) * 2]!;
        dst[o + 1] = src[pair + 1]!;
        dst[o + 2] = src[so + (s1 >> 1) * 4 + (s1 & 1) * 2]!;
        dst[o + 3] = src[pair + 3]!;
      }
    } else if (sf === df) {
      const bpp = vim2mBytesPerPixel(sf);
      for (let x = 0; x < cap.width; x++) {
        const s = so + xs[x]! * bpp;
        dst.set(src.subarray(s, s + bpp), d + x * bpp);
      }
    } else if (df === V4L2_PIX_FMT_YUYV) {
      for (let x = 0; x < cap.width; x += 2) {
        const a = readRgb(src, sf, so, xs[x]!);
        const b = readRgb(src, sf, so, xs[x + 1]!);
        const ya = rgbToYcbcr601((a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff)[0];
        const yb = rgbToYcbcr601((b >>> 16) & 0xff, (b >>> 8) & 0xff, b & 0xff)[0];
        const [, cb, cr] = rgbToYcbcr601(
          (((a >>> 16) & 0xff) + ((b >>> 16) & 0xff)) >> 1,
          (((a >>> 8) & 0xff) + ((b >>> 8) & 0xff)) >> 1,
          ((a & 0xff) + (b & 0xff)) >> 1,
        );
        const o = d + x * 2;
        dst[o] = ya;
        dst[o + 1] = cb;
        dst[o + 2] = yb;
        dst[o + 3] = cr;
      }
    } else {
      const bpp = vim2mBytesPerPixel(df);
      for (let x = 0; x < cap.width; x++) {
        const c = readRgb(src, sf, so, xs[x]!);
        const o = d + x * bpp;
        if (df === V4L2_PIX_FMT_XBGR32) {
          dst[o] = c & 0xff;
          dst[o + 1] = (c >>> 8) & 0xff;
          dst[o + 2] = (c >>> 16) & 0xff;
          dst[o + 3] = 0xff;
        } else {
          dst[o] = (c >>> 16) & 0xff;
          dst[o + 1] = (c >>> 8) & 0xff;
          dst[o + 2] = c & 0xff;
        }
      }
    }
  }
  return dst;
}

/** vim2m as an m2m test driver. */
export const VIM2M: M2mDriverDesc = {
  driver: "vim2m",
  card: "vim2m",
  busInfo: "platform:vim2m",
  outputFormats: VIM2M_FORMATS,
  captureFormats: VIM2M_FORMATS,
  defaults: () => {
    const f = vim2mTryFmt({
      width: 640,
      height: 480,
      pixelformat: V4L2_PIX_FMT_XBGR32,
      bytesperline: 0,
    });
    return { out: f, cap: f };
  },
  tryFmt: (_type, req) => vim2mTryFmt(req),
  process: vim2mProcess,
};

/** Options of one vim2m instance. */
export interface Vim2mOptions extends M2mDriverOptions {
  /**
   * "model" (default): the formats and sizes above, for pipelines. "linux": exactly
   * Linux 6.12's formats, limits and computation (./vim2m-linux.ts), as the
   * conformance suite checks them.
   */
  readonly formats?: "model" | "linux";
}

/** A probed vim2m (its node, DMA master, m2m device and open contexts). */
export type Vim2m = M2mTestDevice;

/**
 * vim2m_probe(): one ISP/scaler per call, on the lowest free /dev/videoN, its DMA master
 * named "vim2m", "vim2m-1"... unless `options.name` says otherwise.
 */
export function vim2mProbe(host: DriverHost, options: Vim2mOptions = {}): Vim2m {
  return m2mTestProbe(host, options.formats === "linux" ? VIM2M_LINUX : VIM2M, options);
}
