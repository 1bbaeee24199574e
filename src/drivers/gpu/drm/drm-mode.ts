/**
 * KMS objects and their ioctls (drm_mode_config.c, drm_crtc.c, drm_connector.c,
 * drm_encoder.c, drm_framebuffer.c, drm_plane.c): resources, connectors with their
 * modes, CRTCs, framebuffers (ADDFB2 with drm_framebuffer.c's framebuffer_check and
 * drm_gem_fb_create's size check), RMFB, SETCRTC and PAGE_FLIP with its completion
 * event. The checks and errnos are the core's; what a mode set or a flip does to the
 * hardware is the driver's ({@link DrmCrtcFuncs}).
 *
 * Mode object ids come from one idr per device, lowest free id first, as in Linux.
 */

import { KernelError } from "../../../errno.js";
import { DRM_EVENT_FLIP_COMPLETE, SIZEOF_DRM_EVENT_VBLANK } from "../../../include/uapi/drm.js";
import {
  DRM_FORMAT_ABGR8888,
  DRM_FORMAT_ARGB8888,
  DRM_FORMAT_R8,
  DRM_FORMAT_RGB565,
  DRM_FORMAT_XBGR8888,
  DRM_FORMAT_XRGB8888,
  DRM_FORMAT_YUYV,
  DRM_MODE_CONNECTED,
  DRM_MODE_FB_INTERLACED,
  DRM_MODE_FB_MODIFIERS,
  DRM_MODE_PAGE_FLIP_ASYNC,
  DRM_MODE_PAGE_FLIP_EVENT,
  DRM_MODE_PAGE_FLIP_FLAGS,
  DRM_MODE_PAGE_FLIP_TARGET,
  DRM_MODE_SUBPIXEL_UNKNOWN,
  type DrmModeInfo,
  decodeModeInfo,
  encodeModeInfo,
  fourccName,
  SIZEOF_DRM_MODE_MODEINFO,
} from "../../../include/uapi/drm-mode.js";
import { CStruct } from "../../../include/uapi/struct.js";
import type { Current } from "../../../vfs/file.js";
import type { DrmDevice } from "./drm-device.js";
import { DRIVER_MODESET } from "./drm-driver.js";
import type { DrmFile } from "./drm-file.js";
import type { DrmGemObject } from "./drm-gem.js";

/** struct drm_format_info, for the single-plane formats the model knows. */
export interface DrmFormatInfo {
  readonly format: number;
  /** Bytes per pixel of plane 0 (YUYV: 4 bytes per 2 pixels = 2). */
  readonly cpp: number;
  /** Horizontal pixels per block (YUYV: 2). */
  readonly blockWidth: number;
}

/** The format table (a subset of drm_fourcc.c's formats[]). */
export const DRM_FORMATS: ReadonlyMap<number, DrmFormatInfo> = new Map(
  (
    [
      [DRM_FORMAT_XRGB8888, 4, 1],
      [DRM_FORMAT_ARGB8888, 4, 1],
      [DRM_FORMAT_XBGR8888, 4, 1],
      [DRM_FORMAT_ABGR8888, 4, 1],
      [DRM_FORMAT_RGB565, 2, 1],
      [DRM_FORMAT_R8, 1, 1],
      [DRM_FORMAT_YUYV, 2, 2],
    ] as const
  ).map(([format, cpp, blockWidth]) => [format, { format, cpp, blockWidth }]),
);

/** drm_format_info_min_pitch() for plane 0. */
export function drmFormatMinPitch(info: DrmFormatInfo, width: number): number {
  return Math.ceil(width / info.blockWidth) * info.cpp * info.blockWidth;
}

/** struct drm_framebuffer (single plane). Holds a reference on its GEM object. */
export class DrmFramebuffer {
  constructor(
    readonly id: number,
    readonly owner: DrmFile,
    readonly width: number,
    readonly height: number,
    readonly format: DrmFormatInfo,
    readonly pitch: number,
    readonly offset: number,
    readonly obj: DrmGemObject,
    readonly flags: number,
  ) {}
}

