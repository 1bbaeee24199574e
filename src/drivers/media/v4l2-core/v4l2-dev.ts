/**
 * Video device nodes (drivers/media/v4l2-core/v4l2-dev.c, struct video_device): a
 * /dev/videoN entry whose file operations are the vb2 helpers (vb2_fop_mmap,
 * vb2_fop_poll, vb2_fop_release) and video_ioctl2. Each open gets its own file handle
 * (struct v4l2_fh); the queue remembers which handle allocated its buffers.
 */

import { File, type FileOperations } from "../../../vfs/file.js";
import type { DriverHost } from "../../host.js";
import type { Vb2Queue } from "../videobuf2/videobuf2-core.js";
import { type V4l2Fh, vb2FopRelease } from "../videobuf2/videobuf2-v4l2.js";
import { type V4l2IoctlOps, videoIoctl2 } from "./v4l2-ioctl.js";

/** enum vfl_devnode_direction. */
export type VflDir = "rx" | "tx";

/** What a driver fills in before video_register_device(). */
export interface VideoDeviceConfig {
  /** vdev->name, e.g. "vivid-000-vid-cap". */
  readonly name: string;
  /** The node's path, e.g. "/dev/video0". */
  readonly path: string;
  readonly vflDir: VflDir;
  /** vdev->device_caps (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING ...). */
  readonly deviceCaps: number;
  readonly queue: Vb2Queue;
  readonly ioctlOps: V4l2IoctlOps;
}

/** The private data of an open video node (struct v4l2_fh). */
export interface V4l2FileHandle extends V4l2Fh {
  readonly vdev: VideoDevice;
}

/** struct video_device. */
export class VideoDevice {
  readonly name: string;
  readonly path: string;
  readonly vflDir: VflDir;
  readonly deviceCaps: number;
  readonly queue: Vb2Queue;
  readonly ioctlOps: V4l2IoctlOps;
  #nextFh = 1;
  #openCount = 0;

  constructor(c: VideoDeviceConfig) {
    this.name = c.name;
    this.path = c.path;
    this.vflDir = c.vflDir;
    this.deviceCaps = c.deviceCaps;
    this.queue = c.queue;
    this.ioctlOps = c.ioctlOps;
  }

  /** Open file handles. */
  get openCount(): number {
    return this.#openCount;
  }

  /** video_register_device(): adds the node to the host's device table. */
  register(host: DriverHost): void {
    host.addDevnode(this.path, (flags) => this.open(flags));
  }

  /** v4l2_open() / v4l2_fh_open(). */
  open(flags: number): File<V4l2FileHandle> {
    const fh: V4l2FileHandle = { id: this.#nextFh++, vdev: this };
    this.#openCount++;
    return new File(v4l2Fops, fh, flags, this.path);
  }

  /** v4l2_release(): the owner's close frees the queue. */
  _release(fh: V4l2FileHandle): void {
    this.#openCount--;
    vb2FopRelease(this.queue, fh);
  }
}

function fhOf(file: File): V4l2FileHandle {
  return file.privateData as V4l2FileHandle;
}

/** v4l2_fops with the vb2 helpers. */
export const v4l2Fops: FileOperations = {
  name: "video4linux",
  release(file) {
    const fh = fhOf(file);
    fh.vdev._release(fh);
  },
  unlockedIoctl(file, cmd, arg, current) {
    const fh = fhOf(file);
    return videoIoctl2(fh.vdev, file, fh, cmd, arg, current);
  },
  mmap(file, vma) {
    // vb2_fop_mmap().
    fhOf(file).vdev.queue.mmap(vma);
  },
  poll(file, events) {
    // vb2_fop_poll() (no V4L2 events are modelled).
    return fhOf(file).vdev.queue.poll(events);
  },
};
