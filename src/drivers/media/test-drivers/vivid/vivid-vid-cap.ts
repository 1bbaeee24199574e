/**
 * vivid's video capture node (drivers/media/test-drivers/vivid/vivid-vid-cap.c and
 * vivid-kthread-cap.c): a webcam that, once streaming, "captures" one frame per frame
 * interval on the virtual clock. Each frame takes the oldest buffer the driver holds,
 * writes the test pattern for that frame's sequence number into it by DMA (occupying
 * the device for the transfer time), then completes it with sequence, timestamp and
 * payload. A tick without a buffer drops the frame (its sequence number is skipped).
 */

import { KernelError } from "../../../../errno.js";
import type { CStruct } from "../../../../include/uapi/struct.js";
import {
  V4L2_CAP_STREAMING,
  V4L2_CAP_VIDEO_CAPTURE,
  V4L2_CAP_VIDEO_OUTPUT,
  V4L2_FIELD_NONE,
  V4L2_STREAMPARM,
} from "../../../../include/uapi/videodev2.js";
import type { DmaDevice } from "../../../../machine/device.js";
import type { Machine } from "../../../../machine/machine.js";
import type { VideoDevice } from "../../v4l2-core/v4l2-dev.js";
import type { V4l2IoctlOps } from "../../v4l2-core/v4l2-ioctl.js";
import type { Vb2Buffer, Vb2Ops, Vb2Queue, Vb2QueueSetup } from "../../videobuf2/videobuf2-core.js";
import { vividTestPattern } from "./vivid-tpg.js";
import {
  VividActiveList,
  VividFrameClock,
  type VividFrameSizes,
  type VividPixFormat,
  vividDefaultFormat,
  vividEnumFmt,
  vividNearestInterval,
  vividTryFmt,
  vividWriteFmt,
  vividWriteParm,
} from "./vivid-vid-common.js";

/** The capture side of a vivid instance. */
export class VividCapture {
  fmt: VividPixFormat = vividDefaultFormat();
  timeperframe = { numerator: 1, denominator: 30 };
  /** The input's frame sizes (VividOptions.frameSizes). */
  frameSizes: VividFrameSizes = "webcam";
  readonly active = new VividActiveList();
  readonly frameClock: VividFrameClock;
  /** Frames written into buffers since the last STREAMON, and frames dropped for want of one. */
  framesCaptured = 0;
  framesDropped = 0;
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
      (seq) => this.#tick(seq),
    );
  }

  get intervalNs(): number {
    return (this.timeperframe.numerator / this.timeperframe.denominator) * 1e9;
  }

  /** One frame period: fill the oldest buffer with frame `seq` by DMA, or drop the frame. */
  #tick(seq: number): void {
    const vb = this.active.list.shift();
    if (vb === undefined) {
      this.framesDropped++;
      return;
    }
    this.active.inFlight = vb;
    const fmt = { ...this.fmt };
    const pattern = vividTestPattern(fmt, seq);
    const segs = vb.planes[0]!.mem!.dmaSegments();
    this.device.submit(
      `capture frame ${seq} into buffer ${vb.index}`,
      pattern.length,
      () => this.device.writeSegments(segs, pattern),
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
    queueSetup: (_q: Vb2Queue, setup: Vb2QueueSetup) => {
      // vid_cap_queue_setup(): CREATE_BUFS sizes must hold a frame of the current format.
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
    },
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
    bufQueue: (vb: Vb2Buffer) => {
      this.active.list.push(vb);
      this.frameClock.arm();
    },
    startStreaming: () => {
      this.framesCaptured = 0;
      this.framesDropped = 0;
      this.frameClock.intervalNs = this.intervalNs;
      this.frameClock.start();
      this.frameClock.arm();
    },
    stopStreaming: (q: Vb2Queue) => {
      this.frameClock.stop();
      this.active.drain(q, this.machine.clock);
    },
  };

  /** The capture node's ioctls (vivid-core.c's vidioc_* with the vid_cap parts). */
  readonly ioctlOps: V4l2IoctlOps = {
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
    sParm: (_v, p) => {
      this.timeperframe = vividNearestInterval(
        p.u32(V4L2_STREAMPARM.numerator),
        p.u32(V4L2_STREAMPARM.denominator),
      );
      this.frameClock.intervalNs = this.intervalNs;
      vividWriteParm(p, this.timeperframe, 1);
    },
  };
}

/** vidioc_querycap() of vivid-core.c. */
export function vividQuerycap(vdev: VideoDevice, cap: CStruct): void {
  cap
    .setCstr(0, 16, "vivid")
    .setCstr(16, 32, "vivid")
    .setCstr(48, 32, `platform:${vdev.name.slice(0, 9)}`)
    .setU32(84, VIVID_ALL_CAPS);
}

/** Every capability of the vivid instance (capture + output nodes). */
export const VIVID_ALL_CAPS = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_STREAMING;
