/**
 * Typed V4L2 ioctls over the {@link Uapi} contract, the way a camera application calls
 * them in C: the real struct layouts of include/uapi/linux/videodev2.h (LP64) are
 * encoded in user memory, so the same calls work against the simulated kernel and,
 * through FFI, against Linux's vivid.
 */

import type { CStruct } from "../include/uapi/struct.js";
import {
  SIZEOF_V4L2_BUFFER,
  SIZEOF_V4L2_CAPABILITY,
  SIZEOF_V4L2_CREATE_BUFFERS,
  SIZEOF_V4L2_EXPORTBUFFER,
  SIZEOF_V4L2_FMTDESC,
  SIZEOF_V4L2_FORMAT,
  SIZEOF_V4L2_FRMIVALENUM,
  SIZEOF_V4L2_FRMSIZEENUM,
  SIZEOF_V4L2_REMOVE_BUFFERS,
  SIZEOF_V4L2_REQUESTBUFFERS,
  SIZEOF_V4L2_STREAMPARM,
  V4L2_BUFFER,
  V4L2_CAPABILITY,
  V4L2_CREATE_BUFFERS,
  V4L2_EXPORTBUFFER,
  V4L2_FMTDESC,
  V4L2_FORMAT_PIX,
  V4L2_FRMIVALENUM,
  V4L2_FRMSIZEENUM,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_USERPTR,
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
  v4l2FourccCode,
} from "../include/uapi/videodev2.js";
import { withUserStruct } from "./lib.js";
import type { Uapi } from "./uapi.js";

/** struct v4l2_capability. */
export interface V4l2Capability {
  readonly driver: string;
  readonly card: string;
  readonly busInfo: string;
  readonly version: number;
  readonly capabilities: number;
  readonly deviceCaps: number;
}

/** struct v4l2_fmtdesc. */
export interface V4l2FmtDesc {
  readonly index: number;
  readonly flags: number;
  readonly description: string;
  readonly pixelformat: number;
}

/** VIDIOC_ENUM_FMT: the `index`th format of buffer type `type` (EINVAL past the last). */
export function vidiocEnumFmt(u: Uapi, fd: number, type: number, index: number): V4l2FmtDesc {
  return withUserStruct(u, SIZEOF_V4L2_FMTDESC, (s, addr) => {
    s.setU32(V4L2_FMTDESC.index, index).setU32(V4L2_FMTDESC.type, type);
    u.ioctl(fd, VIDIOC_ENUM_FMT, addr);
    return {
      index: s.u32(V4L2_FMTDESC.index),
      flags: s.u32(V4L2_FMTDESC.flags),
      description: s.cstr(V4L2_FMTDESC.description, 32),
      pixelformat: s.u32(V4L2_FMTDESC.pixelformat),
    };
  });
}

/** struct v4l2_pix_format (the fields applications use). */
export interface V4l2PixFormat {
  readonly width: number;
  readonly height: number;
  readonly pixelformat: number;
  readonly field: number;
  readonly bytesperline: number;
  readonly sizeimage: number;
  readonly colorspace: number;
}

/** struct v4l2_buffer (single-planar). `timestampNs` is the timeval in nanoseconds (microsecond precision). */
export interface V4l2Buffer {
  readonly index: number;
  readonly type: number;
  readonly bytesused: number;
  readonly flags: number;
  readonly field: number;
  readonly timestampNs: number;
  readonly sequence: number;
  readonly memory: number;
  /** m.offset (MMAP). */
  readonly offset: number;
  /** m.userptr (USERPTR). */
  readonly userptr: number;
  /** m.fd (DMABUF). */
  readonly fd: number;
  readonly length: number;
}

/** v4l2_fourcc('Y','U','Y','V'): the pixel format code of a 4-character name. */
export function v4l2Fourcc(text: string): number {
  return v4l2FourccCode(text);
}

