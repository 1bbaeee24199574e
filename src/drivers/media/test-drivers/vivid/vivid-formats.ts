/**
 * vivid's format list (drivers/media/test-drivers/vivid/vivid-vid-common.c
 * vivid_formats[], Linux 6.12): the 93 formats in vivid's order with what its
 * TRY_FMT and ENUM_FMT use (bit depth and vertical subsampling per plane, colour
 * encoding, planes in the buffer, buffers), the description ENUM_FMT returns
 * (drivers/media/v4l2-core/v4l2-ioctl.c v4l_fill_fmtdesc), and how the model's test
 * pattern generator lays out a pixel (./vivid-tpg.ts). The last ten need a
 * multi-planar device (one buffer per plane); the model's vivid is single-planar, as
 * Linux's by default (multiplanar=1), so they are never enumerated or chosen.
 */

import {
  V4L2_FMT_FLAG_CSC_COLORSPACE,
  V4L2_FMT_FLAG_CSC_HSV_ENC,
  V4L2_FMT_FLAG_CSC_QUANTIZATION,
  V4L2_FMT_FLAG_CSC_XFER_FUNC,
  V4L2_FMT_FLAG_CSC_YCBCR_ENC,
  v4l2FourccCode,
} from "../../../../include/uapi/videodev2.js";

/** A component of a packed pixel: RGB, alpha, Y'CbCr, or HSV ("w" is HSV's value). */
export type TpgComponent = "r" | "g" | "b" | "a" | "y" | "u" | "v" | "h" | "s" | "w";

/** How the model's test pattern generator writes a format's pixels. */
export type TpgLayout =
  /** One little- (or big-) endian word per pixel; each field [component, shift, bits]. */
  | {
      readonly kind: "word";
      readonly bytes: 1 | 2 | 3 | 4;
      readonly bigEndian: boolean;
      readonly fields: readonly (readonly [TpgComponent, number, number])[];
    }
  /** Packed 4:2:2, two pixels in four bytes in this order of Y0 U Y1 V. */
  | { readonly kind: "yuv422"; readonly order: "YUYV" | "UYVY" | "YVYU" | "VYUY" }
  /** Bayer mosaic: the colour of each pixel of a 2x2 block; 8 bits, or 16-bit words. */
  | {
      readonly kind: "bayer";
      readonly order: "BGGR" | "GBRG" | "GRBG" | "RGGB";
      readonly bits: number;
    }
  /** Y plane, then Cb and Cr planes (Cr first when swapUV), subsampled hsub x vsub. */
  | {
      readonly kind: "planar";
      readonly hsub: number;
      readonly vsub: number;
      readonly swapUV: boolean;
    }
  /** Y plane, then one interleaved CbCr plane (CrCb when swapUV), subsampled hsub x vsub. */
  | {
      readonly kind: "semi";
      readonly hsub: number;
      readonly vsub: number;
      readonly swapUV: boolean;
    };

/** enum tgp_color_enc (include/media/tpg/v4l2-tpg.h); unset in vivid_formats[] means RGB. */
export type TpgColorEnc = "rgb" | "ycbcr" | "hsv" | "luma";

/** struct vivid_fmt. */
export interface VividFmt {
  readonly fourcc: number;
  /** v4l_fill_fmtdesc()'s description. */
  readonly description: string;
  /** Bits per pixel of each plane (bit_depth[]); the first is the line's. */
  readonly bitDepths: readonly number[];
  /** Vertical subsampling of each plane (vdownsampling[]). */
  readonly vdownsampling: readonly number[];
  readonly colorEnc: TpgColorEnc;
  /** Planes of the format (planes) and memory buffers they take (buffers). */
  readonly planes: number;
  readonly buffers: number;
  /** data_offset[] of a multi-planar device (0 on a single-planar one: vivid_create_instance). */
  readonly dataOffset: readonly number[];
  /** undefined for the multi-buffer formats, which the single-planar model never uses. */
  readonly layout: TpgLayout | undefined;
  /** bit_depth[0], the bits per pixel of the first plane (kept for older callers). */
  readonly bitDepth: number;
}

