/**
 * vivid's video capture node (drivers/media/test-drivers/vivid/vivid-vid-cap.c and
 * vivid-kthread-cap.c): a webcam that, once streaming, "captures" one frame per frame
 * interval on the virtual clock. Each frame takes the oldest buffer the driver holds,
 * writes the test pattern for that frame's sequence number into it by DMA (occupying
 * the device for the transfer time), then completes it with sequence, timestamp and
 * payload. A tick without a buffer drops the frame (its sequence number is skipped).
 */

import { dmaSegmentsSlice } from "../../../../dma/scatterlist.js";
import { KernelError } from "../../../../errno.js";
import type { CStruct } from "../../../../include/uapi/struct.js";
import {
  V4L2_FIELD_NONE,
  V4L2_FRMIVAL_TYPE_DISCRETE,
  V4L2_FRMIVALENUM,
  V4L2_FRMSIZE_TYPE_DISCRETE,
  V4L2_FRMSIZE_TYPE_STEPWISE,
  V4L2_FRMSIZEENUM,
  V4L2_STREAMPARM,
} from "../../../../include/uapi/videodev2.js";
import { ScratchBuffer } from "../../../../lib/scratch.js";
import type { V4l2IoctlOps } from "../../v4l2-core/v4l2-ioctl.js";
import type { Vb2Buffer, Vb2Ops, Vb2Queue, Vb2QueueSetup } from "../../videobuf2/videobuf2-core.js";
import { vividGetFormat } from "./vivid-formats.js";
import { tpgSameRows, vividTestPatternCached } from "./vivid-tpg.js";
import {
  VIVID_WEBCAM_INTERVALS,
  VIVID_WEBCAM_SIZES,
  VividStream,
  vividNearestInterval,
  vividWebcamInterval,
  vividWebcamIvalCount,
  vividWriteParm,
} from "./vivid-vid-common.js";

/**
 * The frame being written, made when the DMA runs and reused by every capture device of
 * this thread (it lives within one DMA callback; a fresh frame-sized array per frame or
 * per device costs host page faults when runs boot a machine each). It keeps the last
 * frame drawn, so the next frame of the same format redraws only the band.
 */
const frameScratch = new ScratchBuffer();

/** The capture side of a vivid instance. */
export class VividCapture extends VividStream {
  readonly node = "capture" as const;
  /** Frames written into buffers since the last STREAMON, and frames dropped for want of one. */
  framesCaptured = 0;
  framesDropped = 0;

  /** One frame period: fill the oldest buffer with frame `seq` by DMA, or drop the frame. */
  protected tick(seq: number): void {
    const vb = this.active.list.shift();
    if (vb === undefined) {
      this.framesDropped++;
      return;
    }
    this.active.inFlight = vb;
    const fmt = { ...this.fmt };
    // Every plane of the format, in the one buffer of a single-planar device.
    const size = fmt.sizeimage;
    const segs = vb.planes[0]!.mem!.dmaSegments();
    this.device.submit(
      `capture frame ${seq} into buffer ${vb.index}`,
      size,
      () => {
        const frame = vividTestPatternCached(fmt, seq, frameScratch);
        // DRAM is told which lines are the line above (the bars'), for whoever reads them,
        // and which frame this is: the bars a buffer holds from its last frame stay.
        const same = tpgSameRows(fmt);
        if (same === undefined) this.device.writeSegments(segs, frame);
        else
          this.device.writeRows(
            { rowBytes: fmt.bytesperline, same, content: frameScratch.content },
            () => this.device.writeSegments(segs, frame),
            dmaSegmentsSlice(segs, 0, frame.length),
          );
      },
      () => {
        this.active.inFlight = undefined;
        this.framesCaptured++;
        vb.sequence = seq;
        vb.field = V4L2_FIELD_NONE;
        vb.timestamp = this.machine.clock.now;
        vb.queue.bufferDone(vb, "done");
        this.frameClock.arm();
      },
    );
    if (this.active.list.length > 0) this.frameClock.arm();
  }

  /** vivid_vid_cap_qops. */
  readonly qops: Vb2Ops = {
    queueSetup: (_q: Vb2Queue, setup: Vb2QueueSetup) => this.queueSetup(setup),
    bufPrepare: (vb: Vb2Buffer) => {
      // vid_cap_buf_prepare(): the frame must fit the plane.
      const size = this.fmt.sizeimage;
      if (vb.planeSize(0) < size)
        throw new KernelError(
          "EINVAL",
          `vivid: data will not fit into plane 0 (${vb.planeSize(0)} < ${size})`,
        );
      vb.setPlanePayload(0, size);
    },
    bufQueue: (vb: Vb2Buffer) => this.bufQueue(vb),
    startStreaming: () => {
      this.framesCaptured = 0;
      this.framesDropped = 0;
      this.startStreaming();
    },
    stopStreaming: (q: Vb2Queue) => this.stopStreaming(q),
  };

  /** The capture node's ioctls (vivid-core.c's vidioc_* with the vid_cap parts). */
  readonly ioctlOps: V4l2IoctlOps = this.#captureIoctls();

