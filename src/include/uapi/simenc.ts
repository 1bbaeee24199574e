/**
 * The uAPI of simenc, the model's own V4L2 encoder (src/drivers/media/test-drivers/
 * simenc.ts): not a Linux header. Like vicodec's V4L2_PIX_FMT_FWHT, its coded format has
 * a fourcc of its own, here 'SRLE', and a frame header userspace can parse.
 *
 * One coded frame, little endian:
 *
 *   offset  0  u32  magic: V4L2_PIX_FMT_SIMENC_RLE ('SRLE')
 *   offset  4  u32  width (pixels)
 *   offset  8  u32  height (lines)
 *   offset 12  u32  the raw pixel format (V4L2 fourcc of the OUTPUT queue)
 *   offset 16  u32  payload bytes that follow
 *   offset 20       payload: runs over the frame's visible bytes, line after line
 *                   (padding excluded), cut into units of SIMENC_UNIT(format) bytes
 *                   (4 for YUYV: a pixel pair; 4 for XR24; 3 for RGB3): each run is a
 *                   count byte (1..255) followed by the unit it repeats.
 */

import { v4l2FourccCode } from "./videodev2.js";

/** 'SRLE': simenc's run-length coded frame. */
export const V4L2_PIX_FMT_SIMENC_RLE = v4l2FourccCode("SRLE");

/** Bytes of the frame header. */
export const SIMENC_HEADER_BYTES = 20;

/** Field offsets of the frame header. */
export const SIMENC_HEADER = {
  magic: 0,
  width: 4,
  height: 8,
  pixelformat: 12,
  payloadBytes: 16,
} as const;

/** Longest run one count byte holds. */
export const SIMENC_MAX_RUN = 255;
