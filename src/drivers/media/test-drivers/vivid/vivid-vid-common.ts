/**
 * What vivid's capture and output nodes share (drivers/media/test-drivers/vivid/
 * vivid-vid-common.c, the format parts of vivid-vid-cap.c / vivid-vid-out.c): the
 * supported formats, the webcam frame sizes, TRY_FMT's rounding, the frame clock both
 * devices run on the virtual clock, and the stream state, queue ops and format ioctls
 * the two nodes have in common (VividStream).
 */

import { KernelError } from "../../../../errno.js";
import type { CStruct } from "../../../../include/uapi/struct.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_CAP_READWRITE,
  V4L2_CAP_STREAMING,
  V4L2_CAP_TIMEPERFRAME,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_CAP_VIDEO_OUTPUT,
  V4L2_COLORSPACE_SMPTE170M,
  V4L2_COLORSPACE_SRGB,
  V4L2_FIELD_ALTERNATE,
  V4L2_FIELD_BOTTOM,
  V4L2_FIELD_INTERLACED,
  V4L2_FIELD_INTERLACED_BT,
  V4L2_FIELD_INTERLACED_TB,
  V4L2_FIELD_NONE,
  V4L2_FIELD_SEQ_BT,
  V4L2_FIELD_SEQ_TB,
  V4L2_FIELD_TOP,
  V4L2_FMTDESC,
  V4L2_FORMAT_PIX,
  V4L2_PIX_FMT_YUYV,
  V4L2_STREAMPARM,
} from "../../../../include/uapi/videodev2.js";
import type { ClockEvent, VirtualClock } from "../../../../machine/clock.js";
import type { DmaDevice } from "../../../../machine/device.js";
import type { Machine } from "../../../../machine/machine.js";
import type { VideoDevice } from "../../v4l2-core/v4l2-dev.js";
import type { V4l2IoctlOps } from "../../v4l2-core/v4l2-ioctl.js";
import type { Vb2Buffer, Vb2Queue, Vb2QueueSetup } from "../../videobuf2/videobuf2-core.js";
import {
  VIVID_FORMATS,
  type VividFmt,
  vividCaptureCscFlags,
  vividGetFormat,
} from "./vivid-formats.js";
import { vividSizeimage } from "./vivid-tpg.js";

export { VIVID_FORMATS, type VividFmt } from "./vivid-formats.js";

/** webcam_sizes[] of vivid-vid-cap.c. */
export const VIVID_WEBCAM_SIZES: readonly { width: number; height: number }[] = [
  { width: 320, height: 180 },
  { width: 640, height: 360 },
  { width: 640, height: 480 },
  { width: 1280, height: 720 },
  { width: 1920, height: 1080 },
  { width: 3840, height: 2160 },
];

/** webcam_intervals[] of vivid-vid-cap.c. */
export const VIVID_WEBCAM_INTERVALS: readonly { numerator: number; denominator: number }[] = [
  { numerator: 1, denominator: 1 },
  { numerator: 1, denominator: 2 },
  { numerator: 1, denominator: 4 },
  { numerator: 1, denominator: 5 },
  { numerator: 1, denominator: 10 },
  { numerator: 2, denominator: 25 },
  { numerator: 1, denominator: 15 },
  { numerator: 1, denominator: 25 },
  { numerator: 1, denominator: 30 },
  { numerator: 1, denominator: 40 },
  { numerator: 1, denominator: 50 },
  { numerator: 1, denominator: 60 },
  { numerator: 1, denominator: 120 },
];

/** MAX_WIDTH * MAX_ZOOM: the widest line vivid accepts. */
const MAX_LINE_PIXELS = 4096 * 4;
/** MAX_HEIGHT * MAX_ZOOM: vivid_max_rect's height. */
const MAX_RECT_HEIGHT = 2160 * 4;
/** vivid_min_rect: 16x16. */
const MIN_RECT = 16;

/** A node's current format (struct v4l2_pix_format's fields vivid uses). */
export interface VividPixFormat {
  width: number;
  height: number;
  pixelformat: number;
  field: number;
  bytesperline: number;
  sizeimage: number;
  colorspace: number;
}

/**
 * The format a node starts with (vivid_create_instance, vivid_update_format_cap/out):
 * YUYV; on the capture node the webcam's webcam_sizes[webcam_size_idx = 1], 640x360;
 * on the output node the S-Video output's PAL frame, 720x576 interlaced (std_out
 * V4L2_STD_PAL, tv_field_out V4L2_FIELD_INTERLACED), SMPTE 170M. With continuous frame
 * sizes (the model's pipelines), both start at 640x480 progressive sRGB.
 */
