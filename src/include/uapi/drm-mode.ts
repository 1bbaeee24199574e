/**
 * include/uapi/drm/drm_mode.h and drm_fourcc.h: the KMS ioctls (resources, connectors,
 * CRTCs, framebuffers, page flips, dumb buffers), their LP64 layouts (checked against
 * libdrm's headers with a C program), and the struct drm_mode_modeinfo codec both sides
 * use.
 */

import { DRM_IOWR } from "./drm.js";
import type { CStruct } from "./struct.js";

export const DRM_DISPLAY_MODE_LEN = 32;

/** struct drm_mode_modeinfo (68 bytes). */
export const SIZEOF_DRM_MODE_MODEINFO = 68;
/** struct drm_mode_card_res: four id array pointers, four counts, min/max sizes. */
export const SIZEOF_DRM_MODE_CARD_RES = 64;
/** struct drm_mode_get_connector. */
export const SIZEOF_DRM_MODE_GET_CONNECTOR = 80;
/** struct drm_mode_crtc (set_connectors_ptr ... mode at 36). */
export const SIZEOF_DRM_MODE_CRTC = 104;
/** struct drm_mode_get_encoder. */
export const SIZEOF_DRM_MODE_GET_ENCODER = 20;
/** struct drm_mode_fb_cmd2: fb_id, width, height, pixel_format, flags, handles[4] at 20, pitches[4] at 36, offsets[4] at 52, modifier[4] at 72. */
export const SIZEOF_DRM_MODE_FB_CMD2 = 104;
/** struct drm_mode_crtc_page_flip { crtc_id, fb_id, flags, reserved; __u64 user_data; } */
export const SIZEOF_DRM_MODE_CRTC_PAGE_FLIP = 24;
/** struct drm_mode_create_dumb { height, width, bpp, flags, handle, pitch; __u64 size; } */
export const SIZEOF_DRM_MODE_CREATE_DUMB = 32;
/** struct drm_mode_map_dumb { __u32 handle; __u32 pad; __u64 offset; } */
export const SIZEOF_DRM_MODE_MAP_DUMB = 16;
/** struct drm_mode_destroy_dumb { __u32 handle; } */
export const SIZEOF_DRM_MODE_DESTROY_DUMB = 4;

export const DRM_IOCTL_MODE_GETRESOURCES = DRM_IOWR(0xa0, SIZEOF_DRM_MODE_CARD_RES);
export const DRM_IOCTL_MODE_GETCRTC = DRM_IOWR(0xa1, SIZEOF_DRM_MODE_CRTC);
export const DRM_IOCTL_MODE_SETCRTC = DRM_IOWR(0xa2, SIZEOF_DRM_MODE_CRTC);
export const DRM_IOCTL_MODE_GETENCODER = DRM_IOWR(0xa6, SIZEOF_DRM_MODE_GET_ENCODER);
export const DRM_IOCTL_MODE_GETCONNECTOR = DRM_IOWR(0xa7, SIZEOF_DRM_MODE_GET_CONNECTOR);
export const DRM_IOCTL_MODE_RMFB = DRM_IOWR(0xaf, 4);
export const DRM_IOCTL_MODE_PAGE_FLIP = DRM_IOWR(0xb0, SIZEOF_DRM_MODE_CRTC_PAGE_FLIP);
export const DRM_IOCTL_MODE_CREATE_DUMB = DRM_IOWR(0xb2, SIZEOF_DRM_MODE_CREATE_DUMB);
export const DRM_IOCTL_MODE_MAP_DUMB = DRM_IOWR(0xb3, SIZEOF_DRM_MODE_MAP_DUMB);
export const DRM_IOCTL_MODE_DESTROY_DUMB = DRM_IOWR(0xb4, SIZEOF_DRM_MODE_DESTROY_DUMB);
export const DRM_IOCTL_MODE_ADDFB2 = DRM_IOWR(0xb8, SIZEOF_DRM_MODE_FB_CMD2);