function fmt(
  code: string,
  bigEndian: boolean,
  description: string,
  bitDepths: number[],
  vdownsampling: number[],
  colorEnc: TpgColorEnc,
  planes: number,
  buffers: number,
  dataOffset: number[],
  layout: TpgLayout | undefined,
): VividFmt {
  // v4l2_fourcc_be() sets bit 31.
  const fourcc = (v4l2FourccCode(code) | (bigEndian ? 0x80000000 : 0)) >>> 0;
  return {
    fourcc,
    description,
    bitDepths,
    vdownsampling,
    colorEnc,
    planes,
    buffers,
    dataOffset,
    layout,
    bitDepth: bitDepths[0]!,
  };
}

/** vivid_formats[], in vivid's order. */
export const VIVID_ALL_FORMATS: readonly VividFmt[] = [
  fmt("YUYV", false, "YUYV 4:2:2", [16], [1], "ycbcr", 1, 1, [128], {
    kind: "yuv422",
    order: "YUYV",
  }),
  fmt("UYVY", false, "UYVY 4:2:2", [16], [1], "ycbcr", 1, 1, [], { kind: "yuv422", order: "UYVY" }),
  fmt("YVYU", false, "YVYU 4:2:2", [16], [1], "ycbcr", 1, 1, [], { kind: "yuv422", order: "YVYU" }),
  fmt("VYUY", false, "VYUY 4:2:2", [16], [1], "ycbcr", 1, 1, [], { kind: "yuv422", order: "VYUY" }),
  fmt("422P", false, "Planar YUV 4:2:2", [8, 4, 4], [1, 1, 1], "ycbcr", 3, 1, [], {
    kind: "planar",
    hsub: 2,
    vsub: 1,
    swapUV: false,
  }),
  fmt("YU12", false, "Planar YUV 4:2:0", [8, 4, 4], [1, 2, 2], "ycbcr", 3, 1, [], {
    kind: "planar",
    hsub: 2,
    vsub: 2,
    swapUV: false,
  }),
  fmt("YV12", false, "Planar YVU 4:2:0", [8, 4, 4], [1, 2, 2], "ycbcr", 3, 1, [], {
    kind: "planar",
    hsub: 2,
    vsub: 2,
    swapUV: true,
  }),
  fmt("NV12", false, "Y/UV 4:2:0", [8, 8], [1, 2], "ycbcr", 2, 1, [], {
    kind: "semi",
    hsub: 2,
    vsub: 2,
    swapUV: false,
  }),
  fmt("NV21", false, "Y/VU 4:2:0", [8, 8], [1, 2], "ycbcr", 2, 1, [], {
    kind: "semi",
    hsub: 2,
    vsub: 2,
    swapUV: true,
  }),
  fmt("NV16", false, "Y/UV 4:2:2", [8, 8], [1, 1], "ycbcr", 2, 1, [], {
    kind: "semi",
    hsub: 2,
    vsub: 1,
    swapUV: false,
  }),
  fmt("NV61", false, "Y/VU 4:2:2", [8, 8], [1, 1], "ycbcr", 2, 1, [], {
    kind: "semi",
    hsub: 2,
    vsub: 1,
    swapUV: true,
  }),
  fmt("NV24", false, "Y/UV 4:4:4", [8, 16], [1, 1], "ycbcr", 2, 1, [], {
    kind: "semi",
    hsub: 1,
    vsub: 1,
    swapUV: false,
  }),
  fmt("NV42", false, "Y/VU 4:4:4", [8, 16], [1, 1], "ycbcr", 2, 1, [], {
    kind: "semi",
    hsub: 1,
    vsub: 1,
    swapUV: true,
  }),
  fmt("YUVO", false, "16-bit A/XYUV 1-5-5-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["a", 15, 1],
      ["y", 10, 5],
      ["u", 5, 5],
      ["v", 0, 5],
    ],
  }),
  fmt("YUVP", false, "16-bit YUV 5-6-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["y", 11, 5],
      ["u", 5, 6],
      ["v", 0, 5],
    ],
  }),
  fmt("Y444", false, "16-bit A/XYUV 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["a", 12, 4],
      ["y", 8, 4],
      ["u", 4, 4],
      ["v", 0, 4],
    ],
  }),
  fmt("YUV4", false, "32-bit A/XYUV 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["a", 0, 8],
      ["y", 8, 8],
      ["u", 16, 8],
      ["v", 24, 8],
    ],
  }),
  fmt("AYUV", false, "32-bit AYUV 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["a", 0, 8],
      ["y", 8, 8],
      ["u", 16, 8],
      ["v", 24, 8],
    ],
  }),
  fmt("XYUV", false, "32-bit XYUV 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["y", 8, 8],
      ["u", 16, 8],
      ["v", 24, 8],
    ],
  }),
  fmt("VUYA", false, "32-bit VUYA 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["v", 0, 8],
      ["u", 8, 8],
      ["y", 16, 8],
      ["a", 24, 8],
    ],
  }),
  fmt("VUYX", false, "32-bit VUYX 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["v", 0, 8],
      ["u", 8, 8],
      ["y", 16, 8],
    ],
  }),
  fmt("YUVA", false, "32-bit YUVA 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["y", 0, 8],
      ["u", 8, 8],
      ["v", 16, 8],
      ["a", 24, 8],
    ],
  }),
  fmt("YUVX", false, "32-bit YUVX 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["y", 0, 8],
      ["u", 8, 8],
      ["v", 16, 8],
    ],
  }),
  fmt("GREY", false, "8-bit Greyscale", [8], [1], "luma", 1, 1, [], {
    kind: "word",
    bytes: 1,
    bigEndian: false,
    fields: [["y", 0, 8]],
  }),
  fmt("Y10 ", false, "10-bit Greyscale", [16], [1], "luma", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [["y", 0, 10]],
  }),
  fmt("Y12 ", false, "12-bit Greyscale", [16], [1], "luma", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [["y", 0, 12]],
  }),
  fmt("Y16 ", false, "16-bit Greyscale", [16], [1], "luma", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [["y", 0, 16]],
  }),
  fmt("Y16 ", true, "16-bit Greyscale BE", [16], [1], "luma", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: true,
    fields: [["y", 0, 16]],
  }),
  fmt("RGB1", false, "8-bit RGB 3-3-2", [8], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 1,
    bigEndian: false,
    fields: [
      ["r", 5, 3],
      ["g", 2, 3],
      ["b", 0, 2],
    ],
  }),
  fmt("RGBP", false, "16-bit RGB 5-6-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 11, 5],
      ["g", 5, 6],
      ["b", 0, 5],
    ],
  }),
  fmt("RGBR", false, "16-bit RGB 5-6-5 BE", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: true,
    fields: [
      ["r", 11, 5],
      ["g", 5, 6],
      ["b", 0, 5],
    ],
  }),
  fmt("R444", false, "16-bit A/XRGB 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 8, 4],
      ["g", 4, 4],
      ["b", 0, 4],
    ],
  }),
  fmt("XR12", false, "16-bit XRGB 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 8, 4],
      ["g", 4, 4],
      ["b", 0, 4],
    ],
  }),
  fmt("AR12", false, "16-bit ARGB 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["a", 12, 4],
      ["r", 8, 4],
      ["g", 4, 4],
      ["b", 0, 4],
    ],
  }),
  fmt("RX12", false, "16-bit RGBX 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 12, 4],
      ["g", 8, 4],
      ["b", 4, 4],
    ],
  }),
  fmt("RA12", false, "16-bit RGBA 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 12, 4],
      ["g", 8, 4],
      ["b", 4, 4],
      ["a", 0, 4],
    ],
  }),
  fmt("XB12", false, "16-bit XBGR 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["b", 8, 4],
      ["g", 4, 4],
      ["r", 0, 4],
    ],
  }),
  fmt("AB12", false, "16-bit ABGR 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["a", 12, 4],
      ["b", 8, 4],
      ["g", 4, 4],
      ["r", 0, 4],
    ],
  }),
  fmt("BX12", false, "16-bit BGRX 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["b", 12, 4],
      ["g", 8, 4],
      ["r", 4, 4],
    ],
  }),
  fmt("GA12", false, "16-bit BGRA 4-4-4-4", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["b", 12, 4],
      ["g", 8, 4],
      ["r", 4, 4],
      ["a", 0, 4],
    ],
  }),
  fmt("RGBO", false, "16-bit A/XRGB 1-5-5-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 10, 5],
      ["g", 5, 5],
      ["b", 0, 5],
    ],
  }),
  fmt("XR15", false, "16-bit XRGB 1-5-5-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 10, 5],
      ["g", 5, 5],
      ["b", 0, 5],
    ],
  }),
  fmt("AR15", false, "16-bit ARGB 1-5-5-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["a", 15, 1],
      ["r", 10, 5],
      ["g", 5, 5],
      ["b", 0, 5],
    ],
  }),
  fmt("RX15", false, "16-bit RGBX 5-5-5-1", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 11, 5],
      ["g", 6, 5],
      ["b", 1, 5],
    ],
  }),
  fmt("RA15", false, "16-bit RGBA 5-5-5-1", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["r", 11, 5],
      ["g", 6, 5],
      ["b", 1, 5],
      ["a", 0, 1],
    ],
  }),
  fmt("XB15", false, "16-bit XBGR 1-5-5-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["b", 10, 5],
      ["g", 5, 5],
      ["r", 0, 5],
    ],
  }),
  fmt("AB15", false, "16-bit ABGR 1-5-5-5", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["a", 15, 1],
      ["b", 10, 5],
      ["g", 5, 5],
      ["r", 0, 5],
    ],
  }),
  fmt("BX15", false, "16-bit BGRX 5-5-5-1", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["b", 11, 5],
      ["g", 6, 5],
      ["r", 1, 5],
    ],
  }),
  fmt("BA15", false, "16-bit BGRA 5-5-5-1", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: false,
    fields: [
      ["b", 11, 5],
      ["g", 6, 5],
      ["r", 1, 5],
      ["a", 0, 1],
    ],
  }),
  fmt("RGBQ", false, "16-bit A/XRGB 1-5-5-5 BE", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: true,
    fields: [
      ["r", 10, 5],
      ["g", 5, 5],
      ["b", 0, 5],
    ],
  }),
  fmt("XR15", true, "16-bit XRGB 1-5-5-5 BE", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: true,
    fields: [
      ["r", 10, 5],
      ["g", 5, 5],
      ["b", 0, 5],
    ],
  }),
  fmt("AR15", true, "16-bit ARGB 1-5-5-5 BE", [16], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 2,
    bigEndian: true,
    fields: [
      ["a", 15, 1],
      ["r", 10, 5],
      ["g", 5, 5],
      ["b", 0, 5],
    ],
  }),
  fmt("RGB3", false, "24-bit RGB 8-8-8", [24], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 3,
    bigEndian: false,
    fields: [
      ["r", 0, 8],
      ["g", 8, 8],
      ["b", 16, 8],
    ],
  }),
  fmt("BGR3", false, "24-bit BGR 8-8-8", [24], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 3,
    bigEndian: false,
    fields: [
      ["b", 0, 8],
      ["g", 8, 8],
      ["r", 16, 8],
    ],
  }),
  fmt("BGRH", false, "18-bit BGRX 6-6-6-14", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: true,
    fields: [
      ["b", 26, 6],
      ["g", 20, 6],
      ["r", 14, 6],
    ],
  }),
  fmt("RGB4", false, "32-bit A/XRGB 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["r", 8, 8],
      ["g", 16, 8],
      ["b", 24, 8],
    ],
  }),
  fmt("BGR4", false, "32-bit BGRA/X 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["b", 0, 8],
      ["g", 8, 8],
      ["r", 16, 8],
    ],
  }),
  fmt("BX24", false, "32-bit XRGB 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["r", 8, 8],
      ["g", 16, 8],
      ["b", 24, 8],
    ],
  }),
  fmt("XR24", false, "32-bit BGRX 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["b", 0, 8],
      ["g", 8, 8],
      ["r", 16, 8],
    ],
  }),
  fmt("BA24", false, "32-bit ARGB 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["a", 0, 8],
      ["r", 8, 8],
      ["g", 16, 8],
      ["b", 24, 8],
    ],
  }),
  fmt("AR24", false, "32-bit BGRA 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["b", 0, 8],
      ["g", 8, 8],
      ["r", 16, 8],
      ["a", 24, 8],
    ],
  }),
  fmt("XB24", false, "32-bit RGBX 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["r", 0, 8],
      ["g", 8, 8],
      ["b", 16, 8],
    ],
  }),
  fmt("RX24", false, "32-bit XBGR 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["b", 8, 8],
      ["g", 16, 8],
      ["r", 24, 8],
    ],
  }),
  fmt("AB24", false, "32-bit RGBA 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["r", 0, 8],
      ["g", 8, 8],
      ["b", 16, 8],
      ["a", 24, 8],
    ],
  }),
  fmt("RA24", false, "32-bit ABGR 8-8-8-8", [32], [1], "rgb", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["a", 0, 8],
      ["b", 8, 8],
      ["g", 16, 8],
      ["r", 24, 8],
    ],
  }),
  fmt("BA81", false, "8-bit Bayer BGBG/GRGR", [8], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "BGGR",
    bits: 8,
  }),
  fmt("GBRG", false, "8-bit Bayer GBGB/RGRG", [8], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GBRG",
    bits: 8,
  }),
  fmt("GRBG", false, "8-bit Bayer GRGR/BGBG", [8], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GRBG",
    bits: 8,
  }),
  fmt("RGGB", false, "8-bit Bayer RGRG/GBGB", [8], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "RGGB",
    bits: 8,
  }),
  fmt("BG10", false, "10-bit Bayer BGBG/GRGR", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "BGGR",
    bits: 10,
  }),
  fmt("GB10", false, "10-bit Bayer GBGB/RGRG", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GBRG",
    bits: 10,
  }),
  fmt("BA10", false, "10-bit Bayer GRGR/BGBG", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GRBG",
    bits: 10,
  }),
  fmt("RG10", false, "10-bit Bayer RGRG/GBGB", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "RGGB",
    bits: 10,
  }),
  fmt("BG12", false, "12-bit Bayer BGBG/GRGR", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "BGGR",
    bits: 12,
  }),
  fmt("GB12", false, "12-bit Bayer GBGB/RGRG", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GBRG",
    bits: 12,
  }),
  fmt("BA12", false, "12-bit Bayer GRGR/BGBG", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GRBG",
    bits: 12,
  }),
  fmt("RG12", false, "12-bit Bayer RGRG/GBGB", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "RGGB",
    bits: 12,
  }),
  fmt("BYR2", false, "16-bit Bayer BGBG/GRGR", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "BGGR",
    bits: 16,
  }),
  fmt("GB16", false, "16-bit Bayer GBGB/RGRG", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GBRG",
    bits: 16,
  }),
  fmt("GR16", false, "16-bit Bayer GRGR/BGBG", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "GRBG",
    bits: 16,
  }),
  fmt("RG16", false, "16-bit Bayer RGRG/GBGB", [16], [1], "rgb", 1, 1, [], {
    kind: "bayer",
    order: "RGGB",
    bits: 16,
  }),
  fmt("HSV3", false, "24-bit HSV 8-8-8", [24], [1], "hsv", 1, 1, [], {
    kind: "word",
    bytes: 3,
    bigEndian: false,
    fields: [
      ["h", 0, 8],
      ["s", 8, 8],
      ["w", 16, 8],
    ],
  }),
  fmt("HSV4", false, "32-bit XHSV 8-8-8-8", [32], [1], "hsv", 1, 1, [], {
    kind: "word",
    bytes: 4,
    bigEndian: false,
    fields: [
      ["h", 8, 8],
      ["s", 16, 8],
      ["w", 24, 8],
    ],
  }),
  fmt("NM16", false, "Y/UV 4:2:2 (N-C)", [8, 8], [1, 1], "ycbcr", 2, 2, [128, 0], undefined),
  fmt("NM61", false, "Y/VU 4:2:2 (N-C)", [8, 8], [1, 1], "ycbcr", 2, 2, [0, 128], undefined),
  fmt("YM12", false, "Planar YUV 4:2:0 (N-C)", [8, 4, 4], [1, 2, 2], "ycbcr", 3, 3, [], undefined),
  fmt("YM21", false, "Planar YVU 4:2:0 (N-C)", [8, 4, 4], [1, 2, 2], "ycbcr", 3, 3, [], undefined),
  fmt("NM12", false, "Y/UV 4:2:0 (N-C)", [8, 8], [1, 2], "ycbcr", 2, 2, [], undefined),
  fmt("NM21", false, "Y/VU 4:2:0 (N-C)", [8, 8], [1, 2], "ycbcr", 2, 2, [], undefined),
  fmt("YM16", false, "Planar YUV 4:2:2 (N-C)", [8, 4, 4], [1, 1, 1], "ycbcr", 3, 3, [], undefined),
  fmt("YM61", false, "Planar YVU 4:2:2 (N-C)", [8, 4, 4], [1, 1, 1], "ycbcr", 3, 3, [], undefined),
  fmt("YM24", false, "Planar YUV 4:4:4 (N-C)", [8, 8, 8], [1, 1, 1], "ycbcr", 3, 3, [], undefined),
  fmt("YM42", false, "Planar YVU 4:4:4 (N-C)", [8, 8, 8], [1, 1, 1], "ycbcr", 3, 3, [], undefined),
];