/** The 4-character name of a pixel format code. */
export function fourccToString(v: number): string {
  return String.fromCharCode(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

/** VIDIOC_QUERYCAP. */
export function vidiocQuerycap(u: Uapi, fd: number): V4l2Capability {
  return withUserStruct(u, SIZEOF_V4L2_CAPABILITY, (s, addr) => {
    u.ioctl(fd, VIDIOC_QUERYCAP, addr);
    return {
      driver: s.cstr(V4L2_CAPABILITY.driver, 16),
      card: s.cstr(V4L2_CAPABILITY.card, 32),
      busInfo: s.cstr(V4L2_CAPABILITY.busInfo, 32),
      version: s.u32(V4L2_CAPABILITY.version),
      capabilities: s.u32(V4L2_CAPABILITY.capabilities),
      deviceCaps: s.u32(V4L2_CAPABILITY.deviceCaps),
    };
  });
}

function readPix(s: CStruct): V4l2PixFormat {
  return {
    width: s.u32(V4L2_FORMAT_PIX.width),
    height: s.u32(V4L2_FORMAT_PIX.height),
    pixelformat: s.u32(V4L2_FORMAT_PIX.pixelformat),
    field: s.u32(V4L2_FORMAT_PIX.field),
    bytesperline: s.u32(V4L2_FORMAT_PIX.bytesperline),
    sizeimage: s.u32(V4L2_FORMAT_PIX.sizeimage),
    colorspace: s.u32(V4L2_FORMAT_PIX.colorspace),
  };
}

/** The format arguments S_FMT and TRY_FMT take. */
export interface V4l2FormatRequest {
  width: number;
  height: number;
  pixelformat: number;
  field?: number;
  bytesperline?: number;
}

function setFmt(
  u: Uapi,
  fd: number,
  cmd: number,
  type: number,
  fmt: V4l2FormatRequest,
): V4l2PixFormat {
  return withUserStruct(u, SIZEOF_V4L2_FORMAT, (s, addr) => {
    s.setU32(V4L2_FORMAT_PIX.type, type)
      .setU32(V4L2_FORMAT_PIX.width, fmt.width)
      .setU32(V4L2_FORMAT_PIX.height, fmt.height)
      .setU32(V4L2_FORMAT_PIX.pixelformat, fmt.pixelformat)
      .setU32(V4L2_FORMAT_PIX.field, fmt.field ?? 0)
      .setU32(V4L2_FORMAT_PIX.bytesperline, fmt.bytesperline ?? 0);
    u.ioctl(fd, cmd, addr);
    return readPix(s);
  });
}

/** VIDIOC_G_FMT for a single-planar `type`. */
export function vidiocGFmt(u: Uapi, fd: number, type: number): V4l2PixFormat {
  return withUserStruct(u, SIZEOF_V4L2_FORMAT, (s, addr) => {
    s.setU32(V4L2_FORMAT_PIX.type, type);
    u.ioctl(fd, VIDIOC_G_FMT, addr);
    return readPix(s);
  });
}

/** VIDIOC_S_FMT: returns the format the driver chose. */
export function vidiocSFmt(
  u: Uapi,
  fd: number,
  type: number,
  fmt: V4l2FormatRequest,
): V4l2PixFormat {
  return setFmt(u, fd, VIDIOC_S_FMT, type, fmt);
}

/** VIDIOC_TRY_FMT: the format the driver would choose. */
export function vidiocTryFmt(
  u: Uapi,
  fd: number,
  type: number,
  fmt: V4l2FormatRequest,
): V4l2PixFormat {
  return setFmt(u, fd, VIDIOC_TRY_FMT, type, fmt);
}

/** VIDIOC_ENUM_FRAMESIZES: the `index`th size of `pixelformat` (type 1 discrete: width, height; 3 stepwise: the six bounds). */
export function vidiocEnumFramesizes(
  u: Uapi,
  fd: number,
  pixelformat: number,
  index: number,
): { type: number; values: number[] } {
  return withUserStruct(u, SIZEOF_V4L2_FRMSIZEENUM, (s, addr) => {
    s.setU32(V4L2_FRMSIZEENUM.index, index).setU32(V4L2_FRMSIZEENUM.pixelFormat, pixelformat);
    u.ioctl(fd, VIDIOC_ENUM_FRAMESIZES, addr);
    const type = s.u32(V4L2_FRMSIZEENUM.type);
    const n = type === 1 ? 2 : 6;
    return {
      type,
      values: Array.from({ length: n }, (_, i) => s.u32(V4L2_FRMSIZEENUM.union + 4 * i)),
    };
  });
}

/** VIDIOC_ENUM_FRAMEINTERVALS: the `index`th discrete interval at a size. */
export function vidiocEnumFrameintervals(
  u: Uapi,
  fd: number,
  req: { pixelformat: number; width: number; height: number; index: number },
): { type: number; numerator: number; denominator: number } {
  return withUserStruct(u, SIZEOF_V4L2_FRMIVALENUM, (s, addr) => {
    s.setU32(V4L2_FRMIVALENUM.index, req.index)
      .setU32(V4L2_FRMIVALENUM.pixelFormat, req.pixelformat)
      .setU32(V4L2_FRMIVALENUM.width, req.width)
      .setU32(V4L2_FRMIVALENUM.height, req.height);
    u.ioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, addr);
    return {
      type: s.u32(V4L2_FRMIVALENUM.type),
      numerator: s.u32(V4L2_FRMIVALENUM.union),
      denominator: s.u32(V4L2_FRMIVALENUM.union + 4),
    };
  });
}

/** VIDIOC_G_PARM: the frame interval, the capability bits and readbuffers/writebuffers. */
export function vidiocGParm(
  u: Uapi,
  fd: number,
  type: number,
): { numerator: number; denominator: number; capability: number; buffers: number } {
  return withUserStruct(u, SIZEOF_V4L2_STREAMPARM, (s, addr) => {
    s.setU32(V4L2_STREAMPARM.type, type);
    u.ioctl(fd, VIDIOC_G_PARM, addr);
    return {
      numerator: s.u32(V4L2_STREAMPARM.numerator),
      denominator: s.u32(V4L2_STREAMPARM.denominator),
      capability: s.u32(V4L2_STREAMPARM.capability),
      buffers: s.u32(V4L2_STREAMPARM.buffers),
    };
  });
}

/** VIDIOC_S_PARM with a frame interval: returns the interval the driver chose. */
export function vidiocSParm(
  u: Uapi,
  fd: number,
  type: number,
  timeperframe: { numerator: number; denominator: number },
): { numerator: number; denominator: number } {
  return withUserStruct(u, SIZEOF_V4L2_STREAMPARM, (s, addr) => {
    s.setU32(V4L2_STREAMPARM.type, type)
      .setU32(V4L2_STREAMPARM.numerator, timeperframe.numerator)
      .setU32(V4L2_STREAMPARM.denominator, timeperframe.denominator);
    u.ioctl(fd, VIDIOC_S_PARM, addr);
    return {
      numerator: s.u32(V4L2_STREAMPARM.numerator),
      denominator: s.u32(V4L2_STREAMPARM.denominator),
    };
  });
}

/** VIDIOC_REQBUFS: the count granted, the queue's V4L2_BUF_CAP_* and the memory flags it honoured. */
export function vidiocReqbufs(
  u: Uapi,
  fd: number,
  req: { count: number; type: number; memory: number; flags?: number },
): { count: number; capabilities: number; flags: number } {
  return withUserStruct(u, SIZEOF_V4L2_REQUESTBUFFERS, (s, addr) => {
    s.setU32(V4L2_REQUESTBUFFERS.count, req.count)
      .setU32(V4L2_REQUESTBUFFERS.type, req.type)
      .setU32(V4L2_REQUESTBUFFERS.memory, req.memory);
    s.bytes[V4L2_REQUESTBUFFERS.flags] = (req.flags ?? 0) & 0xff;
    u.ioctl(fd, VIDIOC_REQBUFS, addr);
    return {
      count: s.u32(V4L2_REQUESTBUFFERS.count),
      capabilities: s.u32(V4L2_REQUESTBUFFERS.capabilities),
      flags: s.bytes[V4L2_REQUESTBUFFERS.flags]!,
    };
  });
}

/**
 * VIDIOC_CREATE_BUFS for buffers of `fmt`. Without `fmt.sizeimage` the size is the one
 * VIDIOC_TRY_FMT gives for the format (as applications do).
 */
export function vidiocCreateBufs(
  u: Uapi,
  fd: number,
  req: {
    count: number;
    memory: number;
    type: number;
    fmt: { width: number; height: number; pixelformat: number; sizeimage?: number };
    flags?: number;
  },
): { index: number; count: number; capabilities: number; flags: number; maxNumBuffers: number } {
  const pix =
    req.fmt.sizeimage !== undefined
      ? { ...req.fmt, field: 0, bytesperline: 0, sizeimage: req.fmt.sizeimage }
      : vidiocTryFmt(u, fd, req.type, req.fmt);
  return withUserStruct(u, SIZEOF_V4L2_CREATE_BUFFERS, (s, addr) => {
    const f = V4L2_CREATE_BUFFERS.format;
    s.setU32(V4L2_CREATE_BUFFERS.count, req.count)
      .setU32(V4L2_CREATE_BUFFERS.memory, req.memory)
      .setU32(f + V4L2_FORMAT_PIX.type, req.type)
      .setU32(f + V4L2_FORMAT_PIX.width, pix.width)
      .setU32(f + V4L2_FORMAT_PIX.height, pix.height)
      .setU32(f + V4L2_FORMAT_PIX.pixelformat, pix.pixelformat)
      .setU32(f + V4L2_FORMAT_PIX.field, pix.field)
      .setU32(f + V4L2_FORMAT_PIX.bytesperline, pix.bytesperline)
      .setU32(f + V4L2_FORMAT_PIX.sizeimage, pix.sizeimage)
      .setU32(V4L2_CREATE_BUFFERS.flags, req.flags ?? 0);
    u.ioctl(fd, VIDIOC_CREATE_BUFS, addr);
    return {
      index: s.u32(V4L2_CREATE_BUFFERS.index),
      count: s.u32(V4L2_CREATE_BUFFERS.count),
      capabilities: s.u32(V4L2_CREATE_BUFFERS.capabilities),
      flags: s.u32(V4L2_CREATE_BUFFERS.flags),
      // Valid when capabilities has V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS.
      maxNumBuffers: s.u32(V4L2_CREATE_BUFFERS.maxNumBuffers),
    };
  });
}

/**
 * VIDIOC_REMOVE_BUFS (Linux 6.8+): frees the queue's buffers [index, index + count).
 * `fillReserved` fills reserved[] before the call; the kernel zeroes it
 * (INFO_FL_CLEAR(v4l2_remove_buffers, type)), and the bytes come back as `reserved`.
 */
export function vidiocRemoveBufs(
  u: Uapi,
  fd: number,
  req: { index: number; count: number; type: number; fillReserved?: number },
): { reserved: Uint8Array } {
  return withUserStruct(u, SIZEOF_V4L2_REMOVE_BUFFERS, (s, addr) => {
    s.setU32(V4L2_REMOVE_BUFFERS.index, req.index)
      .setU32(V4L2_REMOVE_BUFFERS.count, req.count)
      .setU32(V4L2_REMOVE_BUFFERS.type, req.type);
    if (req.fillReserved !== undefined)
      s.bytes.fill(req.fillReserved, V4L2_REMOVE_BUFFERS.reserved, SIZEOF_V4L2_REMOVE_BUFFERS);
    u.ioctl(fd, VIDIOC_REMOVE_BUFS, addr);
    return { reserved: s.bytes.slice(V4L2_REMOVE_BUFFERS.reserved, SIZEOF_V4L2_REMOVE_BUFFERS) };
  });
}

function readBuffer(s: CStruct): V4l2Buffer {
  const memory = s.u32(V4L2_BUFFER.memory);
  return {
    index: s.u32(V4L2_BUFFER.index),
    type: s.u32(V4L2_BUFFER.type),
    bytesused: s.u32(V4L2_BUFFER.bytesused),
    flags: s.u32(V4L2_BUFFER.flags),
    field: s.u32(V4L2_BUFFER.field),
    timestampNs: s.u64(V4L2_BUFFER.tvSec) * 1e9 + s.u64(V4L2_BUFFER.tvUsec) * 1000,
    sequence: s.u32(V4L2_BUFFER.sequence),
    memory,
    offset:
      memory === V4L2_MEMORY_USERPTR || memory === V4L2_MEMORY_DMABUF ? 0 : s.u32(V4L2_BUFFER.m),
    userptr: memory === V4L2_MEMORY_USERPTR ? s.u64(V4L2_BUFFER.m) : 0,
    fd: memory === V4L2_MEMORY_DMABUF ? s.s32(V4L2_BUFFER.m) : 0,
    length: s.u32(V4L2_BUFFER.length),
  };
}

/** VIDIOC_QUERYBUF. */
export function vidiocQuerybuf(
  u: Uapi,
  fd: number,
  type: number,
  memory: number,
  index: number,
): V4l2Buffer {
  return withUserStruct(u, SIZEOF_V4L2_BUFFER, (s, addr) => {
    s.setU32(V4L2_BUFFER.index, index)
      .setU32(V4L2_BUFFER.type, type)
      .setU32(V4L2_BUFFER.memory, memory);
    u.ioctl(fd, VIDIOC_QUERYBUF, addr);
    return readBuffer(s);
  });
}

/** VIDIOC_QBUF: `userptr`+`length` for USERPTR, `fd` (+`length`) for DMABUF, `bytesused` for output. */
export function vidiocQbuf(
  u: Uapi,
  fd: number,
  buf: {
    index: number;
    type: number;
    memory: number;
    flags?: number;
    bytesused?: number;
    fd?: number;
    userptr?: number;
    length?: number;
    /** The timestamp (ns, sent as a timeval) of an OUTPUT buffer; m2m drivers copy it to the result. */
    timestampNs?: number;
    /** request_fd, read when `flags` has V4L2_BUF_FLAG_REQUEST_FD. */
    requestFd?: number;
  },
): V4l2Buffer {
  return withUserStruct(u, SIZEOF_V4L2_BUFFER, (s, addr) => {
    const ts = buf.timestampNs ?? 0;
    s.setU64(V4L2_BUFFER.tvSec, Math.floor(ts / 1e9)).setU64(
      V4L2_BUFFER.tvUsec,
      Math.floor((ts % 1e9) / 1000),
    );
    s.setU32(V4L2_BUFFER.index, buf.index)
      .setU32(V4L2_BUFFER.type, buf.type)
      .setU32(V4L2_BUFFER.memory, buf.memory)
      .setU32(V4L2_BUFFER.flags, buf.flags ?? 0)
      .setU32(V4L2_BUFFER.bytesused, buf.bytesused ?? 0)
      .setU32(V4L2_BUFFER.length, buf.length ?? 0)
      .setS32(V4L2_BUFFER.requestFd, buf.requestFd ?? 0);
    if (buf.memory === V4L2_MEMORY_USERPTR) s.setU64(V4L2_BUFFER.m, buf.userptr ?? 0);
    else if (buf.memory === V4L2_MEMORY_DMABUF) s.setS32(V4L2_BUFFER.m, buf.fd ?? -1);
    u.ioctl(fd, VIDIOC_QBUF, addr);
    return readBuffer(s);
  });
}

/** VIDIOC_DQBUF: blocks unless the fd is O_NONBLOCK (then EAGAIN when nothing is done). */
export function vidiocDqbuf(u: Uapi, fd: number, type: number, memory: number): V4l2Buffer {
  return withUserStruct(u, SIZEOF_V4L2_BUFFER, (s, addr) => {
    s.setU32(V4L2_BUFFER.type, type).setU32(V4L2_BUFFER.memory, memory);
    u.ioctl(fd, VIDIOC_DQBUF, addr);
    return readBuffer(s);
  });
}

/** VIDIOC_EXPBUF: a dma-buf fd for an MMAP buffer (flags: O_CLOEXEC | O_RDONLY/O_RDWR...). */
export function vidiocExpbuf(
  u: Uapi,
  fd: number,
  req: { type: number; index: number; plane?: number; flags?: number },
): number {
  return withUserStruct(u, SIZEOF_V4L2_EXPORTBUFFER, (s, addr) => {
    s.setU32(V4L2_EXPORTBUFFER.type, req.type)
      .setU32(V4L2_EXPORTBUFFER.index, req.index)
      .setU32(V4L2_EXPORTBUFFER.plane, req.plane ?? 0)
      .setU32(V4L2_EXPORTBUFFER.flags, req.flags ?? 0)
      .setS32(V4L2_EXPORTBUFFER.fd, -1);
    u.ioctl(fd, VIDIOC_EXPBUF, addr);
    return s.s32(V4L2_EXPORTBUFFER.fd);
  });
}

/** VIDIOC_STREAMON. */
export function vidiocStreamon(u: Uapi, fd: number, type: number): void {
  withUserStruct(u, 4, (s, addr) => {
    s.setU32(0, type);
    u.ioctl(fd, VIDIOC_STREAMON, addr);
  });
}

/** VIDIOC_STREAMOFF. */
export function vidiocStreamoff(u: Uapi, fd: number, type: number): void {
  withUserStruct(u, 4, (s, addr) => {
    s.setU32(0, type);
    u.ioctl(fd, VIDIOC_STREAMOFF, addr);
  });
}
