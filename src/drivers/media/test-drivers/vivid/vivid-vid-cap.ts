/**
 * vivid's video capture node (drivers/media/test-drivers/vivid/vivid-vid-cap.c and
 * vivid-kthread-cap.c): a webcam that, once streaming, "captures" one frame per frame
 * interval on the virtual clock. Each frame takes the oldest buffer the driver holds,
 * writes the test pattern for that frame's sequence number into it by DMA (occupying
 * the device for the transfer time), then completes it with sequence, timestamp and
 * payload. A tick without a buffer drops the frame (its sequence number is skipped).
 */

import { KernelError } from "../../../../errno.js";
import { V4L2_FIELD_NONE, V4L2_STREAMPARM } from "../../../../include/uapi/videodev2.js";
import { ScratchBuffer } from "../../../../lib/scratch.js";
import type { V4l2IoctlOps } from "../../v4l2-core/v4l2-ioctl.js";
import type { Vb2Buffer, Vb2Ops, Vb2Queue, Vb2QueueSetup } from "../../videobuf2/videobuf2-core.js";
import { vividTestPatternInto } from "./vivid-tpg.js";
import {
  VIVID_WEBCAM_INTERVALS,
  VividStream,
  vividNearestInterval,
  vividWebcamInterval,
  vividWebcamIvalCount,
  vividWriteParm,
} from "./vivid-vid-common.js";

/**
 * The frame being written, made when the DMA runs and reused by every capture device of
 * this thread (it lives within one DMA callback; a fresh frame-sized array per frame or
 * per device costs host page faults when runs boot a machine each).
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
      () => this.device.writeSegments(segs, vividTestPatternInto(fmt, seq, frameScratch.get(size))),
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

  #setInterval(iv: { numerator: number; denominator: number }): void {
    this.timeperframe = iv;
    this.frameClock.intervalNs = this.intervalNs;
  }
}

export { VIVID_ALL_CAPS, vividQuerycap } from "./vivid-vid-common.js";
