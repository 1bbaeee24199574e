/**
 * simenc: the model's video encoder, shaped like vicodec's stateful encoder
 * (drivers/media/test-drivers/vicodec/vicodec-core.c): a mem2mem node whose OUTPUT queue
 * takes raw frames and whose CAPTURE queue returns coded frames, one per job, with
 * bytesused set to the coded length and V4L2_FMT_FLAG_COMPRESSED on the coded format.
 *
 * Its coding is not vicodec's FWHT but a run-length code of our own, 'SRLE'
 * (include/uapi/simenc.ts), chosen because its output is easy to compute apart from the
 * machine ({@link simencEncode}) and to check ({@link simencDecode}) while the device
 * still reads every source byte by DMA and writes every coded byte by DMA. Because the
 * format is ours the driver is called simenc, not vicodec: a real kernel has no such
 * format.
 *
 * The CAPTURE format follows the OUTPUT one: the coded frame's size and a sizeimage
 * large enough for the worst case (no two units alike). Left out of the stateful
 * encoder interface (Documentation/userspace-api/media/v4l/dev-encoder.rst):
 * V4L2_ENC_CMD_STOP/START, the LAST flag and EPIPE, controls, and source change events.
 */

import {
  SIMENC_HEADER,
  SIMENC_HEADER_BYTES,
  SIMENC_MAX_RUN,
  V4L2_PIX_FMT_SIMENC_RLE,
} from "../../../include/uapi/simenc.js";
import { V4L2_PIX_FMT_RGB24, V4L2_TYPE_IS_OUTPUT } from "../../../include/uapi/videodev2.js";
import type { DriverHost } from "../../host.js";
import {
  type M2mDriverDesc,
  type M2mDriverOptions,
  type M2mPixFormat,
  type M2mTestDevice,
  m2mTestProbe,
} from "./m2m-common.js";
import { VIM2M_FORMATS, vim2mBytesPerPixel, vim2mTryFmt } from "./vim2m.js";

/** Bytes per coded unit of a raw format: a YUYV pixel pair, an XR24 pixel, an RGB3 pixel. */
export function simencUnit(pixelformat: number): number {
  return pixelformat === V4L2_PIX_FMT_RGB24 ? 3 : 4;
}

/** The largest coded frame of a raw format (every unit its own run). */
export function simencMaxBytes(raw: M2mPixFormat): number {
  const units =
    (raw.width * vim2mBytesPerPixel(raw.pixelformat) * raw.height) / simencUnit(raw.pixelformat);
  return SIMENC_HEADER_BYTES + units * (simencUnit(raw.pixelformat) + 1);
}

/** The CAPTURE format that goes with a raw OUTPUT format. */
export function simencCodedFormat(raw: M2mPixFormat): M2mPixFormat {
  return {
    width: raw.width,
    height: raw.height,
    pixelformat: V4L2_PIX_FMT_SIMENC_RLE,
    bytesperline: 0,
    sizeimage: simencMaxBytes(raw),
  };
}

function sameUnit(a: Uint8Array, i: number, j: number, unit: number): boolean {
  for (let k = 0; k < unit; k++) if (a[i + k] !== a[j + k]) return false;
  return true;
}

/**
 * What simenc writes for one raw frame `src` of format `raw` (lines at bytesperline):
 * the header, then runs of equal units over the visible bytes of each line in turn.
 */