/** Page flip flags. */
export const DRM_MODE_PAGE_FLIP_EVENT = 0x01;
export const DRM_MODE_PAGE_FLIP_ASYNC = 0x02;
export const DRM_MODE_PAGE_FLIP_TARGET_ABSOLUTE = 0x4;
export const DRM_MODE_PAGE_FLIP_TARGET_RELATIVE = 0x8;
export const DRM_MODE_PAGE_FLIP_TARGET =
  DRM_MODE_PAGE_FLIP_TARGET_ABSOLUTE | DRM_MODE_PAGE_FLIP_TARGET_RELATIVE;
export const DRM_MODE_PAGE_FLIP_FLAGS =
  DRM_MODE_PAGE_FLIP_EVENT | DRM_MODE_PAGE_FLIP_ASYNC | DRM_MODE_PAGE_FLIP_TARGET;

/** ADDFB2 flags. */
export const DRM_MODE_FB_INTERLACED = 1 << 0;
export const DRM_MODE_FB_MODIFIERS = 1 << 1;

/** Connector status and types. */
export const DRM_MODE_CONNECTED = 1;
export const DRM_MODE_DISCONNECTED = 2;
export const DRM_MODE_UNKNOWNCONNECTION = 3;
export const DRM_MODE_CONNECTOR_VIRTUAL = 15;
export const DRM_MODE_ENCODER_VIRTUAL = 5;
export const DRM_MODE_SUBPIXEL_UNKNOWN = 1;

/** Mode type bits. */
export const DRM_MODE_TYPE_PREFERRED = 1 << 3;
export const DRM_MODE_TYPE_DRIVER = 1 << 6;
/** Mode flags. */
export const DRM_MODE_FLAG_PHSYNC = 1 << 0;
export const DRM_MODE_FLAG_NHSYNC = 1 << 1;
export const DRM_MODE_FLAG_PVSYNC = 1 << 2;
export const DRM_MODE_FLAG_NVSYNC = 1 << 3;

export * from "./drm-fourcc.js";

/** struct drm_mode_modeinfo, field by field. */
export interface DrmModeInfo {
  readonly clock: number;
  readonly hdisplay: number;
  readonly hsyncStart: number;
  readonly hsyncEnd: number;
  readonly htotal: number;
  readonly hskew: number;
  readonly vdisplay: number;
  readonly vsyncStart: number;
  readonly vsyncEnd: number;
  readonly vtotal: number;
  readonly vscan: number;
  readonly vrefresh: number;
  readonly flags: number;
  readonly type: number;
  readonly name: string;
}

/** Writes `m` as a struct drm_mode_modeinfo at `off`. */
export function encodeModeInfo(s: CStruct, off: number, m: DrmModeInfo): void {
  const v = s.view;
  s.setU32(off, m.clock);
  const u16 = [m.hdisplay, m.hsyncStart, m.hsyncEnd, m.htotal, m.hskew];
  u16.forEach((x, i) => {
    v.setUint16(off + 4 + i * 2, x, true);
  });
  [m.vdisplay, m.vsyncStart, m.vsyncEnd, m.vtotal, m.vscan].forEach((x, i) => {
    v.setUint16(off + 14 + i * 2, x, true);
  });
  s.setU32(off + 24, m.vrefresh)
    .setU32(off + 28, m.flags)
    .setU32(off + 32, m.type)
    .setCstr(off + 36, DRM_DISPLAY_MODE_LEN, m.name);
}

/** Reads a struct drm_mode_modeinfo at `off`. */
export function decodeModeInfo(s: CStruct, off: number): DrmModeInfo {
  const v = s.view;
  const h = (i: number): number => v.getUint16(off + 4 + i * 2, true);
  return {
    clock: s.u32(off),
    hdisplay: h(0),
    hsyncStart: h(1),
    hsyncEnd: h(2),
    htotal: h(3),
    hskew: h(4),
    vdisplay: h(5),
    vsyncStart: h(6),
    vsyncEnd: h(7),
    vtotal: h(8),
    vscan: h(9),
    vrefresh: s.u32(off + 24),
    flags: s.u32(off + 28),
    type: s.u32(off + 32),
    name: s.cstr(off + 36, DRM_DISPLAY_MODE_LEN),
  };
}