/** A reserved DRM_EVENT_FLIP_COMPLETE (struct drm_pending_vblank_event). */
export interface DrmPendingVblankEvent {
  readonly file: DrmFile;
  readonly userData: bigint;
  readonly crtcId: number;
}

/** drm_crtc_send_vblank_event(): fills struct drm_event_vblank and queues it. */
export function drmSendVblankEvent(
  e: DrmPendingVblankEvent,
  sequence: number,
  timeNs: number,
): void {
  const s = CStruct.alloc(SIZEOF_DRM_EVENT_VBLANK);
  s.setU32(0, DRM_EVENT_FLIP_COMPLETE).setU32(4, SIZEOF_DRM_EVENT_VBLANK).setU64(8, e.userData);
  s.setU32(16, Math.floor(timeNs / 1e9))
    .setU32(20, Math.floor((timeNs % 1e9) / 1e3))
    .setU32(24, sequence)
    .setU32(28, e.crtcId);
  e.file.sendEvent(s.bytes);
}

/** struct drm_crtc with its legacy-visible state. */
export class DrmCrtc {
  active = false;
  mode: DrmModeInfo | null = null;
  x = 0;
  y = 0;
  /** The primary plane's framebuffer (plane->fb). */
  fb: DrmFramebuffer | null = null;
  constructor(
    readonly id: number,
    readonly index: number,
  ) {}
}

export class DrmPlane {
  constructor(
    readonly id: number,
    readonly formats: readonly number[],
  ) {}
}

export class DrmEncoder {
  constructor(
    readonly id: number,
    readonly type: number,
    readonly possibleCrtcs: number,
  ) {}
}

export class DrmConnector {
  constructor(
    readonly id: number,
    readonly type: number,
    readonly typeId: number,
    readonly encoder: DrmEncoder,
    readonly modes: readonly DrmModeInfo[],
    readonly mmWidth: number,
    readonly mmHeight: number,
  ) {}
  status = DRM_MODE_CONNECTED;
}

/** What the display driver does for the core (the atomic helpers' legacy entry points). */
export interface DrmCrtcFuncs {
  /** SETCRTC: `fb` and `mode` set it up (blocking on the fb's fences), null turns it off. */
  setConfig(
    crtc: DrmCrtc,
    fb: DrmFramebuffer | null,
    mode: DrmModeInfo | null,
    x: number,
    y: number,
  ): void;
  /** PAGE_FLIP: EBUSY while one is pending; the event goes out at the vblank that shows `fb`. */
  pageFlip(
    crtc: DrmCrtc,
    fb: DrmFramebuffer,
    event: DrmPendingVblankEvent | null,
    flags: number,
  ): void;
  /** The framebuffer is being removed (RMFB, close): stop scanning it out. */
  fbRemoved(fb: DrmFramebuffer): void;
}

/** struct drm_mode_config. */
export class DrmModeConfig {
  minWidth = 1;
  maxWidth = 8192;
  minHeight = 1;
  maxHeight = 8192;
  preferredDepth = 24;
  readonly asyncPageFlip = false;
  readonly #objects = new Map<number, object>();
  readonly crtcs: DrmCrtc[] = [];
  readonly planes: DrmPlane[] = [];
  readonly encoders: DrmEncoder[] = [];
  readonly connectors: DrmConnector[] = [];
  readonly fbs = new Map<number, DrmFramebuffer>();

  constructor(readonly funcs: DrmCrtcFuncs) {}