export function simencEncode(src: Uint8Array, raw: M2mPixFormat): Uint8Array {
  const unit = simencUnit(raw.pixelformat);
  const line = raw.width * vim2mBytesPerPixel(raw.pixelformat);
  const visible = new Uint8Array(line * raw.height);
  for (let y = 0; y < raw.height; y++)
    visible.set(src.subarray(y * raw.bytesperline, y * raw.bytesperline + line), y * line);
  const out = new Uint8Array(simencMaxBytes(raw));
  let o = SIMENC_HEADER_BYTES;
  for (let i = 0; i < visible.length; ) {
    let run = 1;
    while (
      run < SIMENC_MAX_RUN &&
      i + (run + 1) * unit <= visible.length &&
      sameUnit(visible, i, i + run * unit, unit)
    )
      run++;
    out[o++] = run;
    out.set(visible.subarray(i, i + unit), o);
    o += unit;
    i += run * unit;
  }
  const v = new DataView(out.buffer);
  v.setUint32(SIMENC_HEADER.magic, V4L2_PIX_FMT_SIMENC_RLE, true);
  v.setUint32(SIMENC_HEADER.width, raw.width, true);
  v.setUint32(SIMENC_HEADER.height, raw.height, true);
  v.setUint32(SIMENC_HEADER.pixelformat, raw.pixelformat, true);
  v.setUint32(SIMENC_HEADER.payloadBytes, o - SIMENC_HEADER_BYTES, true);
  return out.slice(0, o);
}

/** Decodes a coded frame: its geometry and the visible bytes, lines packed (no padding). */
export function simencDecode(coded: Uint8Array): {
  width: number;
  height: number;
  pixelformat: number;
  pixels: Uint8Array;
} {
  const bad = (why: string): never => {
    throw new RangeError(`simenc: bad coded frame: ${why}`);
  };
  if (coded.length < SIMENC_HEADER_BYTES) bad("shorter than its header");
  const v = new DataView(coded.buffer, coded.byteOffset, coded.byteLength);
  if (v.getUint32(SIMENC_HEADER.magic, true) !== V4L2_PIX_FMT_SIMENC_RLE) bad("wrong magic");
  const width = v.getUint32(SIMENC_HEADER.width, true);
  const height = v.getUint32(SIMENC_HEADER.height, true);
  const pixelformat = v.getUint32(SIMENC_HEADER.pixelformat, true);
  const end = SIMENC_HEADER_BYTES + v.getUint32(SIMENC_HEADER.payloadBytes, true);
  if (end > coded.length) bad("payload runs past the end");
  const unit = simencUnit(pixelformat);
  const pixels = new Uint8Array(width * vim2mBytesPerPixel(pixelformat) * height);
  let p = 0;
  for (let i = SIMENC_HEADER_BYTES; i < end; i += unit + 1) {
    const run = coded[i]!;
    if (run === 0 || p + run * unit > pixels.length) bad(`run ${run} at byte ${i}`);
    for (let r = 0; r < run; r++, p += unit) pixels.set(coded.subarray(i + 1, i + 1 + unit), p);
  }
  if (p !== pixels.length) bad(`${p} of ${pixels.length} bytes coded`);
  return { width, height, pixelformat, pixels };
}

/** simenc as an m2m test driver. */
export const SIMENC: M2mDriverDesc = {
  driver: "simenc",
  card: "simenc run-length encoder",
  busInfo: "platform:simenc",
  outputFormats: VIM2M_FORMATS,
  captureFormats: [
    { fourcc: V4L2_PIX_FMT_SIMENC_RLE, description: "simenc RLE", compressed: true },
  ],
  defaults: () => {
    const out = vim2mTryFmt({ width: 640, height: 480, pixelformat: 0, bytesperline: 0 });
    return { out, cap: simencCodedFormat(out) };
  },
  // The coded side's format is always the one the raw side implies.
  tryFmt: (type, req, cur) =>
    V4L2_TYPE_IS_OUTPUT(type) ? vim2mTryFmt(req) : simencCodedFormat(cur.out),
  followOutput: (out) => simencCodedFormat(out),
  process: (src, out) => simencEncode(src, out),
};

/** Options of one simenc instance. */
export type SimencOptions = M2mDriverOptions;

/** A probed simenc. */
export type Simenc = M2mTestDevice;

/**
 * simenc's probe: one encoder per call, on the lowest free /dev/videoN, its DMA master
 * named "simenc", "simenc-1"... unless `options.name` says otherwise.
 */
export function simencProbe(host: DriverHost, options: SimencOptions = {}): Simenc {
  return m2mTestProbe(host, SIMENC, options);
}
