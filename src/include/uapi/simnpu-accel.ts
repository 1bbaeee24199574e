/**
 * simnpu_accel.h: the uAPI of the model's compute accelerator (ours, not Linux's; shaped
 * like drivers/accel's ivpu_accel.h and qaic_accel.h). The device is /dev/accel/accelN;
 * besides the DRM core's render-allowed ioctls (VERSION, GET_CAP, GEM_CLOSE, PRIME) it
 * has four, at DRM_COMMAND_BASE + n, all structs little endian:
 *
 * - DRM_IOCTL_SIMNPU_BO_CREATE (nr 0x40): struct drm_simnpu_bo_create
 *   { __u64 size; __u32 flags; __u32 handle; } (16 bytes). flags must be 0; size is
 *   rounded up to pages and written back.
 * - DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET (nr 0x41): struct drm_simnpu_bo_mmap_offset
 *   { __u32 handle; __u32 flags; __u64 offset; } (16 bytes): the fake offset to mmap the
 *   accel fd at. flags must be 0.
 * - DRM_IOCTL_SIMNPU_SUBMIT (nr 0x42): struct drm_simnpu_submit (56 bytes):
 *   { __u32 op; __u32 flags; __u32 in_handle; __u32 out_handle; __u32 width;
 *     __u32 height; __u32 cpp; __u32 in_pitch; __u32 out_pitch; __s32 in_fence_fd;
 *     __s32 out_fence_fd; __u32 pad; __u64 seqno; }
 *   One job: read `height` rows of `width` elements of `cpp` bytes (1..4 channels of 8
 *   bits) of the input at in_pitch, compute `op`, write the output at out_pitch. The
 *   job waits for the input's writers and the output's readers and writers (implicit
 *   sync, dma-resv) and, with SIMNPU_SUBMIT_IN_FENCE, for the sync_file in_fence_fd; its
 *   fence goes into the input's reservation as READ and the output's as WRITE, and with
 *   SIMNPU_SUBMIT_OUT_FENCE a sync_file of it comes back in out_fence_fd. seqno is
 *   written back.
 * - DRM_IOCTL_SIMNPU_WAIT (nr 0x43): struct drm_simnpu_wait
 *   { __u32 handle; __u32 flags; __s64 timeout_ns; } (16 bytes), like
 *   DRM_IOCTL_IVPU_BO_WAIT: wait until every job using the object has finished.
 *   timeout_ns is absolute on CLOCK_MONOTONIC (the model's virtual clock); ETIMEDOUT
 *   when it passes first. flags must be 0.
 */

import { DRM_COMMAND_BASE, DRM_IOWR } from "./drm.js";

export const DRM_SIMNPU_BO_CREATE = 0x00;
export const DRM_SIMNPU_BO_MMAP_OFFSET = 0x01;
export const DRM_SIMNPU_SUBMIT = 0x02;
export const DRM_SIMNPU_WAIT = 0x03;

export const SIZEOF_DRM_SIMNPU_BO_CREATE = 16;
export const SIZEOF_DRM_SIMNPU_BO_MMAP_OFFSET = 16;
export const SIZEOF_DRM_SIMNPU_SUBMIT = 56;
export const SIZEOF_DRM_SIMNPU_WAIT = 16;

export const DRM_IOCTL_SIMNPU_BO_CREATE = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMNPU_BO_CREATE,
  SIZEOF_DRM_SIMNPU_BO_CREATE,
);
export const DRM_IOCTL_SIMNPU_BO_MMAP_OFFSET = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMNPU_BO_MMAP_OFFSET,
  SIZEOF_DRM_SIMNPU_BO_MMAP_OFFSET,
);
export const DRM_IOCTL_SIMNPU_SUBMIT = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMNPU_SUBMIT,
  SIZEOF_DRM_SIMNPU_SUBMIT,
);
export const DRM_IOCTL_SIMNPU_WAIT = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMNPU_WAIT,
  SIZEOF_DRM_SIMNPU_WAIT,
);

/** drm_simnpu_submit.op: a 3x3 Gaussian filter per channel ([1 2 1; 2 4 2; 1 2 1] / 16, edges clamped). */
export const SIMNPU_OP_CONV3X3 = 0;
/** drm_simnpu_submit.op: per 16x16 tile and channel, the sum of the elements as a __u32. */
export const SIMNPU_OP_TILE_SUM = 1;
/** The tile edge of SIMNPU_OP_TILE_SUM. */
export const SIMNPU_TILE = 16;

/** drm_simnpu_submit.flags: wait for the sync_file in_fence_fd too. */
export const SIMNPU_SUBMIT_IN_FENCE = 0x1;
/** drm_simnpu_submit.flags: return a sync_file of the job's fence in out_fence_fd. */
export const SIMNPU_SUBMIT_OUT_FENCE = 0x2;
export const SIMNPU_SUBMIT_FLAGS = SIMNPU_SUBMIT_IN_FENCE | SIMNPU_SUBMIT_OUT_FENCE;
