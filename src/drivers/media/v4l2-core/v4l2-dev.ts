/**
 * Video device nodes (drivers/media/v4l2-core/v4l2-dev.c, struct video_device): a
 * /dev/videoN entry whose file operations are the vb2 helpers (vb2_fop_mmap,
 * vb2_fop_poll, vb2_fop_release) and video_ioctl2. Each open gets its own file handle
 * (struct v4l2_fh); the queue remembers which handle allocated its buffers.
 *
 * A memory-to-memory node (vflDir "m2m") has no queue of its own: each open gets a
 * context with two (v4l2-mem2mem.ts), made by the driver's file operations.
 */

import { KernelError } from "../../../errno.js";
import { O_NONBLOCK } from "../../../include/uapi/fcntl.js";
import { File, type FileOperations, type Vma } from "../../../vfs/file.js";
import type { DriverHost } from "../../host.js";
import type { Vb2Queue } from "../videobuf2/videobuf2-core.js";
import {
  type V4l2Fh,
  vb2FopPoll,
  vb2FopRead,
  vb2FopRelease,
  vb2FopWrite,
} from "../videobuf2/videobuf2-v4l2.js";
import { type V4l2IoctlOps, videoIoctl2 } from "./v4l2-ioctl.js";
import type { V4l2M2mCtx } from "./v4l2-mem2mem.js";

/** enum vfl_devnode_direction. */
export type VflDir = "rx" | "tx" | "m2m";

/**
 * The driver's struct v4l2_file_operations, where it differs from the vb2 helpers on
 * the node's queue (vb2_fop_mmap, vb2_fop_poll, vb2_fop_release): m2m drivers set all.
 */
export interface V4l2FileOps {
  /** After the file handle is made (v4l2_fh_open + the driver's open). */
  open?(fh: V4l2FileHandle): void;
  release?(fh: V4l2FileHandle): void;
  mmap?(fh: V4l2FileHandle, vma: Vma): void;
  poll?(fh: V4l2FileHandle, events: number): number;
}

/** What a driver fills in before video_register_device(). */
export interface VideoDeviceConfig {
  /** vdev->name, e.g. "vivid-000-vid-cap". */
  readonly name: string;
  /** The node's path, e.g. "/dev/video0". */
  readonly path: string;
  readonly vflDir: VflDir;
  /** vdev->device_caps (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING ...). */
  readonly deviceCaps: number;
  /** vdev->queue; absent on m2m nodes, whose queues are per file handle. */
  readonly queue?: Vb2Queue;
  readonly ioctlOps: V4l2IoctlOps;
  /** The driver's file operations (default: the vb2 helpers on `queue`). */
  readonly fops?: V4l2FileOps;
}

/** The private data of an open video node (struct v4l2_fh). */
export interface V4l2FileHandle extends V4l2Fh {
  readonly vdev: VideoDevice;
  /** fh->m2m_ctx: the file's mem2mem context (m2m nodes). */
  m2mCtx?: V4l2M2mCtx;
}

/** struct video_device. */
export class VideoDevice {
  readonly name: string;
  readonly path: string;
  readonly vflDir: VflDir;
  readonly deviceCaps: number;
  readonly queue: Vb2Queue | undefined;
  readonly ioctlOps: V4l2IoctlOps;
  readonly fops: V4l2FileOps;
  #nextFh = 1;
  #openCount = 0;

  constructor(c: VideoDeviceConfig) {
    this.name = c.name;
    this.path = c.path;
    this.vflDir = c.vflDir;
    this.deviceCaps = c.deviceCaps;
    this.queue = c.queue;
    this.ioctlOps = c.ioctlOps;
    this.fops = c.fops ?? {};
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
    this.fops.open?.(fh);
    this.#openCount++;
    return new File(v4l2Fops, fh, flags, this.path);
  }

  /** v4l2_release(): the owner's close frees the queue. */
  _release(fh: V4l2FileHandle): void {
    this.#openCount--;
    if (this.fops.release !== undefined) this.fops.release(fh);
    else if (this.queue !== undefined) vb2FopRelease(this.queue, fh);
  }

  /** vdev->queue for the vb2 helpers: ENOTTY on a node without one. */
  vb2Queue(): Vb2Queue {
    if (this.queue === undefined)
      throw new KernelError("ENOTTY", `${this.name}: the node has no vb2 queue of its own`);
    return this.queue;
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
    // The driver's mmap, or vb2_fop_mmap().
    const fh = fhOf(file);
    if (fh.vdev.fops.mmap !== undefined) fh.vdev.fops.mmap(fh, vma);
    else fh.vdev.vb2Queue().mmap(vma);
  },
  poll(file, events) {
    // The driver's poll, or vb2_fop_poll() (no V4L2 events are modelled).
    const fh = fhOf(file);
    if (fh.vdev.fops.poll !== undefined) return fh.vdev.fops.poll(fh, events);
    return vb2FopPoll(fh.vdev.vb2Queue(), fh, events);
  },
  read(file, len, current) {
    // vb2_fop_read(); nodes without a queue of their own (m2m) have no read (EINVAL).
    const q = fhOf(file).vdev.queue;
    if (q === undefined) throw new KernelError("EINVAL", `${file.path}: no read()`);
    return vb2FopRead(q, fhOf(file), len, (file.flags & O_NONBLOCK) !== 0, current);
  },
  write(file, data, current) {
    // vb2_fop_write().
    const q = fhOf(file).vdev.queue;
    if (q === undefined) throw new KernelError("EINVAL", `${file.path}: no write()`);
    return vb2FopWrite(q, fhOf(file), data, (file.flags & O_NONBLOCK) !== 0, current);
  },
};
