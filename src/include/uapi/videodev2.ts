/**
 * include/uapi/linux/videodev2.h: the V4L2 constants and struct layouts the video
 * ioctls use, for LP64 (x86-64, arm64). Sizes and offsets were checked against the
 * installed header with offsetof() (struct v4l2_buffer is 88 bytes, v4l2_format 208,
 * v4l2_create_buffers 256).
 */

import { _IOR, _IOW, _IOWR } from "./ioctl.js";

// ---------------------------------------------------------------------------------
// enum v4l2_buf_type

export const V4L2_BUF_TYPE_VIDEO_CAPTURE = 1;
export const V4L2_BUF_TYPE_VIDEO_OUTPUT = 2;
export const V4L2_BUF_TYPE_VIDEO_OVERLAY = 3;
export const V4L2_BUF_TYPE_VBI_CAPTURE = 4;
export const V4L2_BUF_TYPE_VBI_OUTPUT = 5;
export const V4L2_BUF_TYPE_SLICED_VBI_CAPTURE = 6;
export const V4L2_BUF_TYPE_SLICED_VBI_OUTPUT = 7;
export const V4L2_BUF_TYPE_VIDEO_OUTPUT_OVERLAY = 8;
export const V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE = 9;
export const V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE = 10;
export const V4L2_BUF_TYPE_SDR_CAPTURE = 11;
export const V4L2_BUF_TYPE_SDR_OUTPUT = 12;
export const V4L2_BUF_TYPE_META_CAPTURE = 13;
export const V4L2_BUF_TYPE_META_OUTPUT = 14;

/** V4L2_TYPE_IS_OUTPUT(). */
export function V4L2_TYPE_IS_OUTPUT(type: number): boolean {
  return (
    type === V4L2_BUF_TYPE_VIDEO_OUTPUT ||
    type === V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE ||
    type === V4L2_BUF_TYPE_VIDEO_OVERLAY ||
    type === V4L2_BUF_TYPE_VIDEO_OUTPUT_OVERLAY ||
    type === V4L2_BUF_TYPE_VBI_OUTPUT ||
    type === V4L2_BUF_TYPE_SLICED_VBI_OUTPUT ||
    type === V4L2_BUF_TYPE_SDR_OUTPUT ||
    type === V4L2_BUF_TYPE_META_OUTPUT
  );
}