  #captureIoctls(): V4l2IoctlOps {
    const base = this.formatIoctls();
    return {
      ...base,
      sFmt: (v, f, fh) => {
        // vivid_s_fmt_vid_cap() for the webcam: the interval is clamped to what the
        // previous size allowed (webcam_ival_count of the old webcam_size_idx).
        const oldHeight = this.fmt.height;
        base.sFmt!(v, f, fh);
        if (this.frameSizes !== "webcam") return;
        const count = vividWebcamIvalCount(oldHeight);
        const idx = VIVID_WEBCAM_INTERVALS.findIndex(
          (iv) =>
            iv.numerator === this.timeperframe.numerator &&
            iv.denominator === this.timeperframe.denominator,
        );
        if (idx >= count) this.#setInterval(VIVID_WEBCAM_INTERVALS[count - 1]!);
      },
      enumFramesizes: (_v, f) => this.#enumFramesizes(f),
      enumFrameintervals: (_v, f) => this.#enumFrameintervals(f),
      sParm: (_v, p) => {
        const num = p.u32(V4L2_STREAMPARM.numerator);
        const den = p.u32(V4L2_STREAMPARM.denominator);
        this.#setInterval(
          this.frameSizes === "webcam"
            ? vividWebcamInterval(num, den, this.fmt.height)
            : vividNearestInterval(num, den),
        );
        vividWriteParm(p, this.timeperframe, 1);
      },
    };
  }

  /**
   * vidioc_enum_framesizes(): the webcam's webcam_sizes[] one by one; the scaler's
   * stepwise range (16..16384 by 2, 16..8640 by 2) as a single entry; EINVAL for a
   * format vivid does not have or an index past the end.
   */
  #enumFramesizes(f: CStruct): void {
    const index = f.u32(V4L2_FRMSIZEENUM.index);
    if (vividGetFormat(f.u32(V4L2_FRMSIZEENUM.pixelFormat)) === undefined)
      throw new KernelError("EINVAL", "vivid: ENUM_FRAMESIZES of a format vivid does not have");
    const u = V4L2_FRMSIZEENUM.union;
    if (this.frameSizes === "webcam") {
      const sz = VIVID_WEBCAM_SIZES[index];
      if (sz === undefined) throw new KernelError("EINVAL", `vivid: no frame size ${index}`);
      f.setU32(V4L2_FRMSIZEENUM.type, V4L2_FRMSIZE_TYPE_DISCRETE)
        .setU32(u, sz.width)
        .setU32(u + 4, sz.height);
      return;
    }
    if (index !== 0) throw new KernelError("EINVAL", `vivid: no frame size ${index}`);
    f.setU32(V4L2_FRMSIZEENUM.type, V4L2_FRMSIZE_TYPE_STEPWISE);
    const bounds = [16, 16384, 2, 16, 8640, 2];
    for (let i = 0; i < bounds.length; i++) f.setU32(u + 4 * i, bounds[i]!);
  }

  /**
   * vidioc_enum_frameintervals(): for a webcam size, the first webcam_ival_count() of
   * webcam_intervals[]; otherwise the current interval as the only one. EINVAL for an
   * unknown format, a size that is not a webcam size, or an index past the end.
   */
  #enumFrameintervals(f: CStruct): void {
    const index = f.u32(V4L2_FRMIVALENUM.index);
    if (vividGetFormat(f.u32(V4L2_FRMIVALENUM.pixelFormat)) === undefined)
      throw new KernelError("EINVAL", "vivid: ENUM_FRAMEINTERVALS of a format vivid does not have");
    const width = f.u32(V4L2_FRMIVALENUM.width);
    const height = f.u32(V4L2_FRMIVALENUM.height);
    let iv = this.timeperframe;
    if (this.frameSizes === "webcam") {
      const sz = VIVID_WEBCAM_SIZES.find((s) => s.width === width && s.height === height);
      if (sz === undefined)
        throw new KernelError("EINVAL", `vivid: ${width}x${height} is not a webcam size`);
      if (index >= vividWebcamIvalCount(height))
        throw new KernelError("EINVAL", `vivid: no frame interval ${index} at ${width}x${height}`);
      iv = VIVID_WEBCAM_INTERVALS[index]!;
    } else if (index !== 0 || width < 16 || width > 16384 || height < 16 || height > 8640) {
      throw new KernelError("EINVAL", `vivid: no frame interval ${index} at ${width}x${height}`);
    }
    f.setU32(V4L2_FRMIVALENUM.type, V4L2_FRMIVAL_TYPE_DISCRETE)
      .setU32(V4L2_FRMIVALENUM.union, iv.numerator)
      .setU32(V4L2_FRMIVALENUM.union + 4, iv.denominator);
  }

  #setInterval(iv: { numerator: number; denominator: number }): void {
    this.timeperframe = iv;
    this.frameClock.intervalNs = this.intervalNs;
  }
}

export { VIVID_ALL_CAPS, vividQuerycap } from "./vivid-vid-common.js";