export function vividDefaultFormat(
  node: "capture" | "output" = "capture",
  sizes: VividFrameSizes = "webcam",
): VividPixFormat {
  if (sizes === "webcam" && node === "output")
    return {
      width: 720,
      height: 576,
      pixelformat: V4L2_PIX_FMT_YUYV,
      field: V4L2_FIELD_INTERLACED,
      bytesperline: 720 * 2,
      sizeimage: 720 * 576 * 2,
      colorspace: V4L2_COLORSPACE_SMPTE170M,
    };
  const height = sizes === "webcam" ? 360 : 480;
  return {
    width: 640,
    height,
    pixelformat: V4L2_PIX_FMT_YUYV,
    field: V4L2_FIELD_NONE,
    bytesperline: 640 * 2,
    sizeimage: 640 * height * 2,
    colorspace: V4L2_COLORSPACE_SRGB,
  };
}

/**
 * Which frame sizes the capture input offers: vivid's webcam input (discrete
 * webcam_sizes[]), or any size, as its HDMI input with the scaler does
 * (vivid_try_fmt_vid_cap clamps to the scaler's limits instead of snapping).
 */
export type VividFrameSizes = "webcam" | "continuous";

/** Largest frame height the continuous input accepts (vivid's MAX_HEIGHT * MAX_ZOOM order). */
const MAX_CONTINUOUS_HEIGHT = 16384;

/** The continuous input: even widths of 16 to MAX_LINE_PIXELS, heights of 1 to 16384. */
function continuousSize(width: number, height: number): { width: number; height: number } {
  const w = Math.min(Math.max(width & ~1, 16), MAX_LINE_PIXELS);
  const h = Math.min(Math.max(height, 1), MAX_CONTINUOUS_HEIGHT);
  return { width: w, height: h };
}

/** v4l2_find_nearest_size(): the webcam size with the least |dw| + |dh|. */
function nearestSize(width: number, height: number): { width: number; height: number } {
  let best = VIVID_WEBCAM_SIZES[0]!;
  let bestErr = Number.POSITIVE_INFINITY;
  for (const s of VIVID_WEBCAM_SIZES) {
    const err = Math.abs(s.width - width) + Math.abs(s.height - height);
    if (err < bestErr) {
      best = s;
      bestErr = err;
    }
  }
  return best;
}

/** V4L2_FIELD_HAS_T_OR_B(): one field per buffer. */
function fieldHasTOrB(field: number): boolean {
  return field === V4L2_FIELD_TOP || field === V4L2_FIELD_BOTTOM || field === V4L2_FIELD_ALTERNATE;
}

/** vivid_field_out() for the S-Video output: an interlaced order is kept, anything else is INTERLACED. */
function svidFieldOut(field: number): number {
  return field === V4L2_FIELD_INTERLACED_TB ||
    field === V4L2_FIELD_INTERLACED_BT ||
    field === V4L2_FIELD_SEQ_TB ||
    field === V4L2_FIELD_SEQ_BT ||
    field === V4L2_FIELD_ALTERNATE
    ? field
    : V4L2_FIELD_INTERLACED;
}

/**
 * The line and frame sizes of vivid_try_fmt_vid_cap() / _out(): bytesperline between
 * `width * bit_depth[0] / 8` and `MAX_ZOOM * MAX_WIDTH * bit_depth[0] / 8` (a larger one
 * asked for is kept: padded lines), sizeimage by {@link vividSizeimage}.
 */
function lineAndFrame(f: CStruct, fmt: VividFmt, width: number, height: number) {
  const bd = fmt.bitDepths[0]!;
  const min = Math.floor((width * bd) / 8);
  const max = Math.floor((MAX_LINE_PIXELS * bd) / 8);
  const bytesperline = Math.max(Math.min(f.u32(V4L2_FORMAT_PIX.bytesperline), max), min);
  return { bytesperline, sizeimage: vividSizeimage(fmt, bytesperline, height) };
}