/** VIVID_MPLANAR_FORMATS: the formats at the end of the list that need a multi-planar device. */
export const VIVID_MPLANAR_FORMATS = 10;

/** The formats a single-planar vivid enumerates and accepts (all but the multi-buffer ones). */
export const VIVID_FORMATS: readonly VividFmt[] = VIVID_ALL_FORMATS.slice(
  0,
  VIVID_ALL_FORMATS.length - VIVID_MPLANAR_FORMATS,
);

/** vivid_get_format() on a single-planar device. */
export function vividGetFormat(pixelformat: number): VividFmt | undefined {
  return VIVID_FORMATS.find((f) => f.fourcc === pixelformat >>> 0);
}

/** The V4L2_FMT_FLAG_CSC_* a capture node's ENUM_FMT gives a format (vivid_enum_fmt_vid). */
export function vividCaptureCscFlags(f: VividFmt): number {
  let flags = V4L2_FMT_FLAG_CSC_COLORSPACE | V4L2_FMT_FLAG_CSC_XFER_FUNC;
  if (f.colorEnc === "ycbcr") flags |= V4L2_FMT_FLAG_CSC_YCBCR_ENC | V4L2_FMT_FLAG_CSC_QUANTIZATION;
  else if (f.colorEnc === "hsv") flags |= V4L2_FMT_FLAG_CSC_HSV_ENC;
  else if (f.colorEnc === "rgb") flags |= V4L2_FMT_FLAG_CSC_QUANTIZATION;
  return flags;
}
