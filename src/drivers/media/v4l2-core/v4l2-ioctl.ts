/**
 * The V4L2 ioctl dispatcher (drivers/media/v4l2-core/v4l2-ioctl.c: video_usercopy and
 * __video_do_ioctl): copy the argument in by its _IOC size, check the buffer type
 * against the node (check_fmt), call the driver or the vb2 helper, copy the result out
 * on success. ENOTTY for an ioctl the node does not implement.
 */

import { KernelError } from "../../../errno.js";
import { _IOC_DIR, _IOC_SIZE, IOC_READ, IOC_WRITE } from "../../../include/uapi/ioctl.js";
import { CStruct } from "../../../include/uapi/struct.js";
import {
  SIZEOF_V4L2_CAPABILITY,
  V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS,
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_BUF_TYPE_VIDEO_OUTPUT,
  V4L2_CAP_DEVICE_CAPS,
  V4L2_CAPABILITY,
  V4L2_CREATE_BUFFERS,
  V4L2_FMTDESC,
  V4L2_FORMAT_PIX,
  V4L2_FRMIVALENUM,
  V4L2_FRMSIZEENUM,
  V4L2_MODEL_KERNEL_VERSION,
  V4L2_REMOVE_BUFFERS,
  V4L2_REQUESTBUFFERS,
  V4L2_STREAMPARM,
  VIDIOC_CREATE_BUFS,
  VIDIOC_DQBUF,
  VIDIOC_ENUM_FMT,
  VIDIOC_ENUM_FRAMEINTERVALS,
  VIDIOC_ENUM_FRAMESIZES,
  VIDIOC_EXPBUF,
  VIDIOC_G_FMT,
  VIDIOC_G_PARM,
  VIDIOC_PREPARE_BUF,
  VIDIOC_QBUF,
  VIDIOC_QUERYBUF,
  VIDIOC_QUERYCAP,
  VIDIOC_REMOVE_BUFS,
  VIDIOC_REQBUFS,
  VIDIOC_S_FMT,
  VIDIOC_S_PARM,
  VIDIOC_STREAMOFF,
  VIDIOC_STREAMON,
  VIDIOC_TRY_FMT,
} from "../../../include/uapi/videodev2.js";
import type { Current, File } from "../../../vfs/file.js";
import {
  type V4l2Fh,
  vb2IoctlCreateBufs,
  vb2IoctlDqbuf,
  vb2IoctlExpbuf,
  vb2IoctlPrepareBuf,
  vb2IoctlQbuf,
  vb2IoctlQuerybuf,
  vb2IoctlRemoveBufs,
  vb2IoctlReqbufs,
  vb2IoctlStreamoff,
  vb2IoctlStreamon,
} from "../videobuf2/videobuf2-v4l2.js";
import type { VideoDevice } from "./v4l2-dev.js";

/**
 * struct v4l2_ioctl_ops, the part a single-planar video driver fills in. Each gets the
 * ioctl's struct as the kernel copied it in and edits it in place; errors are thrown.
 * Missing operations make the ioctl ENOTTY.
 */
export interface V4l2IoctlOps {
  /** vidioc_querycap: driver, card, bus_info and `capabilities` (v4l_querycap adds the rest). */
  querycap(vdev: VideoDevice, cap: CStruct): void;
  enumFmt?(vdev: VideoDevice, f: CStruct, fh: V4l2Fh): void;
  /** The format ioctls get the file handle too: an m2m driver keeps formats per context. */
  gFmt?(vdev: VideoDevice, f: CStruct, fh: V4l2Fh): void;
  sFmt?(vdev: VideoDevice, f: CStruct, fh: V4l2Fh): void;
  tryFmt?(vdev: VideoDevice, f: CStruct, fh: V4l2Fh): void;
  gParm?(vdev: VideoDevice, p: CStruct): void;
  /** vidioc_enum_framesizes / vidioc_enum_frameintervals (the core clears the output fields first). */
  enumFramesizes?(vdev: VideoDevice, f: CStruct): void;
  enumFrameintervals?(vdev: VideoDevice, f: CStruct): void;
  sParm?(vdev: VideoDevice, p: CStruct): void;
  /**
   * The buffer ioctls (vidioc_reqbufs ... vidioc_streamoff): default the vb2_ioctl_*
   * helpers on vdev->queue; m2m drivers set the v4l2_m2m_ioctl_* ones.
   */
  buffers?: V4l2BufferIoctls;
}