/**
 * vivid_try_fmt_vid_cap() (vivid-vid-cap.c) for the webcam input: an unknown pixel
 * format becomes YUYV, the size the nearest webcam size (the continuous input: any size
 * within its limits), the height rounded down to the format's vertical subsampling,
 * progressive sRGB. vivid_try_fmt_vid_out() (vivid-vid-out.c) for the S-Video output:
 * any size from vivid_min_rect (16x16) to vivid_max_rect (16384x8640, the scaler, crop
 * and compose all on), field INTERLACED unless an interlaced order or ALTERNATE (half
 * the height) is asked, SMPTE 170M; the continuous output, progressive sRGB.
 */
export function vividTryFmt(
  f: CStruct,
  sizes: VividFrameSizes = "webcam",
  node: "capture" | "output" = "capture",
): VividPixFormat {
  let pixelformat = f.u32(V4L2_FORMAT_PIX.pixelformat);
  let vfmt = vividGetFormat(pixelformat);
  if (vfmt === undefined) {
    pixelformat = V4L2_PIX_FMT_YUYV;
    vfmt = vividGetFormat(pixelformat)!;
  }
  const reqW = f.u32(V4L2_FORMAT_PIX.width);
  const reqH = f.u32(V4L2_FORMAT_PIX.height);
  let width: number;
  let height: number;
  let field = V4L2_FIELD_NONE;
  let colorspace = V4L2_COLORSPACE_SRGB;
  if (sizes === "continuous") {
    ({ width, height } = continuousSize(reqW, reqH));
  } else if (node === "capture") {
    ({ width, height } = nearestSize(reqW, reqH));
  } else {
    field = svidFieldOut(f.u32(V4L2_FORMAT_PIX.field));
    const factor = fieldHasTOrB(field) ? 2 : 1;
    width = Math.min(Math.max(reqW, MIN_RECT), MAX_LINE_PIXELS);
    height = Math.floor(Math.min(Math.max(reqH * factor, MIN_RECT), MAX_RECT_HEIGHT) / factor);
    colorspace = V4L2_COLORSPACE_SMPTE170M;
  }
  if (node === "capture") {
    // Chroma planes hold height / vdownsampling lines: round down to keep them whole.
    const vdiv = Math.max(...vfmt.vdownsampling.slice(0, vfmt.planes));
    height -= height % vdiv;
  }
  const fmt: VividPixFormat = {
    width,
    height,
    pixelformat,
    field,
    ...lineAndFrame(f, vfmt, width, height),
    colorspace,
  };
  vividWriteFmt(f, fmt);
  return fmt;
}

/** Fills struct v4l2_format's fmt.pix (the rest of the union is zeroed). */
export function vividWriteFmt(f: CStruct, fmt: VividPixFormat): void {
  f.bytes.fill(0, V4L2_FORMAT_PIX.width, f.bytes.length);
  f.setU32(V4L2_FORMAT_PIX.width, fmt.width)
    .setU32(V4L2_FORMAT_PIX.height, fmt.height)
    .setU32(V4L2_FORMAT_PIX.pixelformat, fmt.pixelformat)
    .setU32(V4L2_FORMAT_PIX.field, fmt.field)
    .setU32(V4L2_FORMAT_PIX.bytesperline, fmt.bytesperline)
    .setU32(V4L2_FORMAT_PIX.sizeimage, fmt.sizeimage)
    .setU32(V4L2_FORMAT_PIX.colorspace, fmt.colorspace);
}

/**
 * vivid_enum_fmt_vid(): the single-planar device's formats in vivid_formats[] order; a
 * capture node adds the CSC flags of the format's colour encoding. The description is
 * v4l_fill_fmtdesc()'s.
 */
export function vividEnumFmt(f: CStruct): void {
  const index = f.u32(V4L2_FMTDESC.index);
  const fmt = VIVID_FORMATS[index];
  if (fmt === undefined) throw new KernelError("EINVAL", `vivid: no format ${index}`);
  const capture = f.u32(V4L2_FMTDESC.type) === V4L2_BUF_TYPE_VIDEO_CAPTURE;
  f.setU32(V4L2_FMTDESC.flags, capture ? vividCaptureCscFlags(fmt) : 0)
    .setCstr(V4L2_FMTDESC.description, 32, fmt.description)
    .setU32(V4L2_FMTDESC.pixelformat, fmt.fourcc);
}

