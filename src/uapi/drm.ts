/**
 * Typed DRM calls on the {@link Uapi} contract, the way libdrm's xf86drm.c and
 * xf86drmMode.c make them (drmGetVersion, drmGetCap, drmPrimeHandleToFD,
 * drmModeGetResources...), plus vgem's fence ioctls, simgpu's ioctls and the debugfs
 * CRC files. Only real layouts and numbers are used, so the same calls run against the
 * real kernel's vgem through FFI.
 */

import {
  DRM_EVENT_FLIP_COMPLETE,
  DRM_EVENT_VBLANK,
  DRM_IOCTL_GEM_CLOSE,
  DRM_IOCTL_GET_CAP,
  DRM_IOCTL_PRIME_FD_TO_HANDLE,
  DRM_IOCTL_PRIME_HANDLE_TO_FD,
  DRM_IOCTL_VERSION,
  SIZEOF_DRM_GEM_CLOSE,
  SIZEOF_DRM_GET_CAP,
  SIZEOF_DRM_PRIME_HANDLE,
  SIZEOF_DRM_VERSION,
} from "../include/uapi/drm.js";
import {
  DRM_FORMAT_XRGB8888,
  DRM_FORMAT_YUYV,
  DRM_IOCTL_MODE_ADDFB2,
  DRM_IOCTL_MODE_CREATE_DUMB,
  DRM_IOCTL_MODE_DESTROY_DUMB,
  DRM_IOCTL_MODE_GETCONNECTOR,
  DRM_IOCTL_MODE_GETRESOURCES,
  DRM_IOCTL_MODE_MAP_DUMB,
  DRM_IOCTL_MODE_PAGE_FLIP,
  DRM_IOCTL_MODE_RMFB,
  DRM_IOCTL_MODE_SETCRTC,
  type DrmModeInfo,
  decodeModeInfo,
  encodeModeInfo,
  SIZEOF_DRM_MODE_CARD_RES,
  SIZEOF_DRM_MODE_CREATE_DUMB,
  SIZEOF_DRM_MODE_CRTC,
  SIZEOF_DRM_MODE_CRTC_PAGE_FLIP,
  SIZEOF_DRM_MODE_DESTROY_DUMB,
  SIZEOF_DRM_MODE_FB_CMD2,
  SIZEOF_DRM_MODE_GET_CONNECTOR,
  SIZEOF_DRM_MODE_MAP_DUMB,
  SIZEOF_DRM_MODE_MODEINFO,
} from "../include/uapi/drm-mode.js";
import { O_RDONLY, O_WRONLY } from "../include/uapi/fcntl.js";
import {
  DRM_IOCTL_SIMGPU_GEM_CREATE,
  DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET,
  DRM_IOCTL_SIMGPU_SUBMIT,
  SIMGPU_OP_YUYV_TO_XRGB8888,
  SIZEOF_DRM_SIMGPU_GEM_CREATE,
  SIZEOF_DRM_SIMGPU_GEM_MMAP_OFFSET,
  SIZEOF_DRM_SIMGPU_SUBMIT,
} from "../include/uapi/simgpu-drm.js";
import { CStruct } from "../include/uapi/struct.js";
import {
  DRM_IOCTL_VGEM_FENCE_ATTACH,
  DRM_IOCTL_VGEM_FENCE_SIGNAL,
  SIZEOF_DRM_VGEM_FENCE_ATTACH,
  SIZEOF_DRM_VGEM_FENCE_SIGNAL,
} from "../include/uapi/vgem-drm.js";
import { withUserStruct } from "./lib.js";
import type { Uapi } from "./uapi.js";

export type { DrmModeInfo };

export interface DrmVersion {
  major: number;
  minor: number;
  patchlevel: number;
  name: string;
  date: string;
  desc: string;
}

