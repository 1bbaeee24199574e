/**
 * include/uapi/drm/vgem_drm.h: vgem's two driver-private ioctls, which let userspace put
 * an unsignalled fence on a buffer's reservation object and signal it later (how igt and
 * the kernel's dma-buf tests make real implicit fences without hardware).
 */

import { DRM_COMMAND_BASE, DRM_IOW, DRM_IOWR } from "./drm.js";

export const DRM_VGEM_FENCE_ATTACH = 0x1;
export const DRM_VGEM_FENCE_SIGNAL = 0x2;

/** struct drm_vgem_fence_attach { __u32 handle; __u32 flags; __u32 out_fence; __u32 pad; } */
export const SIZEOF_DRM_VGEM_FENCE_ATTACH = 16;
/** struct drm_vgem_fence_signal { __u32 fence; __u32 flags; } */
export const SIZEOF_DRM_VGEM_FENCE_SIGNAL = 8;
/** drm_vgem_fence_attach.flags: the fence is a writer's (else a reader's). */
export const VGEM_FENCE_WRITE = 0x1;

export const DRM_IOCTL_VGEM_FENCE_ATTACH = DRM_IOWR(
  DRM_COMMAND_BASE + DRM_VGEM_FENCE_ATTACH,
  SIZEOF_DRM_VGEM_FENCE_ATTACH,
);
export const DRM_IOCTL_VGEM_FENCE_SIGNAL = DRM_IOW(
  DRM_COMMAND_BASE + DRM_VGEM_FENCE_SIGNAL,
  SIZEOF_DRM_VGEM_FENCE_SIGNAL,
);
