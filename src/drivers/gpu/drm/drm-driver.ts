/**
 * The DRM core's flag values (include/drm/drm_drv.h enum drm_driver_feature,
 * include/drm/drm_ioctl.h enum drm_ioctl_flags), in a module of their own so every DRM
 * file can use them without import cycles.
 */

/** enum drm_driver_feature. */
export const DRIVER_GEM = 1 << 0;
export const DRIVER_MODESET = 1 << 1;
export const DRIVER_RENDER = 1 << 3;
export const DRIVER_ATOMIC = 1 << 4;
/** A compute accelerator (drivers/accel): only an accel minor, /dev/accel/accelN. */
export const DRIVER_COMPUTE_ACCEL = 1 << 7;

/** enum drm_ioctl_flags. */
export const DRM_AUTH = 1 << 0;
export const DRM_MASTER = 1 << 1;
export const DRM_ROOT_ONLY = 1 << 2;
export const DRM_RENDER_ALLOW = 1 << 5;