/** Fills struct v4l2_streamparm's capture/output part with the frame interval. */
export function vividWriteParm(
  p: CStruct,
  ival: { numerator: number; denominator: number },
  buffers: number,
): void {
  p.bytes.fill(0, V4L2_STREAMPARM.capability, p.bytes.length);
  p.setU32(V4L2_STREAMPARM.capability, V4L2_CAP_TIMEPERFRAME)
    .setU32(V4L2_STREAMPARM.numerator, ival.numerator)
    .setU32(V4L2_STREAMPARM.denominator, ival.denominator)
    .setU32(V4L2_STREAMPARM.buffers, buffers);
}

/** vivid_vid_cap_s_parm() for a webcam: the nearest interval in webcam_intervals[]. */
export function vividNearestInterval(
  numerator: number,
  denominator: number,
): {
  numerator: number;
  denominator: number;
} {
  if (numerator === 0 || denominator === 0)
    return VIVID_WEBCAM_INTERVALS[VIVID_WEBCAM_INTERVALS.length - 1]!;
  const want = numerator / denominator;
  let best = VIVID_WEBCAM_INTERVALS[0]!;
  for (const iv of VIVID_WEBCAM_INTERVALS) {
    if (
      Math.abs(iv.numerator / iv.denominator - want) <
      Math.abs(best.numerator / best.denominator - want)
    )
      best = iv;
  }
  return best;
}

/**
 * webcam_ival_count(): how many of webcam_intervals[] a webcam frame height allows (all
 * 13 below 720 lines; up to 60 fps from 720p, 30 fps from 1080p, 15 fps from 2160p).
 */
export function vividWebcamIvalCount(height: number): number {
  if (height >= 2160) return 7;
  if (height >= 1080) return 9;
  if (height >= 720) return 12;
  return VIVID_WEBCAM_INTERVALS.length;
}

/**
 * vivid_vid_cap_s_parm() for the webcam input: the first of the size's intervals (they
 * run from 1 s down) that the asked one is not shorter than, i.e. the longest that is
 * not longer; the fastest the size allows when none is, or when the denominator is 0.
 */
export function vividWebcamInterval(
  numerator: number,
  denominator: number,
  height: number,
): { numerator: number; denominator: number } {
  const count = vividWebcamIvalCount(height);
  if (denominator === 0) return VIVID_WEBCAM_INTERVALS[count - 1]!;
  for (let i = 0; i < count; i++) {
    const iv = VIVID_WEBCAM_INTERVALS[i]!;
    // V4L2_FRACT_COMPARE(tpf, >=, iv).
    if (numerator * iv.denominator >= iv.numerator * denominator) return iv;
  }
  return VIVID_WEBCAM_INTERVALS[count - 1]!;
}

/**
 * The frame clock of a vivid node (what vivid's kthread does with its frame counters):
 * ticks on a grid of the frame interval from STREAMON, one sequence number per tick. A
 * tick with no buffer waiting is a dropped frame. To keep the virtual clock idle when
 * nothing can happen, ticks are scheduled only while the driver holds buffers; the
 * sequence numbers of the ticks skipped meanwhile are accounted for on re-arming.
 */
export class VividFrameClock {
  #event: ClockEvent | undefined;
  #nextAt = 0;
  #nextSeq = 0;
  #running = false;
  intervalNs: number;

