/**
 * Typed calls for the model's compute accelerator, simnpu (/dev/accel/accelN; uAPI in
 * include/uapi/simnpu-accel.ts), over the {@link Uapi} contract. The DRM core's calls
 * (drmPrimeHandleToFd, drmPrimeFdToHandle, drmGemClose, drmGetVersion in drm.ts) work on
 * an accel fd as on a render node.
 */

import {
  DRM_IOCTL_SIMNPU_BO_CREATE,
  DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET,
  DRM_IOCTL_SIMNPU_SUBMIT,
  DRM_IOCTL_SIMNPU_WAIT,
  SIZEOF_DRM_SIMNPU_BO_CREATE,
  SIZEOF_DRM_SIMNPU_BO_MMAP_OFFSET,
  SIZEOF_DRM_SIMNPU_SUBMIT,
  SIZEOF_DRM_SIMNPU_WAIT,
} from "../include/uapi/simnpu-accel.js";
import { withUserStruct } from "./lib.js";
import type { Uapi } from "./uapi.js";

/** DRM_IOCTL_SIMNPU_BO_CREATE: a buffer object of at least `size` bytes. */
export function simnpuBoCreate(
  u: Uapi,
  fd: number,
  size: number,
): { handle: number; size: number } {
  return withUserStruct(u, SIZEOF_DRM_SIMNPU_BO_CREATE, (s, addr) => {
    s.setU64(0, size);
    u.ioctl(fd, DRM_IOCTL_SIMNPU_BO_CREATE, addr);
    return { handle: s.u32(12), size: s.u64(0) };
  });
}

/** DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET: the offset to mmap the accel fd at. */
export function simnpuBoMmapOffset(u: Uapi, fd: number, handle: number): number {
  return withUserStruct(u, SIZEOF_DRM_SIMNPU_BO_MMAP_OFFSET, (s, addr) => {
    s.setU32(0, handle);
    u.ioctl(fd, DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET, addr);
    return s.u64(8);
  });
}

/** One simnpu job (struct drm_simnpu_submit). */
export interface SimnpuJob {
  /** SIMNPU_OP_CONV3X3 or SIMNPU_OP_TILE_SUM. */
  op: number;
  inHandle: number;
  outHandle: number;
  width: number;
  height: number;
  /** Bytes per element, 1..4. */
  cpp: number;
  inPitch: number;
  outPitch: number;
  /** SIMNPU_SUBMIT_IN_FENCE | SIMNPU_SUBMIT_OUT_FENCE. */
  flags?: number;
  /** A sync_file fd, with SIMNPU_SUBMIT_IN_FENCE. */
  inFenceFd?: number;
}

/** DRM_IOCTL_SIMNPU_SUBMIT: the job's seqno and its sync_file fd (-1 unless asked for). */
export function simnpuSubmit(
  u: Uapi,
  fd: number,
  job: SimnpuJob,
): { seqno: number; outFenceFd: number } {
  return withUserStruct(u, SIZEOF_DRM_SIMNPU_SUBMIT, (s, addr) => {
    s.setU32(0, job.op)
      .setU32(4, job.flags ?? 0)
      .setU32(8, job.inHandle)
      .setU32(12, job.outHandle)
      .setU32(16, job.width)
      .setU32(20, job.height)
      .setU32(24, job.cpp)
      .setU32(28, job.inPitch)
      .setU32(32, job.outPitch)
      .setS32(36, job.inFenceFd ?? -1)
      .setS32(40, -1);
    u.ioctl(fd, DRM_IOCTL_SIMNPU_SUBMIT, addr);
    return { seqno: s.u64(48), outFenceFd: s.s32(40) };
  });
}

/**
 * DRM_IOCTL_SIMNPU_WAIT: waits until the object's jobs have finished or CLOCK_MONOTONIC
 * reaches `deadlineNs` (ETIMEDOUT). On the simulated kernel CLOCK_MONOTONIC is the
 * virtual clock.
 */
export function simnpuWait(u: Uapi, fd: number, handle: number, deadlineNs: number | bigint): void {
  const ns = typeof deadlineNs === "bigint" ? deadlineNs : BigInt(Math.ceil(deadlineNs));
  withUserStruct(u, SIZEOF_DRM_SIMNPU_WAIT, (s, addr) => {
    s.setU32(0, handle).setU32(4, 0).setU64(8, BigInt.asUintN(64, ns));
    u.ioctl(fd, DRM_IOCTL_SIMNPU_WAIT, addr);
  });
}