/** V4L2_TYPE_IS_MULTIPLANAR(). */
export function V4L2_TYPE_IS_MULTIPLANAR(type: number): boolean {
  return type === V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE || type === V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

// ---------------------------------------------------------------------------------
// enum v4l2_memory, memory flags, buffer capabilities

export const V4L2_MEMORY_MMAP = 1;
export const V4L2_MEMORY_USERPTR = 2;
export const V4L2_MEMORY_OVERLAY = 3;
export const V4L2_MEMORY_DMABUF = 4;

export const V4L2_MEMORY_FLAG_NON_COHERENT = 1 << 0;

export const V4L2_BUF_CAP_SUPPORTS_MMAP = 1 << 0;
export const V4L2_BUF_CAP_SUPPORTS_USERPTR = 1 << 1;
export const V4L2_BUF_CAP_SUPPORTS_DMABUF = 1 << 2;
export const V4L2_BUF_CAP_SUPPORTS_REQUESTS = 1 << 3;
export const V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS = 1 << 4;
export const V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF = 1 << 5;
export const V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS = 1 << 6;
export const V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS = 1 << 7;
export const V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS = 1 << 8;

// ---------------------------------------------------------------------------------
// v4l2_buffer flags

export const V4L2_BUF_FLAG_MAPPED = 0x00000001;
export const V4L2_BUF_FLAG_QUEUED = 0x00000002;
export const V4L2_BUF_FLAG_DONE = 0x00000004;
export const V4L2_BUF_FLAG_KEYFRAME = 0x00000008;
export const V4L2_BUF_FLAG_PFRAME = 0x00000010;
export const V4L2_BUF_FLAG_BFRAME = 0x00000020;
export const V4L2_BUF_FLAG_ERROR = 0x00000040;
export const V4L2_BUF_FLAG_IN_REQUEST = 0x00000080;
export const V4L2_BUF_FLAG_TIMECODE = 0x00000100;
export const V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF = 0x00000200;
export const V4L2_BUF_FLAG_PREPARED = 0x00000400;
export const V4L2_BUF_FLAG_NO_CACHE_INVALIDATE = 0x00000800;
export const V4L2_BUF_FLAG_NO_CACHE_CLEAN = 0x00001000;
export const V4L2_BUF_FLAG_TIMESTAMP_MASK = 0x0000e000;
export const V4L2_BUF_FLAG_TIMESTAMP_UNKNOWN = 0x00000000;
export const V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC = 0x00002000;
export const V4L2_BUF_FLAG_TIMESTAMP_COPY = 0x00004000;
export const V4L2_BUF_FLAG_TSTAMP_SRC_MASK = 0x00070000;
export const V4L2_BUF_FLAG_TSTAMP_SRC_EOF = 0x00000000;
export const V4L2_BUF_FLAG_TSTAMP_SRC_SOE = 0x00010000;
export const V4L2_BUF_FLAG_LAST = 0x00100000;
export const V4L2_BUF_FLAG_REQUEST_FD = 0x00800000;

// ---------------------------------------------------------------------------------
// enum v4l2_field, enum v4l2_colorspace

export const V4L2_FIELD_ANY = 0;
export const V4L2_FIELD_NONE = 1;
export const V4L2_FIELD_TOP = 2;
export const V4L2_FIELD_BOTTOM = 3;
export const V4L2_FIELD_INTERLACED = 4;
export const V4L2_FIELD_SEQ_TB = 5;
export const V4L2_FIELD_SEQ_BT = 6;
export const V4L2_FIELD_ALTERNATE = 7;
export const V4L2_FIELD_INTERLACED_TB = 8;
export const V4L2_FIELD_INTERLACED_BT = 9;

export const V4L2_COLORSPACE_DEFAULT = 0;
export const V4L2_COLORSPACE_SMPTE170M = 1;
export const V4L2_COLORSPACE_REC709 = 3;
export const V4L2_COLORSPACE_SRGB = 8;

// ---------------------------------------------------------------------------------
// Capabilities (struct v4l2_capability)

export const V4L2_CAP_VIDEO_CAPTURE = 0x00000001;
export const V4L2_CAP_VIDEO_OUTPUT = 0x00000002;
export const V4L2_CAP_VIDEO_OVERLAY = 0x00000004;
export const V4L2_CAP_VBI_CAPTURE = 0x00000010;
export const V4L2_CAP_VBI_OUTPUT = 0x00000020;
export const V4L2_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000;
export const V4L2_CAP_VIDEO_OUTPUT_MPLANE = 0x00002000;
export const V4L2_CAP_VIDEO_M2M_MPLANE = 0x00004000;
export const V4L2_CAP_VIDEO_M2M = 0x00008000;
export const V4L2_CAP_EXT_PIX_FORMAT = 0x00200000;
export const V4L2_CAP_META_CAPTURE = 0x00800000;
export const V4L2_CAP_READWRITE = 0x01000000;
export const V4L2_CAP_STREAMING = 0x04000000;
export const V4L2_CAP_META_OUTPUT = 0x08000000;
export const V4L2_CAP_IO_MC = 0x20000000;
export const V4L2_CAP_DEVICE_CAPS = 0x80000000;

/** struct v4l2_captureparm / v4l2_outputparm capability: timeperframe is supported. */
export const V4L2_CAP_TIMEPERFRAME = 0x1000;

// ---------------------------------------------------------------------------------
// Pixel formats

/** v4l2_fourcc(a, b, c, d). */
export function v4l2FourccCode(text: string): number {
  if (text.length !== 4) throw new RangeError(`fourcc '${text}' is not 4 characters`);
  return (
    (text.charCodeAt(0) |
      (text.charCodeAt(1) << 8) |
      (text.charCodeAt(2) << 16) |
      (text.charCodeAt(3) << 24)) >>>
    0
  );
}

/** 'YUYV': 16 bits per pixel, Y0 Cb Y1 Cr. */
export const V4L2_PIX_FMT_YUYV = v4l2FourccCode("YUYV");
/** 'XR24': 32-bit BGRX 8-8-8-8 (bytes B, G, R, X in memory). */
export const V4L2_PIX_FMT_XBGR32 = v4l2FourccCode("XR24");
/** 'BX24': 32-bit XRGB 8-8-8-8. */
export const V4L2_PIX_FMT_XRGB32 = v4l2FourccCode("BX24");
/** 'RGB3': 24-bit RGB 8-8-8 (bytes R, G, B in memory). */
export const V4L2_PIX_FMT_RGB24 = v4l2FourccCode("RGB3");

/** V4L2_FMT_FLAG_* of struct v4l2_fmtdesc. */
export const V4L2_FMT_FLAG_COMPRESSED = 0x0001;
/** The CSC flags a capture driver sets for formats whose colorimetry userspace may choose. */
export const V4L2_FMT_FLAG_CSC_COLORSPACE = 0x0020;
export const V4L2_FMT_FLAG_CSC_XFER_FUNC = 0x0040;
export const V4L2_FMT_FLAG_CSC_YCBCR_ENC = 0x0080;
export const V4L2_FMT_FLAG_CSC_HSV_ENC = V4L2_FMT_FLAG_CSC_YCBCR_ENC;
export const V4L2_FMT_FLAG_CSC_QUANTIZATION = 0x0100;

// ---------------------------------------------------------------------------------
// Struct sizes and field offsets (LP64)

/** struct v4l2_capability: driver[16] card[32] bus_info[32] version capabilities device_caps reserved[3]. */
export const SIZEOF_V4L2_CAPABILITY = 104;
export const V4L2_CAPABILITY = {
  driver: 0,
  card: 16,
  busInfo: 48,
  version: 80,
  capabilities: 84,
  deviceCaps: 88,
} as const;

/** struct v4l2_fmtdesc. */
export const SIZEOF_V4L2_FMTDESC = 64;
export const V4L2_FMTDESC = {
  index: 0,
  type: 4,
  flags: 8,
  description: 12,
  pixelformat: 44,
  mbusCode: 48,
} as const;

/** struct v4l2_format: type, then an 8-aligned 200-byte union; fmt.pix is struct v4l2_pix_format. */
export const SIZEOF_V4L2_FORMAT = 208;
/** struct v4l2_pix_format (48 bytes), offsets inside struct v4l2_format. */
export const V4L2_FORMAT_PIX = {
  type: 0,
  width: 8,
  height: 12,
  pixelformat: 16,
  field: 20,
  bytesperline: 24,
  sizeimage: 28,
  colorspace: 32,
  priv: 36,
  flags: 40,
  ycbcrEnc: 44,
  quantization: 48,
  xferFunc: 52,
} as const;

/** struct v4l2_streamparm: type, then a 200-byte union (v4l2_captureparm / v4l2_outputparm). */
export const SIZEOF_V4L2_STREAMPARM = 204;
export const V4L2_STREAMPARM = {
  type: 0,
  capability: 4,
  captureOrOutputMode: 8,
  numerator: 12,
  denominator: 16,
  extendedmode: 20,
  /** readbuffers (capture) / writebuffers (output). */
  buffers: 24,
} as const;

/** struct v4l2_requestbuffers. */
export const SIZEOF_V4L2_REQUESTBUFFERS = 20;
export const V4L2_REQUESTBUFFERS = {
  count: 0,
  type: 4,
  memory: 8,
  capabilities: 12,
  /** __u8 flags. */
  flags: 16,
} as const;

/** struct v4l2_buffer (88 bytes: struct timeval is two longs). */
export const SIZEOF_V4L2_BUFFER = 88;
export const V4L2_BUFFER = {
  index: 0,
  type: 4,
  bytesused: 8,
  flags: 12,
  field: 16,
  tvSec: 24,
  tvUsec: 32,
  timecode: 40,
  sequence: 56,
  memory: 60,
  /** union m: __u32 offset, unsigned long userptr, struct v4l2_plane *planes, __s32 fd. */
  m: 64,
  length: 72,
  reserved2: 76,
  requestFd: 80,
} as const;

/** struct v4l2_exportbuffer. */
export const SIZEOF_V4L2_EXPORTBUFFER = 64;
export const V4L2_EXPORTBUFFER = { type: 0, index: 4, plane: 8, flags: 12, fd: 16 } as const;

/** struct v4l2_create_buffers: index count memory, then struct v4l2_format at 16. */
export const SIZEOF_V4L2_CREATE_BUFFERS = 256;
export const V4L2_CREATE_BUFFERS = {
  index: 0,
  count: 4,
  memory: 8,
  format: 16,
  capabilities: 224,
  flags: 228,
  maxNumBuffers: 232,
} as const;

// ---------------------------------------------------------------------------------
// ioctl numbers ('V')

const V = "V";
export const VIDIOC_QUERYCAP = _IOR(V, 0, SIZEOF_V4L2_CAPABILITY);
export const VIDIOC_ENUM_FMT = _IOWR(V, 2, SIZEOF_V4L2_FMTDESC);
export const VIDIOC_G_FMT = _IOWR(V, 4, SIZEOF_V4L2_FORMAT);
export const VIDIOC_S_FMT = _IOWR(V, 5, SIZEOF_V4L2_FORMAT);
export const VIDIOC_REQBUFS = _IOWR(V, 8, SIZEOF_V4L2_REQUESTBUFFERS);
export const VIDIOC_QUERYBUF = _IOWR(V, 9, SIZEOF_V4L2_BUFFER);
export const VIDIOC_QBUF = _IOWR(V, 15, SIZEOF_V4L2_BUFFER);
export const VIDIOC_EXPBUF = _IOWR(V, 16, SIZEOF_V4L2_EXPORTBUFFER);
export const VIDIOC_DQBUF = _IOWR(V, 17, SIZEOF_V4L2_BUFFER);
export const VIDIOC_STREAMON = _IOW(V, 18, 4);
export const VIDIOC_STREAMOFF = _IOW(V, 19, 4);
export const VIDIOC_G_PARM = _IOWR(V, 21, SIZEOF_V4L2_STREAMPARM);
export const VIDIOC_S_PARM = _IOWR(V, 22, SIZEOF_V4L2_STREAMPARM);
export const VIDIOC_TRY_FMT = _IOWR(V, 64, SIZEOF_V4L2_FORMAT);
export const VIDIOC_CREATE_BUFS = _IOWR(V, 92, SIZEOF_V4L2_CREATE_BUFFERS);
export const VIDIOC_PREPARE_BUF = _IOWR(V, 93, SIZEOF_V4L2_BUFFER);

/** struct v4l2_remove_buffers: index, count, type, reserved[13] (64 bytes). */
export const SIZEOF_V4L2_REMOVE_BUFFERS = 64;
export const V4L2_REMOVE_BUFFERS = {
  index: 0,
  count: 4,
  type: 8,
  reserved: 12,
} as const;
export const VIDIOC_REMOVE_BUFS = _IOWR(V, 104, SIZEOF_V4L2_REMOVE_BUFFERS);

/** struct v4l2_frmsizeenum: index, pixel_format, type, then the discrete or stepwise union. */
export const SIZEOF_V4L2_FRMSIZEENUM = 44;
export const V4L2_FRMSIZEENUM = {
  index: 0,
  pixelFormat: 4,
  type: 8,
  /** discrete.width / stepwise.min_width, then height, or the six stepwise fields. */
  union: 12,
} as const;
/** struct v4l2_frmivalenum: index, pixel_format, width, height, type, then the union. */
export const SIZEOF_V4L2_FRMIVALENUM = 52;
export const V4L2_FRMIVALENUM = {
  index: 0,
  pixelFormat: 4,
  width: 8,
  height: 12,
  type: 16,
  /** discrete.numerator, discrete.denominator (or stepwise min, max, step). */
  union: 20,
} as const;
export const V4L2_FRMSIZE_TYPE_DISCRETE = 1;
export const V4L2_FRMSIZE_TYPE_STEPWISE = 3;
export const V4L2_FRMIVAL_TYPE_DISCRETE = 1;
export const VIDIOC_ENUM_FRAMESIZES = _IOWR(V, 74, SIZEOF_V4L2_FRMSIZEENUM);
export const VIDIOC_ENUM_FRAMEINTERVALS = _IOWR(V, 75, SIZEOF_V4L2_FRMIVALENUM);

/** VIDEO_MAX_FRAME / VB2_MAX_FRAME: buffers per queue. */
export const VIDEO_MAX_FRAME = 32;
/** The version VIDIOC_QUERYCAP reports: LINUX_VERSION_CODE of the modelled kernel (6.12.0). */
export const V4L2_MODEL_KERNEL_VERSION = (6 << 16) | (12 << 8) | 0;