/** drmGetVersion(): DRM_IOCTL_VERSION twice, once for the lengths, once for the strings. */
export function drmGetVersion(u: Uapi, fd: number): DrmVersion {
  const lens = withUserStruct(u, SIZEOF_DRM_VERSION, (s, addr) => {
    u.ioctl(fd, DRM_IOCTL_VERSION, addr);
    return [s.u64(16), s.u64(32), s.u64(48)] as const;
  });
  const bufs = lens.map((n) => u.alloc(n + 1));
  try {
    return withUserStruct(u, SIZEOF_DRM_VERSION, (s, addr) => {
      lens.forEach((n, i) => {
        s.setU64(16 + i * 16, n).setU64(24 + i * 16, bufs[i]!.addr);
      });
      u.ioctl(fd, DRM_IOCTL_VERSION, addr);
      const str = (i: number): string =>
        new TextDecoder().decode(bufs[i]!.bytes.subarray(0, lens[i]));
      return {
        major: s.s32(0),
        minor: s.s32(4),
        patchlevel: s.s32(8),
        name: str(0),
        date: str(1),
        desc: str(2),
      };
    });
  } finally {
    for (const b of bufs) u.free(b);
  }
}

/** drmGetCap(): DRM_IOCTL_GET_CAP. */
export function drmGetCap(u: Uapi, fd: number, cap: number): bigint {
  return withUserStruct(u, SIZEOF_DRM_GET_CAP, (s, addr) => {
    s.setU64(0, cap);
    u.ioctl(fd, DRM_IOCTL_GET_CAP, addr);
    return s.view.getBigUint64(8, true);
  });
}

/** DRM_IOCTL_MODE_CREATE_DUMB. */
export function drmModeCreateDumb(
  u: Uapi,
  fd: number,
  req: { width: number; height: number; bpp: number },
): { handle: number; pitch: number; size: number } {
  return withUserStruct(u, SIZEOF_DRM_MODE_CREATE_DUMB, (s, addr) => {
    s.setU32(0, req.height).setU32(4, req.width).setU32(8, req.bpp);
    u.ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, addr);
    return { handle: s.u32(16), pitch: s.u32(20), size: s.u64(24) };
  });
}

/** DRM_IOCTL_MODE_MAP_DUMB: the offset to mmap the DRM fd at. */
export function drmModeMapDumb(u: Uapi, fd: number, handle: number): number {
  return withUserStruct(u, SIZEOF_DRM_MODE_MAP_DUMB, (s, addr) => {
    s.setU32(0, handle);
    u.ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, addr);
    return s.u64(8);
  });
}

/** DRM_IOCTL_MODE_DESTROY_DUMB. */
export function drmModeDestroyDumb(u: Uapi, fd: number, handle: number): void {
  withUserStruct(u, SIZEOF_DRM_MODE_DESTROY_DUMB, (s, addr) => {
    s.setU32(0, handle);
    u.ioctl(fd, DRM_IOCTL_MODE_DESTROY_DUMB, addr);
  });
}

/** drmCloseBufferHandle(): DRM_IOCTL_GEM_CLOSE. */
export function drmGemClose(u: Uapi, fd: number, handle: number): void {
  withUserStruct(u, SIZEOF_DRM_GEM_CLOSE, (s, addr) => {
    s.setU32(0, handle);
    u.ioctl(fd, DRM_IOCTL_GEM_CLOSE, addr);
  });
}

/** drmPrimeHandleToFD(): flags DRM_CLOEXEC | DRM_RDWR. */
export function drmPrimeHandleToFd(u: Uapi, fd: number, handle: number, flags: number): number {
  return withUserStruct(u, SIZEOF_DRM_PRIME_HANDLE, (s, addr) => {
    s.setU32(0, handle).setU32(4, flags).setS32(8, -1);
    u.ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, addr);
    return s.s32(8);
  });
}

/** drmPrimeFDToHandle(). */
export function drmPrimeFdToHandle(u: Uapi, fd: number, primeFd: number): number {
  return withUserStruct(u, SIZEOF_DRM_PRIME_HANDLE, (s, addr) => {
    s.setS32(8, primeFd);
    u.ioctl(fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, addr);
    return s.u32(0);
  });
}

function readIds(ptr: { bytes: Uint8Array }, n: number): number[] {
  const s = new CStruct(ptr.bytes);
  return Array.from({ length: n }, (_, i) => s.u32(i * 4));
}

