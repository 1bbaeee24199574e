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
  V4L2_CAP_STREAMING,
  V4L2_CAP_TIMEPERFRAME,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_CAP_VIDEO_OUTPUT,
  V4L2_COLORSPACE_SRGB,
  V4L2_FIELD_NONE,
  V4L2_FMTDESC,
  V4L2_FORMAT_PIX,
  V4L2_PIX_FMT_XBGR32,
  V4L2_PIX_FMT_YUYV,
  V4L2_STREAMPARM,
} from "../../../../include/uapi/videodev2.js";
import type { ClockEvent, VirtualClock } from "../../../../machine/clock.js";
import type { DmaDevice } from "../../../../machine/device.js";
import type { Machine } from "../../../../machine/machine.js";
import type { VideoDevice } from "../../v4l2-core/v4l2-dev.js";
import type { V4l2IoctlOps } from "../../v4l2-core/v4l2-ioctl.js";
import type { Vb2Buffer, Vb2Queue, Vb2QueueSetup } from "../../videobuf2/videobuf2-core.js";
import { tpgBytesPerPixel } from "./vivid-tpg.js";

/** A vivid format (struct vivid_fmt, the single-planar packed ones modelled). */
export interface VividFmt {
  readonly fourcc: number;
  readonly description: string;
  readonly bitDepth: number;
}

export const VIVID_FORMATS: readonly VividFmt[] = [
  { fourcc: V4L2_PIX_FMT_YUYV, description: "YUYV 4:2:2", bitDepth: 16 },
  { fourcc: V4L2_PIX_FMT_XBGR32, description: "32-bit BGRX 8-8-8-8", bitDepth: 32 },
];

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

/** The default: 640x480 YUYV. */
export function vividDefaultFormat(): VividPixFormat {
  return {
    width: 640,
    height: 480,
    pixelformat: V4L2_PIX_FMT_YUYV,
    field: V4L2_FIELD_NONE,
    bytesperline: 640 * 2,
    sizeimage: 640 * 480 * 2,
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

/**
 * vivid_try_fmt_vid_cap(): an unknown pixel format becomes YUYV, the size the nearest
 * webcam size, bytesperline at least the line's pixels (more is kept: padded lines),
 * sizeimage = bytesperline * height, progressive sRGB.
 */
export function vividTryFmt(f: CStruct, sizes: VividFrameSizes = "webcam"): VividPixFormat {
  let pixelformat = f.u32(V4L2_FORMAT_PIX.pixelformat);
  if (!VIVID_FORMATS.some((x) => x.fourcc === pixelformat)) pixelformat = V4L2_PIX_FMT_YUYV;
  const { width, height } =
    sizes === "webcam"
      ? nearestSize(f.u32(V4L2_FORMAT_PIX.width), f.u32(V4L2_FORMAT_PIX.height))
      : continuousSize(f.u32(V4L2_FORMAT_PIX.width), f.u32(V4L2_FORMAT_PIX.height));
  const bpp = tpgBytesPerPixel(pixelformat);
  let bytesperline = f.u32(V4L2_FORMAT_PIX.bytesperline);
  bytesperline = Math.min(Math.max(bytesperline, width * bpp), MAX_LINE_PIXELS * bpp);
  const fmt: VividPixFormat = {
    width,
    height,
    pixelformat,
    field: V4L2_FIELD_NONE,
    bytesperline,
    sizeimage: bytesperline * height,
    colorspace: V4L2_COLORSPACE_SRGB,
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

/** vivid_enum_fmt_vid(). */
export function vividEnumFmt(f: CStruct): void {
  const index = f.u32(V4L2_FMTDESC.index);
  const fmt = VIVID_FORMATS[index];
  if (fmt === undefined) throw new KernelError("EINVAL", `vivid: no format ${index}`);
  f.setU32(V4L2_FMTDESC.flags, 0)
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
export const VIVID_ALL_CAPS = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING;

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
        vividTryFmt(f, this.frameSizes);
      },
      sFmt: (_v, f) => {
        const fmt = vividTryFmt(f, this.frameSizes);
        if (this.queue.busy)
          throw new KernelError("EBUSY", "vivid: S_FMT while buffers are allocated");
        this.fmt = fmt;
      },
      gParm: (_v, p) => vividWriteParm(p, this.timeperframe, 1),
    };
  }
}