  constructor(
    readonly clock: VirtualClock,
    readonly label: string,
    intervalNs: number,
    readonly onTick: (sequence: number) => void,
  ) {
    this.intervalNs = intervalNs;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Frames generated or dropped since start. */
  get sequence(): number {
    return this.#nextSeq;
  }

  start(): void {
    this.#running = true;
    this.#nextSeq = 0;
    this.#nextAt = this.clock.now + this.intervalNs;
  }

  /** Schedules the next tick if none is pending. */
  arm(): void {
    if (!this.#running || this.#event !== undefined) return;
    const now = this.clock.now;
    if (this.#nextAt < now) {
      const skipped = Math.ceil((now - this.#nextAt) / this.intervalNs);
      this.#nextAt += skipped * this.intervalNs;
      this.#nextSeq += skipped;
    }
    this.#event = this.clock.schedule(this.#nextAt, this.label, () => {
      this.#event = undefined;
      const seq = this.#nextSeq++;
      this.#nextAt += this.intervalNs;
      this.onTick(seq);
    });
  }

  stop(): void {
    this.#running = false;
    if (this.#event !== undefined) this.clock.cancel(this.#event);
    this.#event = undefined;
  }
}

/** The buffers a vivid node holds (dev->vid_cap_active / vid_out_active) and the one in DMA. */
export class VividActiveList {
  readonly list: Vb2Buffer[] = [];
  inFlight: Vb2Buffer | undefined;

  /** stop_streaming: wait for the DMA in flight, return everything with ERROR. */
  drain(q: Vb2Queue, clock: VirtualClock): void {
    clock.runUntilCondition(() => this.inFlight === undefined);
    for (const vb of this.list.splice(0)) q.bufferDone(vb, "error");
  }
}

/** Every capability of the vivid instance (capture + output nodes). */
export const VIVID_ALL_CAPS =
  V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING | V4L2_CAP_READWRITE;

/** vidioc_querycap() of vivid-core.c. */
export function vividQuerycap(vdev: VideoDevice, cap: CStruct): void {
  cap
    .setCstr(0, 16, "vivid")
    .setCstr(16, 32, "vivid")
    .setCstr(48, 32, `platform:${vdev.name.slice(0, 9)}`)
    .setU32(84, VIVID_ALL_CAPS);
}

/**
 * One vivid video node's stream: its format and frame interval, the buffers the driver
 * holds, and the frame clock that moves one frame per interval (the kthread of
 * vivid-kthread-cap.c / -out.c). Capture and output differ only in what a frame tick
 * does with the buffer.
 */
export abstract class VividStream {
  fmt: VividPixFormat = vividDefaultFormat();
  /** Which node this is: the formats and sizes differ (vivid-vid-cap.c, vivid-vid-out.c). */
  abstract readonly node: "capture" | "output";
  timeperframe = { numerator: 1, denominator: 30 };
  /** The input's frame sizes (VividOptions.frameSizes). */
  frameSizes: VividFrameSizes = "webcam";
  readonly active = new VividActiveList();
  readonly frameClock: VividFrameClock;
  queue!: Vb2Queue;
  vdev!: VideoDevice;

  constructor(
    readonly machine: Machine,
    readonly device: DmaDevice,
  ) {
    this.frameClock = new VividFrameClock(
      machine.clock,
      `${device.name}: frame`,
      this.intervalNs,
      (seq) => this.tick(seq),
    );
  }

  get intervalNs(): number {
    return (this.timeperframe.numerator / this.timeperframe.denominator) * 1e9;
  }

  /** One frame period. */
  protected abstract tick(seq: number): void;

  /** vid_cap_queue_setup() / vid_out_queue_setup(): one plane holding a frame of the current format. */
  protected queueSetup(setup: Vb2QueueSetup): void {
    if (setup.numPlanes > 0) {
      if (setup.numPlanes !== 1) throw new KernelError("EINVAL", "vivid: one plane per buffer");
      if (setup.sizes[0]! < this.fmt.sizeimage)
        throw new KernelError(
          "EINVAL",
          `vivid: plane size ${setup.sizes[0]} is below sizeimage ${this.fmt.sizeimage}`,
        );
    } else {
      setup.sizes[0] = this.fmt.sizeimage;
    }
    setup.numPlanes = 1;
  }

  /** buf_queue: the driver holds the buffer; the clock runs while it holds any. */
  protected bufQueue(vb: Vb2Buffer): void {
    this.active.list.push(vb);
    this.frameClock.arm();
  }

  protected startStreaming(): void {
    this.frameClock.intervalNs = this.intervalNs;
    this.frameClock.start();
    this.frameClock.arm();
  }

  protected stopStreaming(q: Vb2Queue): void {
    this.frameClock.stop();
    this.active.drain(q, this.machine.clock);
  }

  /** The format ioctls both nodes answer alike (vivid-core.c's vidioc_* and the vid_cap/vid_out parts). */
  protected formatIoctls(): V4l2IoctlOps {
    return {
      querycap: (vdev, cap) => vividQuerycap(vdev, cap),
      enumFmt: (_v, f) => vividEnumFmt(f),
      gFmt: (_v, f) => vividWriteFmt(f, this.fmt),
      tryFmt: (_v, f) => {
        vividTryFmt(f, this.frameSizes, this.node);
      },
      sFmt: (_v, f) => {
        const fmt = vividTryFmt(f, this.frameSizes, this.node);
        if (this.queue.busy)
          throw new KernelError("EBUSY", "vivid: S_FMT while buffers are allocated");
        this.fmt = fmt;
      },
      gParm: (_v, p) => vividWriteParm(p, this.timeperframe, 1),
    };
  }
}
