/**
 * simgpu_drm.h: the driver-private uAPI of the model's render-only GPU (ours, not
 * Linux's; shaped like panfrost_drm.h / v3d_drm.h). Three ioctls at DRM_COMMAND_BASE + n:
 *
 * - DRM_IOCTL_SIMGPU_GEM_CREATE (nr 0x40): struct drm_simgpu_gem_create
 *   { __u64 size; __u32 flags; __u32 handle; } (16 bytes). flags must be 0; size is
 *   rounded up to pages and written back.
 * - DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET (nr 0x41): struct drm_simgpu_gem_mmap_offset
 *   { __u32 handle; __u32 flags; __u64 offset; } (16 bytes): the fake offset to mmap the
 *   DRM fd at. flags must be 0.
 * - DRM_IOCTL_SIMGPU_SUBMIT (nr 0x42): struct drm_simgpu_submit (56 bytes):
 *   { __u32 op; __u32 flags; __u32 src_handle; __u32 dst_handle; __u32 width;
 *     __u32 height; __u32 src_pitch; __u32 dst_pitch; __u32 src_format; __u32 dst_format;
 *     __s32 in_fence_fd; __s32 out_fence_fd; __u64 seqno; }
 *   One job: read `height` rows of `width` pixels of src, transform, write dst. With
 *   SIMGPU_SUBMIT_IN_FENCE the job also waits for the sync_file in_fence_fd; with
 *   SIMGPU_SUBMIT_OUT_FENCE a sync_file of the job's fence comes back in out_fence_fd.
 *   seqno is written back: the job fence's seqno on the GPU's timeline.
 */

import { DRM_COMMAND_BASE, DRM_IOWR } from "./drm.js";

export const DRM_SIMGPU_GEM_CREATE = 0x00;
export const DRM_SIMGPU_GEM_MMAP_OFFSET = 0x01;
export const DRM_SIMGPU_SUBMIT = 0x02;

export const SIZEOF_DRM_SIMGPU_GEM_CREATE = 16;
export const SIZEOF_DRM_SIMGPU_GEM_MMAP_OFFSET = 16;
export const SIZEOF_DRM_SIMGPU_SUBMIT = 56;

export const DRM_IOCTL_SIMGPU_GEM_CREATE = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMGPU_GEM_CREATE,
  SIZEOF_DRM_SIMGPU_GEM_CREATE,
);
export const DRM_IOCTL_SIMGPU_GEM_MMAP_OFFSET = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMGPU_GEM_MMAP_OFFSET,
  SIZEOF_DRM_SIMGPU_GEM_MMAP_OFFSET,
);
export const DRM_IOCTL_SIMGPU_SUBMIT = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_SIMGPU_SUBMIT,
  SIZEOF_DRM_SIMGPU_SUBMIT,
);

/** drm_simgpu_submit.op: copy the visible bytes of each row. */
export const SIMGPU_OP_COPY = 0;
/** drm_simgpu_submit.op: 255 - x for every visible byte. */
export const SIMGPU_OP_INVERT = 1;
/** drm_simgpu_submit.op: YUYV (BT.601 limited range) to XRGB8888. */
export const SIMGPU_OP_YUYV_TO_XRGB8888 = 2;
/**
 * drm_simgpu_submit.op: 50% blend of src over dst, (src + dst + 1) >> 1 for every visible
 * byte: the job reads dst as well as src (a compositor drawing a layer over what an
 * earlier job drew; it waits for that job through dst's reservation).
 */
export const SIMGPU_OP_BLEND = 3;

/** drm_simgpu_submit.flags: wait for the sync_file in in_fence_fd too. */
export const SIMGPU_SUBMIT_IN_FENCE = 0x1;
/** drm_simgpu_submit.flags: return a sync_file for the job in out_fence_fd. */
export const SIMGPU_SUBMIT_OUT_FENCE = 0x2;
export const SIMGPU_SUBMIT_FLAGS = SIMGPU_SUBMIT_IN_FENCE | SIMGPU_SUBMIT_OUT_FENCE;