/** drmModeGetResources(): the two-call GETRESOURCES. */
export function drmModeGetResources(
  u: Uapi,
  fd: number,
): { fbs: number[]; crtcs: number[]; connectors: number[]; encoders: number[] } {
  const counts = withUserStruct(u, SIZEOF_DRM_MODE_CARD_RES, (s, addr) => {
    u.ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, addr);
    return [s.u32(32), s.u32(36), s.u32(40), s.u32(44)];
  });
  const arrays = counts.map((n) => u.alloc(Math.max(1, n) * 4));
  try {
    return withUserStruct(u, SIZEOF_DRM_MODE_CARD_RES, (s, addr) => {
      counts.forEach((n, i) => {
        s.setU64(i * 8, arrays[i]!.addr).setU32(32 + i * 4, n);
      });
      u.ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, addr);
      const got = (i: number): number[] =>
        readIds(arrays[i]!, Math.min(counts[i]!, s.u32(32 + i * 4)));
      return { fbs: got(0), crtcs: got(1), connectors: got(2), encoders: got(3) };
    });
  } finally {
    for (const a of arrays) u.free(a);
  }
}

/** drmModeGetConnector(): the two-call GETCONNECTOR with modes and encoders. */
export function drmModeGetConnector(
  u: Uapi,
  fd: number,
  id: number,
): { connectorId: number; connection: number; modes: DrmModeInfo[]; encoderId: number } {
  const counts = withUserStruct(u, SIZEOF_DRM_MODE_GET_CONNECTOR, (s, addr) => {
    s.setU32(48, id);
    u.ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, addr);
    return { modes: s.u32(32), encoders: s.u32(40) };
  });
  const modes = u.alloc(Math.max(1, counts.modes) * SIZEOF_DRM_MODE_MODEINFO);
  const encs = u.alloc(Math.max(1, counts.encoders) * 4);
  try {
    return withUserStruct(u, SIZEOF_DRM_MODE_GET_CONNECTOR, (s, addr) => {
      s.setU32(48, id)
        .setU64(8, modes.addr)
        .setU32(32, counts.modes)
        .setU64(0, encs.addr)
        .setU32(40, counts.encoders);
      u.ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, addr);
      const m = new CStruct(modes.bytes);
      const n = Math.min(counts.modes, s.u32(32));
      return {
        connectorId: s.u32(48),
        connection: s.u32(60),
        modes: Array.from({ length: n }, (_, i) => decodeModeInfo(m, i * SIZEOF_DRM_MODE_MODEINFO)),
        encoderId: s.u32(44),
      };
    });
  } finally {
    u.free(modes);
    u.free(encs);
  }
}

/** drmModeAddFB2(): one framebuffer; returns its id. */
export function drmModeAddFB2(
  u: Uapi,
  fd: number,
  fb: {
    width: number;
    height: number;
    pixelFormat: number;
    handles: number[];
    pitches: number[];
    offsets: number[];
    flags?: number;
  },
): number {
  return withUserStruct(u, SIZEOF_DRM_MODE_FB_CMD2, (s, addr) => {
    s.setU32(4, fb.width)
      .setU32(8, fb.height)
      .setU32(12, fb.pixelFormat)
      .setU32(16, fb.flags ?? 0);
    for (let i = 0; i < 4; i++) {
      s.setU32(20 + i * 4, fb.handles[i] ?? 0)
        .setU32(36 + i * 4, fb.pitches[i] ?? 0)
        .setU32(52 + i * 4, fb.offsets[i] ?? 0);
    }
    u.ioctl(fd, DRM_IOCTL_MODE_ADDFB2, addr);
    return s.u32(0);
  });
}

/** drmModeRmFB(). */
export function drmModeRmFB(u: Uapi, fd: number, fbId: number): void {
  withUserStruct(u, 4, (s, addr) => {
    s.setU32(0, fbId);
    u.ioctl(fd, DRM_IOCTL_MODE_RMFB, addr);
  });
}