type Handler = (vdev: VideoDevice, fh: V4l2Fh, s: CStruct, file: File, current: Current) => void;

/** The buffer ioctls a driver may take over (struct v4l2_ioctl_ops' vidioc_*buf* members). */
export interface V4l2BufferIoctls {
  readonly reqbufs: Handler;
  readonly createBufs: Handler;
  readonly querybuf: Handler;
  readonly qbuf: Handler;
  readonly prepareBuf: Handler;
  readonly dqbuf: Handler;
  readonly expbuf: Handler;
  readonly streamon: Handler;
  readonly streamoff: Handler;
  /**
   * vidioc_remove_bufs: optional, as in Linux (vivid sets vb2_ioctl_remove_bufs; vim2m
   * sets none). Without it VIDIOC_REMOVE_BUFS is ENOTTY and REQBUFS/CREATE_BUFS do not
   * report V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS.
   */
  readonly removeBufs?: Handler;
}

/** The vb2_ioctl_* helpers on the node's own queue. */
const vb2BufferIoctls: V4l2BufferIoctls = {
  reqbufs: (vdev, fh, s) => vb2IoctlReqbufs(vdev.vb2Queue(), fh, s),
  createBufs: (vdev, fh, s) => vb2IoctlCreateBufs(vdev.vb2Queue(), fh, s),
  querybuf: (vdev, _fh, s) => vb2IoctlQuerybuf(vdev.vb2Queue(), s),
  qbuf: (vdev, fh, s, _file, current) => vb2IoctlQbuf(vdev.vb2Queue(), fh, s, current),
  prepareBuf: (vdev, fh, s, _file, current) => vb2IoctlPrepareBuf(vdev.vb2Queue(), fh, s, current),
  dqbuf: (vdev, fh, s, file) => vb2IoctlDqbuf(vdev.vb2Queue(), fh, s, file),
  expbuf: (vdev, fh, s, _file, current) => vb2IoctlExpbuf(vdev.vb2Queue(), fh, s, current),
  streamon: (vdev, fh, s) => vb2IoctlStreamon(vdev.vb2Queue(), fh, s.u32(0)),
  streamoff: (vdev, fh, s) => vb2IoctlStreamoff(vdev.vb2Queue(), fh, s.u32(0)),
  removeBufs: (vdev, fh, s) => vb2IoctlRemoveBufs(vdev.vb2Queue(), fh, s),
};

function bufferOp(vdev: VideoDevice, op: Exclude<keyof V4l2BufferIoctls, "removeBufs">): Handler {
  return (vdev.ioctlOps.buffers ?? vb2BufferIoctls)[op];
}

/**
 * is_valid_ioctl(vfd, VIDIOC_REMOVE_BUFS): determine_valid_ioctls() (v4l2-dev.c) enables
 * it only when the driver sets both vidioc_remove_bufs and vidioc_create_bufs.
 */
function removeBufsOp(vdev: VideoDevice): Handler | undefined {
  return (vdev.ioctlOps.buffers ?? vb2BufferIoctls).removeBufs;
}

/**
 * v4l_reqbufs() / v4l_create_bufs() (v4l2-ioctl.c): capabilities start as
 * V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS when the node offers VIDIOC_REMOVE_BUFS; vb2 ORs in
 * the rest (vb2_set_flags_and_caps).
 */
