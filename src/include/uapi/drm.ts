/**
 * include/uapi/drm/drm.h: the DRM core's ioctl numbers, argument layouts (LP64, checked
 * against libdrm's drm.h with a C program), capabilities and event types. Both sides of
 * an ioctl use these, as userspace and the kernel both include drm.h.
 */

import { _IO, _IOR, _IOW, _IOWR } from "./ioctl.js";

export * from "./drm-fourcc.js";

/** DRM_IOCTL_BASE: the ioctl type character of every DRM ioctl. */
export const DRM_IOCTL_BASE = "d";
/** DRM_IO(nr). */
export const DRM_IO = (nr: number): number => _IO(DRM_IOCTL_BASE, nr);
/** DRM_IOR(nr, type). */
export const DRM_IOR = (nr: number, size: number): number => _IOR(DRM_IOCTL_BASE, nr, size);
/** DRM_IOW(nr, type). */
export const DRM_IOW = (nr: number, size: number): number => _IOW(DRM_IOCTL_BASE, nr, size);
/** DRM_IOWR(nr, type). */
export const DRM_IOWR = (nr: number, size: number): number => _IOWR(DRM_IOCTL_BASE, nr, size);

/** Driver-private ioctls live in [DRM_COMMAND_BASE, DRM_COMMAND_END). */
export const DRM_COMMAND_BASE = 0x40;
export const DRM_COMMAND_END = 0xa0;

/** struct drm_version: three ints, then (len, char*) for name, date and desc. */
export const SIZEOF_DRM_VERSION = 64;
/** struct drm_get_cap { __u64 capability; __u64 value; } */
export const SIZEOF_DRM_GET_CAP = 16;
/** struct drm_set_client_cap { __u64 capability; __u64 value; } */
export const SIZEOF_DRM_SET_CLIENT_CAP = 16;
/** struct drm_gem_close { __u32 handle; __u32 pad; } */
export const SIZEOF_DRM_GEM_CLOSE = 8;
/** struct drm_gem_flink { __u32 handle; __u32 name; } */
export const SIZEOF_DRM_GEM_FLINK = 8;
/** struct drm_gem_open { __u32 name; __u32 handle; __u64 size; } */
export const SIZEOF_DRM_GEM_OPEN = 16;
/** struct drm_prime_handle { __u32 handle; __u32 flags; __s32 fd; } */
export const SIZEOF_DRM_PRIME_HANDLE = 12;

export const DRM_IOCTL_VERSION = DRM_IOWR(0x00, SIZEOF_DRM_VERSION);
export const DRM_IOCTL_GET_CAP = DRM_IOWR(0x0c, SIZEOF_DRM_GET_CAP);
export const DRM_IOCTL_SET_CLIENT_CAP = DRM_IOW(0x0d, SIZEOF_DRM_SET_CLIENT_CAP);
export const DRM_IOCTL_GEM_CLOSE = DRM_IOW(0x09, SIZEOF_DRM_GEM_CLOSE);
export const DRM_IOCTL_GEM_FLINK = DRM_IOWR(0x0a, SIZEOF_DRM_GEM_FLINK);
export const DRM_IOCTL_GEM_OPEN = DRM_IOWR(0x0b, SIZEOF_DRM_GEM_OPEN);
export const DRM_IOCTL_SET_MASTER = DRM_IO(0x1e);
export const DRM_IOCTL_DROP_MASTER = DRM_IO(0x1f);
export const DRM_IOCTL_PRIME_HANDLE_TO_FD = DRM_IOWR(0x2d, SIZEOF_DRM_PRIME_HANDLE);
export const DRM_IOCTL_PRIME_FD_TO_HANDLE = DRM_IOWR(0x2e, SIZEOF_DRM_PRIME_HANDLE);

/** PRIME_HANDLE_TO_FD flags: the new fd's O_CLOEXEC and O_RDWR (drm.h defines them so). */
export const DRM_CLOEXEC = 0o2000000;
export const DRM_RDWR = 0o2;

/** DRM_IOCTL_GET_CAP capabilities. */
export const DRM_CAP_DUMB_BUFFER = 0x1;
export const DRM_CAP_VBLANK_HIGH_CRTC = 0x2;
export const DRM_CAP_DUMB_PREFERRED_DEPTH = 0x3;
export const DRM_CAP_DUMB_PREFER_SHADOW = 0x4;
export const DRM_CAP_PRIME = 0x5;
export const DRM_PRIME_CAP_IMPORT = 0x1;
export const DRM_PRIME_CAP_EXPORT = 0x2;
export const DRM_CAP_TIMESTAMP_MONOTONIC = 0x6;
export const DRM_CAP_ASYNC_PAGE_FLIP = 0x7;
export const DRM_CAP_CURSOR_WIDTH = 0x8;
export const DRM_CAP_CURSOR_HEIGHT = 0x9;
export const DRM_CAP_ADDFB2_MODIFIERS = 0x10;
export const DRM_CAP_PAGE_FLIP_TARGET = 0x11;
export const DRM_CAP_CRTC_IN_VBLANK_EVENT = 0x12;
export const DRM_CAP_SYNCOBJ = 0x13;
export const DRM_CAP_SYNCOBJ_TIMELINE = 0x14;
export const DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP = 0x15;

/** DRM_IOCTL_SET_CLIENT_CAP capabilities. */
export const DRM_CLIENT_CAP_STEREO_3D = 1;
export const DRM_CLIENT_CAP_UNIVERSAL_PLANES = 2;
export const DRM_CLIENT_CAP_ATOMIC = 3;

/** struct drm_event { __u32 type; __u32 length; } heads every event read from the fd. */
export const SIZEOF_DRM_EVENT = 8;
/**
 * struct drm_event_vblank { struct drm_event base; __u64 user_data; __u32 tv_sec;
 * __u32 tv_usec; __u32 sequence; __u32 crtc_id; }
 */
export const SIZEOF_DRM_EVENT_VBLANK = 32;
export const DRM_EVENT_VBLANK = 0x01;
export const DRM_EVENT_FLIP_COMPLETE = 0x02;
export const DRM_EVENT_CRTC_SEQUENCE = 0x03;