/** drmModeSetCrtc(): `mode` null with fbId 0 and no connectors turns the CRTC off. */
export function drmModeSetCrtc(
  u: Uapi,
  fd: number,
  req: {
    crtcId: number;
    fbId: number;
    x: number;
    y: number;
    connectors: number[];
    mode: DrmModeInfo | null;
  },
): void {
  const ids = u.alloc(Math.max(1, req.connectors.length) * 4);
  try {
    const c = new CStruct(ids.bytes);
    req.connectors.forEach((id, i) => {
      c.setU32(i * 4, id);
    });
    withUserStruct(u, SIZEOF_DRM_MODE_CRTC, (s, addr) => {
      s.setU64(0, ids.addr)
        .setU32(8, req.connectors.length)
        .setU32(12, req.crtcId)
        .setU32(16, req.fbId)
        .setU32(20, req.x)
        .setU32(24, req.y);
      if (req.mode !== null) {
        s.setU32(32, 1);
        encodeModeInfo(s, 36, req.mode);
      }
      u.ioctl(fd, DRM_IOCTL_MODE_SETCRTC, addr);
    });
  } finally {
    u.free(ids);
  }
}

/** drmModePageFlip(). */
export function drmModePageFlip(
  u: Uapi,
  fd: number,
  crtcId: number,
  fbId: number,
  flags: number,
  userData: bigint,
): void {
  withUserStruct(u, SIZEOF_DRM_MODE_CRTC_PAGE_FLIP, (s, addr) => {
    s.setU32(0, crtcId).setU32(4, fbId).setU32(8, flags).setU64(16, userData);
    u.ioctl(fd, DRM_IOCTL_MODE_PAGE_FLIP, addr);
  });
}

/** One struct drm_event_vblank read from a DRM fd. */
export interface DrmEvent {
  type: number;
  userData: bigint;
  /** tv_sec * 1e9 + tv_usec * 1e3. */
  timestampNs: number;
  sequence: number;
  crtcId: number;
}

/** drmHandleEvent()'s parsing half: one read(2), every event in it. */
export function drmReadEvents(u: Uapi, fd: number): DrmEvent[] {
  const bytes = u.read(fd, 4096);
  const s = new CStruct(bytes);
  const out: DrmEvent[] = [];
  for (let off = 0; off + 8 <= bytes.length; ) {
    const type = s.u32(off);
    const length = s.u32(off + 4);
    if (length < 8) break;
    if ((type === DRM_EVENT_VBLANK || type === DRM_EVENT_FLIP_COMPLETE) && length >= 32) {
      out.push({
        type,
        userData: s.view.getBigUint64(off + 8, true),
        timestampNs: s.u32(off + 16) * 1e9 + s.u32(off + 20) * 1e3,
        sequence: s.u32(off + 24),
        crtcId: s.u32(off + 28),
      });
    }
    off += length;
  }
  return out;
}

/** The debugfs directory of a CRTC's CRC files. */
export function drmCrcDir(minor: number, crtcIndex: number): string {
  return `/sys/kernel/debug/dri/${minor}/crtc-${crtcIndex}/crc`;
}

/** Writes `source` to crc/control, opens crc/data and returns its fd (as igt_pipe_crc_new). */
export function drmCrcOpen(u: Uapi, minor: number, crtcIndex: number, source: string): number {
  const dir = drmCrcDir(minor, crtcIndex);
  const ctl = u.open(`${dir}/control`, O_WRONLY);
  try {
    u.write(ctl, new TextEncoder().encode(source));
  } finally {
    u.close(ctl);
  }
  return u.open(`${dir}/data`, O_RDONLY);
}

/** One read(2) of crc/data (one line per read in Linux), parsed: "0x%08x" frame, then " 0x%08x" CRCs. */
export function drmCrcRead(u: Uapi, crcFd: number): { frame: number; crcs: number[] }[] {
  const text = new TextDecoder().decode(u.read(crcFd, 256)).replace(/\0/g, "");
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((line) => {
      const [frame, ...crcs] = line.split(" ");
      return {
        frame: frame === "XXXXXXXXXX" ? -1 : Number.parseInt(frame!, 16),
        crcs: crcs.map((c) => Number.parseInt(c, 16)),
      };
    });
}

