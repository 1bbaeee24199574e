/**
 * Dumb buffers (drivers/gpu/drm/drm_dumb_buffers.c): the driver-independent way to get
 * a linear buffer a KMS device can scan out, and a CPU mapping of it. The core checks
 * the geometry (non-zero, no 32-bit overflow), the driver allocates.
 */

import { KernelError } from "../../../errno.js";
import type { CStruct } from "../../../include/uapi/struct.js";
import type { DrmDevice } from "./drm-device.js";
import type { DrmFile } from "./drm-file.js";
import { drmGemHandleDelete, drmGemLookupOrEnoent } from "./drm-gem.js";

const U32_MAX = 0xffff_ffff;

/** DRM_IOCTL_MODE_CREATE_DUMB (drm_mode_create_dumb). */
export function drmModeCreateDumbIoctl(dev: DrmDevice, data: CStruct, file: DrmFile): void {
  const create = dev.driver.dumbCreate;
  if (create === undefined)
    throw new KernelError("ENOSYS", `${dev.driver.name} has no dumb buffers`);
  const height = data.u32(0);
  const width = data.u32(4);
  const bpp = data.u32(8);
  if (!width || !height || !bpp)
    throw new KernelError(
      "EINVAL",
      "DRM_IOCTL_MODE_CREATE_DUMB: width, height and bpp must be non-zero",
    );
  if (bpp > U32_MAX - 8)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_CREATE_DUMB: bpp overflows");
  const cpp = Math.ceil(bpp / 8);
  if (cpp > Math.floor(U32_MAX / width))
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_CREATE_DUMB: stride overflows");
  const stride = cpp * width;
  if (height > Math.floor(U32_MAX / stride))
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_CREATE_DUMB: size overflows");
  const size = height * stride;
  if (Math.ceil(size / 4096) * 4096 > U32_MAX)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_CREATE_DUMB: size wraps when page aligned");
  // handle, pitch and size are outputs: zeroed before the driver runs.
  data.setU32(16, 0).setU32(20, 0).setU64(24, 0);
  const r = create(file, width, height, bpp);
  data.setU32(16, r.handle).setU32(20, r.pitch).setU64(24, r.size);
}

/** DRM_IOCTL_MODE_MAP_DUMB (drm_gem_dumb_map_offset): ENOENT bad handle, EINVAL imported. */
export function drmModeMapDumbIoctl(dev: DrmDevice, data: CStruct, file: DrmFile): void {
  if (dev.driver.dumbCreate === undefined)
    throw new KernelError("ENOSYS", `${dev.driver.name} has no dumb buffers`);
  const obj = drmGemLookupOrEnoent(file, data.u32(0), "DRM_IOCTL_MODE_MAP_DUMB");
  // Don't allow imported objects to be mapped (drm_gem_dumb_map_offset).
  if (obj.importAttach !== undefined)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_MAP_DUMB: imported objects cannot be mapped");
  data.setU64(8, dev.createMmapOffset(obj));
}

/** DRM_IOCTL_MODE_DESTROY_DUMB: a GEM_CLOSE by another name (EINVAL for a bad handle). */
export function drmModeDestroyDumbIoctl(dev: DrmDevice, data: CStruct, file: DrmFile): void {
  if (dev.driver.dumbCreate === undefined)
    throw new KernelError("ENOSYS", `${dev.driver.name} has no dumb buffers`);
  drmGemHandleDelete(file, data.u32(0));
}