function withRemoveBufsCap(op: "reqbufs" | "createBufs", capsOffset: number): Handler {
  return (vdev, fh, s, file, current) => {
    bufferOp(vdev, op)(vdev, fh, s, file, current);
    if (removeBufsOp(vdev) !== undefined)
      s.setU32(capsOffset, s.u32(capsOffset) | V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS);
  };
}

/**
 * check_fmt(): the buffer type must be the node's (a capture node takes VIDEO_CAPTURE
 * only; an m2m node VIDEO_OUTPUT and VIDEO_CAPTURE).
 */
function checkType(vdev: VideoDevice, type: number, what: string): void {
  if (vdev.vflDir === "m2m") {
    if (type === V4L2_BUF_TYPE_VIDEO_OUTPUT || type === V4L2_BUF_TYPE_VIDEO_CAPTURE) return;
    throw new KernelError(
      "EINVAL",
      `${vdev.name}: ${what} with buffer type ${type} on an m2m node`,
    );
  }
  if (type !== vdev.vb2Queue().type)
    throw new KernelError(
      "EINVAL",
      `${vdev.name}: ${what} with buffer type ${type} on a node of type ${vdev.vb2Queue().type}`,
    );
}

function driverOp<K extends keyof V4l2IoctlOps>(
  vdev: VideoDevice,
  op: K,
): NonNullable<V4l2IoctlOps[K]> {
  const f = vdev.ioctlOps[op];
  if (f === undefined)
    throw new KernelError("ENOTTY", `${vdev.name}: ioctl ${op} is not implemented`);
  return f as NonNullable<V4l2IoctlOps[K]>;
}

