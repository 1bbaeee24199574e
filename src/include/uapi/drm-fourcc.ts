/**
 * include/uapi/drm/drm_fourcc.h: pixel format codes (little-endian fourccs) and the
 * linear modifier. Re-exported by drm.ts and drm-mode.ts.
 */

/** fourcc_code(a, b, c, d) of drm_fourcc.h. */
export function fourccCode(s: string): number {
  if (s.length !== 4) throw new RangeError(`fourcc '${s}' is not 4 characters`);
  return (
    (s.charCodeAt(0) |
      (s.charCodeAt(1) << 8) |
      (s.charCodeAt(2) << 16) |
      (s.charCodeAt(3) << 24)) >>>
    0
  );
}

/** The four characters of a fourcc, for messages. */
export function fourccName(code: number): string {
  return String.fromCharCode(code & 0xff, (code >>> 8) & 0xff, (code >>> 16) & 0xff, code >>> 24);
}

/** [31:0] x:R:G:B 8:8:8:8 little endian: bytes B, G, R, X in memory. */
export const DRM_FORMAT_XRGB8888 = fourccCode("XR24");
export const DRM_FORMAT_ARGB8888 = fourccCode("AR24");
export const DRM_FORMAT_XBGR8888 = fourccCode("XB24");
export const DRM_FORMAT_ABGR8888 = fourccCode("AB24");
export const DRM_FORMAT_RGB565 = fourccCode("RG16");
/** Packed YCbCr 4:2:2: bytes Y0 Cb Y1 Cr for two pixels. */
export const DRM_FORMAT_YUYV = fourccCode("YUYV");
export const DRM_FORMAT_R8 = fourccCode("R8  ");
export const DRM_FORMAT_MOD_LINEAR = 0n;