/** DRM_IOCTL_VGEM_FENCE_ATTACH: returns the fence id. */
export function vgemFenceAttach(u: Uapi, fd: number, handle: number, flags: number): number {
  return withUserStruct(u, SIZEOF_DRM_VGEM_FENCE_ATTACH, (s, addr) => {
    s.setU32(0, handle).setU32(4, flags);
    u.ioctl(fd, DRM_IOCTL_VGEM_FENCE_ATTACH, addr);
    return s.u32(8);
  });
}

/** DRM_IOCTL_VGEM_FENCE_SIGNAL. */
export function vgemFenceSignal(u: Uapi, fd: number, fenceId: number): void {
  withUserStruct(u, SIZEOF_DRM_VGEM_FENCE_SIGNAL, (s, addr) => {
    s.setU32(0, fenceId);
    u.ioctl(fd, DRM_IOCTL_VGEM_FENCE_SIGNAL, addr);
  });
}

/** DRM_IOCTL_SIMGPU_GEM_CREATE. */
export function simgpuGemCreate(
  u: Uapi,
  fd: number,
  size: number,
): { handle: number; size: number } {
  return withUserStruct(u, SIZEOF_DRM_SIMGPU_GEM_CREATE, (s, addr) => {
    s.setU64(0, size);
    u.ioctl(fd, DRM_IOCTL_SIMGPU_GEM_CREATE, addr);
    return { handle: s.u32(12), size: s.u64(0) };
  });
}

/** DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET. */
export function simgpuGemMmapOffset(u: Uapi, fd: number, handle: number): number {
  return withUserStruct(u, SIZEOF_DRM_SIMGPU_GEM_MMAP_OFFSET, (s, addr) => {
    s.setU32(0, handle);
    u.ioctl(fd, DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET, addr);
    return s.u64(8);
  });
}

/** One simgpu job (struct drm_simgpu_submit). */
export interface SimgpuJob {
  op: number;
  srcHandle: number;
  dstHandle: number;
  width: number;
  height: number;
  srcPitch: number;
  dstPitch: number;
  /** DRM fourcc; default XR24, or YUYV for SIMGPU_OP_YUYV_TO_XRGB8888. */
  srcFormat?: number;
  /** DRM fourcc; default XR24. */
  dstFormat?: number;
  /** SIMGPU_SUBMIT_IN_FENCE | SIMGPU_SUBMIT_OUT_FENCE. */
  flags?: number;
  /** A sync_file fd, used with SIMGPU_SUBMIT_IN_FENCE. */
  inFenceFd?: number;
}

/** DRM_IOCTL_SIMGPU_SUBMIT: the job's seqno, and its sync_file fd (-1 unless asked for). */
export function simgpuSubmit(
  u: Uapi,
  fd: number,
  job: SimgpuJob,
): { seqno: number; outFenceFd: number } {
  return withUserStruct(u, SIZEOF_DRM_SIMGPU_SUBMIT, (s, addr) => {
    s.setU32(0, job.op)
      .setU32(4, job.flags ?? 0)
      .setU32(8, job.srcHandle)
      .setU32(12, job.dstHandle)
      .setU32(16, job.width)
      .setU32(20, job.height)
      .setU32(24, job.srcPitch)
      .setU32(28, job.dstPitch)
      .setU32(
        32,
        job.srcFormat ??
          (job.op === SIMGPU_OP_YUYV_TO_XRGB8888 ? DRM_FORMAT_YUYV : DRM_FORMAT_XRGB8888),
      )
      .setU32(36, job.dstFormat ?? DRM_FORMAT_XRGB8888)
      .setS32(40, job.inFenceFd ?? -1)
      .setS32(44, -1);
    u.ioctl(fd, DRM_IOCTL_SIMGPU_SUBMIT, addr);
    return { seqno: s.u64(48), outFenceFd: s.s32(44) };
  });
}