const HANDLERS = new Map<number, Handler>([
  [
    VIDIOC_ENUM_FRAMESIZES,
    (vdev, _fh, s) => {
      // INFO_FL_CLEAR(v4l2_frmsizeenum, pixel_format): only index and pixel_format come in.
      const op = driverOp(vdev, "enumFramesizes");
      s.bytes.fill(0, V4L2_FRMSIZEENUM.type);
      op(vdev, s);
    },
  ],
  [
    VIDIOC_ENUM_FRAMEINTERVALS,
    (vdev, _fh, s) => {
      // INFO_FL_CLEAR(v4l2_frmivalenum, height).
      const op = driverOp(vdev, "enumFrameintervals");
      s.bytes.fill(0, V4L2_FRMIVALENUM.type);
      op(vdev, s);
    },
  ],
  [
    VIDIOC_QUERYCAP,
    (vdev, _fh, s) => {
      // v4l_querycap(): the driver fills in its part, the core the device caps and version.
      s.bytes.fill(0, 0, SIZEOF_V4L2_CAPABILITY);
      s.setU32(V4L2_CAPABILITY.version, V4L2_MODEL_KERNEL_VERSION);
      vdev.ioctlOps.querycap(vdev, s);
      s.setU32(V4L2_CAPABILITY.deviceCaps, vdev.deviceCaps);
      s.setU32(
        V4L2_CAPABILITY.capabilities,
        s.u32(V4L2_CAPABILITY.capabilities) | V4L2_CAP_DEVICE_CAPS,
      );
    },
  ],
  [
    VIDIOC_ENUM_FMT,
    (vdev, fh, s) => {
      const op = driverOp(vdev, "enumFmt");
      checkType(vdev, s.u32(V4L2_FMTDESC.type), "VIDIOC_ENUM_FMT");
      op(vdev, s, fh);
    },
  ],
  [
    VIDIOC_G_FMT,
    (vdev, fh, s) => {
      const op = driverOp(vdev, "gFmt");
      checkType(vdev, s.u32(V4L2_FORMAT_PIX.type), "VIDIOC_G_FMT");
      op(vdev, s, fh);
    },
  ],
  [
    VIDIOC_S_FMT,
    (vdev, fh, s) => {
      const op = driverOp(vdev, "sFmt");
      checkType(vdev, s.u32(V4L2_FORMAT_PIX.type), "VIDIOC_S_FMT");
      op(vdev, s, fh);
    },
  ],
  [
    VIDIOC_TRY_FMT,
    (vdev, fh, s) => {
      const op = driverOp(vdev, "tryFmt");
      checkType(vdev, s.u32(V4L2_FORMAT_PIX.type), "VIDIOC_TRY_FMT");
      op(vdev, s, fh);
    },
  ],
  [
    VIDIOC_G_PARM,
    (vdev, _fh, s) => {
      const op = driverOp(vdev, "gParm");
      checkType(vdev, s.u32(V4L2_STREAMPARM.type), "VIDIOC_G_PARM");
      op(vdev, s);
    },
  ],
  [
    VIDIOC_S_PARM,
    (vdev, _fh, s) => {
      const op = driverOp(vdev, "sParm");
      checkType(vdev, s.u32(V4L2_STREAMPARM.type), "VIDIOC_S_PARM");
      op(vdev, s);
    },
  ],
  [VIDIOC_REQBUFS, withRemoveBufsCap("reqbufs", V4L2_REQUESTBUFFERS.capabilities)],
  [VIDIOC_CREATE_BUFS, withRemoveBufsCap("createBufs", V4L2_CREATE_BUFFERS.capabilities)],
  [VIDIOC_QUERYBUF, (vdev, ...a) => bufferOp(vdev, "querybuf")(vdev, ...a)],
  [VIDIOC_QBUF, (vdev, ...a) => bufferOp(vdev, "qbuf")(vdev, ...a)],
  [VIDIOC_PREPARE_BUF, (vdev, ...a) => bufferOp(vdev, "prepareBuf")(vdev, ...a)],
  [VIDIOC_DQBUF, (vdev, ...a) => bufferOp(vdev, "dqbuf")(vdev, ...a)],
  [VIDIOC_EXPBUF, (vdev, ...a) => bufferOp(vdev, "expbuf")(vdev, ...a)],
  [VIDIOC_STREAMON, (vdev, ...a) => bufferOp(vdev, "streamon")(vdev, ...a)],
  [VIDIOC_STREAMOFF, (vdev, ...a) => bufferOp(vdev, "streamoff")(vdev, ...a)],
  [
    VIDIOC_REMOVE_BUFS,
    (vdev, fh, s, file, current) => {
      // v4l_remove_bufs(); INFO_FL_CLEAR(v4l2_remove_buffers, type) zeroes reserved[].
      const op = removeBufsOp(vdev);
      if (op === undefined)
        throw new KernelError("ENOTTY", `${vdev.name}: VIDIOC_REMOVE_BUFS is not offered`);
      s.bytes.fill(0, V4L2_REMOVE_BUFFERS.reserved);
      op(vdev, fh, s, file, current);
    },
  ],
]);

/**
 * video_ioctl2(): dispatches `cmd` for an open file of `vdev`. The struct is copied in
 * (EFAULT if `arg` is not mapped), handled, and copied back only on success, as
 * video_usercopy does.
 */
export function videoIoctl2(
  vdev: VideoDevice,
  file: File,
  fh: V4l2Fh,
  cmd: number,
  arg: number,
  current: Current,
): number {
  const handler = HANDLERS.get(cmd);
  if (handler === undefined)
    throw new KernelError("ENOTTY", `${vdev.name}: unknown ioctl 0x${cmd.toString(16)}`);
  const size = _IOC_SIZE(cmd);
  const dir = _IOC_DIR(cmd);
  const bytes = dir & IOC_WRITE ? current.copyFromUser(arg, size) : new Uint8Array(size);
  const s = new CStruct(bytes);
  handler(vdev, fh, s, file, current);
  if (dir & IOC_READ) current.copyToUser(arg, bytes);
  return 0;
}