  /** drm_mode_object_add(): the lowest free id. */
  allocId(): number {
    let id = 1;
    while (this.#objects.has(id)) id++;
    this.#objects.set(id, {});
    return id;
  }

  freeId(id: number): void {
    this.#objects.delete(id);
  }

  crtc(id: number): DrmCrtc | undefined {
    return this.crtcs.find((c) => c.id === id);
  }
}

function modeConfig(dev: DrmDevice): DrmModeConfig {
  if (!dev.hasFeature(DRIVER_MODESET) || dev.mode === undefined)
    throw new KernelError("EOPNOTSUPP", `${dev.driver.name} has no KMS`);
  return dev.mode;
}

/** put_user() of up to `room` ids at `ptr`: how the two-call GET ioctls fill arrays. */
function putIds(current: Current, ptr: number, room: number, ids: readonly number[]): void {
  const n = Math.min(room, ids.length);
  if (n === 0) return;
  const s = CStruct.alloc(n * 4);
  for (let i = 0; i < n; i++) s.setU32(i * 4, ids[i]!);
  current.copyToUser(ptr, s.bytes);
}

/** DRM_IOCTL_MODE_GETRESOURCES (drm_mode_getresources): the file's fbs and every object. */
export function drmModeGetResourcesIoctl(
  dev: DrmDevice,
  d: CStruct,
  file: DrmFile,
  current: Current,
): void {
  const mc = modeConfig(dev);
  const lists: [number, number, number[]][] = [
    [0, 32, file.fbs.map((f) => f.id)],
    [8, 36, mc.crtcs.map((c) => c.id)],
    [16, 40, mc.connectors.map((c) => c.id)],
    [24, 44, mc.encoders.map((e) => e.id)],
  ];
  for (const [ptrOff, countOff, ids] of lists) {
    putIds(current, d.u64(ptrOff), d.u32(countOff), ids);
    d.setU32(countOff, ids.length);
  }
  d.setU32(48, mc.minWidth)
    .setU32(52, mc.maxWidth)
    .setU32(56, mc.minHeight)
    .setU32(60, mc.maxHeight);
}

/** DRM_IOCTL_MODE_GETCONNECTOR (drm_mode_getconnector): encoders and modes, two-call style. */
export function drmModeGetConnectorIoctl(
  dev: DrmDevice,
  d: CStruct,
  _file: DrmFile,
  current: Current,
): void {
  const mc = modeConfig(dev);
  const con = mc.connectors.find((c) => c.id === d.u32(48));
  if (con === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_MODE_GETCONNECTOR: no connector ${d.u32(48)}`);
  const encoders = [con.encoder.id];
  if (d.u32(40) >= encoders.length) putIds(current, d.u64(0), encoders.length, encoders);
  d.setU32(40, encoders.length);
  const modes = con.modes;
  if (d.u32(32) >= modes.length && modes.length > 0) {
    const s = CStruct.alloc(modes.length * SIZEOF_DRM_MODE_MODEINFO);
    modes.forEach((m, i) => {
      encodeModeInfo(s, i * SIZEOF_DRM_MODE_MODEINFO, m);
    });
    current.copyToUser(d.u64(8), s.bytes);
  }
  d.setU32(32, modes.length);
  d.setU32(36, 0); // no properties modelled
  const active = mc.crtcs.some((c) => c.active);
  d.setU32(44, active ? con.encoder.id : 0)
    .setU32(52, con.type)
    .setU32(56, con.typeId)
    .setU32(60, con.status)
    .setU32(64, con.mmWidth)
    .setU32(68, con.mmHeight)
    .setU32(72, DRM_MODE_SUBPIXEL_UNKNOWN);
}

/** DRM_IOCTL_MODE_GETENCODER (drm_mode_getencoder). */
export function drmModeGetEncoderIoctl(dev: DrmDevice, d: CStruct): void {
  const mc = modeConfig(dev);
  const enc = mc.encoders.find((e) => e.id === d.u32(0));
  if (enc === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_MODE_GETENCODER: no encoder ${d.u32(0)}`);
  const crtc = mc.crtcs.find((c) => c.active);
  d.setU32(4, enc.type)
    .setU32(8, crtc?.id ?? 0)
    .setU32(12, enc.possibleCrtcs)
    .setU32(16, 0);
}

/** DRM_IOCTL_MODE_GETCRTC (drm_mode_getcrtc). */
export function drmModeGetCrtcIoctl(dev: DrmDevice, d: CStruct): void {
  const mc = modeConfig(dev);
  const crtc = mc.crtc(d.u32(12));
  if (crtc === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_MODE_GETCRTC: no CRTC ${d.u32(12)}`);
  d.setU32(16, crtc.fb?.id ?? 0)
    .setU32(20, crtc.x)
    .setU32(24, crtc.y)
    .setU32(28, 0);
  if (crtc.active && crtc.mode !== null) {
    d.setU32(32, 1);
    encodeModeInfo(d, 36, crtc.mode);
  } else {
    d.setU32(32, 0);
    d.bytes.fill(0, 36, 36 + SIZEOF_DRM_MODE_MODEINFO);
  }
}

/** drm_mode_validate_basic() + drm_mode_convert_umode(): EINVAL for an impossible timing. */
function validateUmode(m: DrmModeInfo): void {
  const bad =
    m.clock === 0 ||
    m.hdisplay === 0 ||
    m.hsyncStart < m.hdisplay ||
    m.hsyncEnd < m.hsyncStart ||
    m.htotal < m.hsyncEnd ||
    m.vdisplay === 0 ||
    m.vsyncStart < m.vdisplay ||
    m.vsyncEnd < m.vsyncStart ||
    m.vtotal < m.vsyncEnd;
  if (bad)
    throw new KernelError(
      "EINVAL",
      `DRM_IOCTL_MODE_SETCRTC: mode ${m.name} has an impossible timing`,
    );
}

/** drm_crtc_check_viewport(): ENOSPC when the mode at (x, y) does not fit the fb. */
export function drmCrtcCheckViewport(
  x: number,
  y: number,
  mode: DrmModeInfo,
  fb: DrmFramebuffer,
): void {
  if (
    mode.hdisplay > fb.width ||
    mode.vdisplay > fb.height ||
    x > fb.width - mode.hdisplay ||
    y > fb.height - mode.vdisplay
  )
    throw new KernelError(
      "ENOSPC",
      `${mode.hdisplay}x${mode.vdisplay}+${x}+${y} does not fit framebuffer ${fb.id} (${fb.width}x${fb.height})`,
    );
}

function checkPlaneFormat(mc: DrmModeConfig, fb: DrmFramebuffer): void {
  const plane = mc.planes[0]!;
  if (!plane.formats.includes(fb.format.format))
    throw new KernelError(
      "EINVAL",
      `the primary plane cannot scan out ${fourccName(fb.format.format)}`,
    );
}

function lookupFb(mc: DrmModeConfig, id: number, ioctl: string): DrmFramebuffer {
  const fb = mc.fbs.get(id);
  if (fb === undefined) throw new KernelError("ENOENT", `${ioctl}: no framebuffer ${id}`);
  return fb;
}

/** DRM_IOCTL_MODE_SETCRTC (drm_mode_setcrtc). */
export function drmModeSetCrtcIoctl(
  dev: DrmDevice,
  d: CStruct,
  _file: DrmFile,
  current: Current,
): void {
  const mc = modeConfig(dev);
  const x = d.u32(20);
  const y = d.u32(24);
  if (x & 0xffff0000 || y & 0xffff0000)
    throw new KernelError("ERANGE", "DRM_IOCTL_MODE_SETCRTC: x/y beyond 16.16 plane coordinates");
  const crtc = mc.crtc(d.u32(12));
  if (crtc === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_MODE_SETCRTC: no CRTC ${d.u32(12)}`);
  let fb: DrmFramebuffer | null = null;
  let mode: DrmModeInfo | null = null;
  if (d.u32(32)) {
    const fbId = d.s32(16);
    if (fbId === -1) {
      if (crtc.fb === null)
        throw new KernelError("EINVAL", "DRM_IOCTL_MODE_SETCRTC: fb -1 with no fb bound");
      fb = crtc.fb;
    } else {
      fb = lookupFb(mc, d.u32(16), "DRM_IOCTL_MODE_SETCRTC");
    }
    mode = decodeModeInfo(d, 36);
    validateUmode(mode);
    checkPlaneFormat(mc, fb);
    drmCrtcCheckViewport(x, y, mode, fb);
  }
  const count = d.u32(8);
  if (count === 0 && mode !== null)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_SETCRTC: a mode without connectors");
  if (count > 0 && (mode === null || fb === null))
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_SETCRTC: connectors without a mode and fb");
  if (count > 0) {
    if (count > mc.connectors.length)
      throw new KernelError(
        "EINVAL",
        "DRM_IOCTL_MODE_SETCRTC: more connectors than the device has",
      );
    const ids = new CStruct(current.copyFromUser(d.u64(0), count * 4));
    for (let i = 0; i < count; i++) {
      if (!mc.connectors.some((c) => c.id === ids.u32(i * 4)))
        throw new KernelError("ENOENT", `DRM_IOCTL_MODE_SETCRTC: no connector ${ids.u32(i * 4)}`);
    }
  }
  mc.funcs.setConfig(crtc, fb, mode, x, y);
}

/** DRM_IOCTL_MODE_ADDFB2 (drm_mode_addfb2 -> framebuffer_check -> drm_gem_fb_create). */
export function drmModeAddFb2Ioctl(dev: DrmDevice, d: CStruct, file: DrmFile): void {
  const mc = modeConfig(dev);
  const width = d.u32(4);
  const height = d.u32(8);
  const format = d.u32(12);
  const flags = d.u32(16);
  const handle = (i: number): number => d.u32(20 + i * 4);
  const pitch = (i: number): number => d.u32(36 + i * 4);
  const offset = (i: number): number => d.u32(52 + i * 4);
  const modifier = (i: number): bigint => d.view.getBigUint64(72 + i * 8, true);
  if (flags & ~(DRM_MODE_FB_INTERLACED | DRM_MODE_FB_MODIFIERS))
    throw new KernelError("EINVAL", `DRM_IOCTL_MODE_ADDFB2: bad flags 0x${flags.toString(16)}`);
  if (width < mc.minWidth || width > mc.maxWidth)
    throw new KernelError(
      "EINVAL",
      `DRM_IOCTL_MODE_ADDFB2: width ${width} outside ${mc.minWidth}..${mc.maxWidth}`,
    );
  if (height < mc.minHeight || height > mc.maxHeight)
    throw new KernelError(
      "EINVAL",
      `DRM_IOCTL_MODE_ADDFB2: height ${height} outside ${mc.minHeight}..${mc.maxHeight}`,
    );
  if (flags & DRM_MODE_FB_MODIFIERS)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_ADDFB2: this driver takes no format modifiers");
  // framebuffer_check().
  const info = DRM_FORMATS.get(format);
  if (info === undefined)
    throw new KernelError("EINVAL", `DRM_IOCTL_MODE_ADDFB2: unknown format ${fourccName(format)}`);
  const minPitch = drmFormatMinPitch(info, width);
  if (!handle(0)) throw new KernelError("EINVAL", "DRM_IOCTL_MODE_ADDFB2: no handle for plane 0");
  if (height * pitch(0) + offset(0) > 0xffff_ffff)
    throw new KernelError(
      "ERANGE",
      "DRM_IOCTL_MODE_ADDFB2: pitch * height + offset overflows 32 bits",
    );
  if (pitch(0) < minPitch)
    throw new KernelError(
      "EINVAL",
      `DRM_IOCTL_MODE_ADDFB2: pitch ${pitch(0)} below the minimum ${minPitch} for ${width} pixels`,
    );
  for (let i = 1; i < 4; i++) {
    if (modifier(i) !== 0n)
      throw new KernelError("EINVAL", `DRM_IOCTL_MODE_ADDFB2: modifier for unused plane ${i}`);
  }
  if (modifier(0) !== 0n)
    throw new KernelError(
      "EINVAL",
      "DRM_IOCTL_MODE_ADDFB2: a modifier without DRM_MODE_FB_MODIFIERS",
    );
  // drm_gem_fb_init_with_funcs(): the object must exist and be big enough.
  const obj = file.handles.get(handle(0));
  if (obj === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_MODE_ADDFB2: no GEM handle ${handle(0)}`);
  const minSize = (height - 1) * pitch(0) + minPitch + offset(0);
  if (obj.size < minSize)
    throw new KernelError(
      "EINVAL",
      `DRM_IOCTL_MODE_ADDFB2: object of ${obj.size} bytes is smaller than the ${minSize} the layout needs`,
    );
  const fb = new DrmFramebuffer(
    mc.allocId(),
    file,
    width,
    height,
    info,
    pitch(0),
    offset(0),
    obj.get(),
    flags,
  );
  mc.fbs.set(fb.id, fb);
  file.fbs.push(fb);
  d.setU32(0, fb.id);
}

function drmFramebufferRemove(mc: DrmModeConfig, fb: DrmFramebuffer): void {
  mc.funcs.fbRemoved(fb);
  mc.fbs.delete(fb.id);
  mc.freeId(fb.id);
  const list = fb.owner.fbs;
  list.splice(list.indexOf(fb), 1);
  fb.obj.put();
}

/** DRM_IOCTL_MODE_RMFB (drm_mode_rmfb): ENOENT unless the fb is this file's. */
export function drmModeRmFbIoctl(dev: DrmDevice, d: CStruct, file: DrmFile): void {
  const mc = modeConfig(dev);
  const fb = lookupFb(mc, d.u32(0), "DRM_IOCTL_MODE_RMFB");
  if (fb.owner !== file)
    throw new KernelError(
      "ENOENT",
      `DRM_IOCTL_MODE_RMFB: framebuffer ${fb.id} belongs to another file`,
    );
  drmFramebufferRemove(mc, fb);
}

/** drm_fb_release(): a closing file's framebuffers go, disabling what scans them out. */
export function drmFbRelease(file: DrmFile): void {
  const mc = file.dev.mode;
  if (mc === undefined) return;
  for (const fb of [...file.fbs]) drmFramebufferRemove(mc, fb);
}

/** DRM_IOCTL_MODE_PAGE_FLIP (drm_mode_page_flip_ioctl). */
export function drmModePageFlipIoctl(dev: DrmDevice, d: CStruct, file: DrmFile): void {
  const mc = modeConfig(dev);
  const flags = d.u32(8);
  if (flags & ~DRM_MODE_PAGE_FLIP_FLAGS)
    throw new KernelError("EINVAL", `DRM_IOCTL_MODE_PAGE_FLIP: bad flags 0x${flags.toString(16)}`);
  if (flags & DRM_MODE_PAGE_FLIP_ASYNC && !mc.asyncPageFlip)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_PAGE_FLIP: async flips are not supported");
  if (flags & DRM_MODE_PAGE_FLIP_TARGET)
    throw new KernelError("EINVAL", "DRM_IOCTL_MODE_PAGE_FLIP: target flips need page_flip_target");
  const crtc = mc.crtc(d.u32(0));
  if (crtc === undefined)
    throw new KernelError("ENOENT", `DRM_IOCTL_MODE_PAGE_FLIP: no CRTC ${d.u32(0)}`);
  // The framebuffer is currently unbound (CRTC off): EBUSY, as the legacy check says.
  if (crtc.fb === null || !crtc.active || crtc.mode === null)
    throw new KernelError("EBUSY", "DRM_IOCTL_MODE_PAGE_FLIP: the CRTC is off");
  const fb = lookupFb(mc, d.u32(4), "DRM_IOCTL_MODE_PAGE_FLIP");
  drmCrtcCheckViewport(crtc.x, crtc.y, crtc.mode, fb);
  if (fb.format.format !== crtc.fb.format.format)
    throw new KernelError(
      "EINVAL",
      "DRM_IOCTL_MODE_PAGE_FLIP: a flip may not change the pixel format",
    );
  let event: DrmPendingVblankEvent | null = null;
  if (flags & DRM_MODE_PAGE_FLIP_EVENT) {
    file.reserveEvent(SIZEOF_DRM_EVENT_VBLANK);
    event = { file, userData: d.view.getBigUint64(16, true), crtcId: crtc.id };
  }
  try {
    mc.funcs.pageFlip(crtc, fb, event, flags);
  } catch (e) {
    if (event !== null) file.cancelEvent(SIZEOF_DRM_EVENT_VBLANK);
    throw e;
  }
}
