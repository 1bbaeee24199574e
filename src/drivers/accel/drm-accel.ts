/**
 * The compute-accelerator subsystem (drivers/accel/drm_accel.c,
 * Documentation/accel/introduction.rst): accelerators are DRM devices with the
 * DRIVER_COMPUTE_ACCEL feature. They get no card or render node but one accel minor,
 * /dev/accel/accelN (major 261, minors 0..255 numbered in probe order, apart from the
 * DRM minors), with debugfs under /sys/kernel/debug/accel/N; their file operations are
 * the DRM core's (DEFINE_DRM_ACCEL_FOPS: drm_ioctl, drm_read, drm_poll, drm_gem_mmap),
 * so GEM handles, PRIME import/export and the driver's own ioctls work as on a render
 * node, and KMS ioctls are EOPNOTSUPP.
 *
 * The minor allocation lives with the other minor types in drm-device.ts, as
 * drm_minor_alloc does it for all three; this module names the subsystem's constants.
 */

export { DRIVER_COMPUTE_ACCEL } from "../gpu/drm/drm-driver.js";

/** ACCEL_MAJOR. */
export const ACCEL_MAJOR = 261;
/** ACCEL_MAX_MINORS. */
export const ACCEL_MAX_MINORS = 256;

/** The device node of accel minor `index`. */
export function accelDevicePath(index: number): string {
  return `/dev/accel/accel${index}`;
}
