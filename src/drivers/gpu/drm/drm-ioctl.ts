/**
 * The DRM ioctl dispatcher (drivers/gpu/drm/drm_ioctl.c): an ioctl whose type is not
 * 'd' is ENOTTY; then core ioctls by number from the core table, driver ioctls from DRM_COMMAND_BASE; unknown numbers are EINVAL (the
 * dispatcher's default). The argument is copied in at the size the *caller's* command
 * encodes and zero-extended to the driver's struct, then copied back out, as drm_ioctl
 * does, so old and new userspace struct sizes both work. drm_ioctl_permit() decides
 * access: render nodes only get DRM_RENDER_ALLOW ioctls, DRM_MASTER ones need the
 * master (EACCES otherwise).
 */

import { KernelError } from "../../../errno.js";
import {
  DRM_CAP_ADDFB2_MODIFIERS,
  DRM_CAP_ASYNC_PAGE_FLIP,
  DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP,
  DRM_CAP_CRTC_IN_VBLANK_EVENT,
  DRM_CAP_CURSOR_HEIGHT,
  DRM_CAP_CURSOR_WIDTH,
  DRM_CAP_DUMB_BUFFER,
  DRM_CAP_DUMB_PREFER_SHADOW,
  DRM_CAP_DUMB_PREFERRED_DEPTH,
  DRM_CAP_PAGE_FLIP_TARGET,
  DRM_CAP_PRIME,
  DRM_CAP_SYNCOBJ,
  DRM_CAP_SYNCOBJ_TIMELINE,
  DRM_CAP_TIMESTAMP_MONOTONIC,
  DRM_CAP_VBLANK_HIGH_CRTC,
  DRM_CLIENT_CAP_ATOMIC,
  DRM_CLIENT_CAP_STEREO_3D,
  DRM_CLIENT_CAP_UNIVERSAL_PLANES,
  DRM_COMMAND_BASE,
  DRM_COMMAND_END,
  DRM_IOCTL_BASE,
  DRM_IOCTL_GEM_CLOSE,
  DRM_IOCTL_GEM_FLINK,
  DRM_IOCTL_GEM_OPEN,
  DRM_IOCTL_GET_CAP,
  DRM_IOCTL_PRIME_FD_TO_HANDLE,
  DRM_IOCTL_PRIME_HANDLE_TO_FD,
  DRM_IOCTL_SET_CLIENT_CAP,
  DRM_IOCTL_VERSION,
  DRM_PRIME_CAP_EXPORT,
  DRM_PRIME_CAP_IMPORT,
} from "../../../include/uapi/drm.js";
import {
  DRM_IOCTL_MODE_ADDFB2,
  DRM_IOCTL_MODE_CREATE_DUMB,
  DRM_IOCTL_MODE_DESTROY_DUMB,
  DRM_IOCTL_MODE_GETCONNECTOR,
  DRM_IOCTL_MODE_GETCRTC,
  DRM_IOCTL_MODE_GETENCODER,
  DRM_IOCTL_MODE_GETRESOURCES,
  DRM_IOCTL_MODE_MAP_DUMB,
  DRM_IOCTL_MODE_PAGE_FLIP,
  DRM_IOCTL_MODE_RMFB,
  DRM_IOCTL_MODE_SETCRTC,
} from "../../../include/uapi/drm-mode.js";
import { _IOC_NR, _IOC_SIZE, _IOC_TYPE, IOC_READ, IOC_WRITE } from "../../../include/uapi/ioctl.js";
import { CStruct } from "../../../include/uapi/struct.js";
import type { Current } from "../../../vfs/file.js";
import type { DrmDevice, DrmIoctlDesc } from "./drm-device.js";
import {
  DRIVER_ATOMIC,
  DRIVER_MODESET,
  DRM_AUTH,
  DRM_MASTER,
  DRM_RENDER_ALLOW,
  DRM_ROOT_ONLY,
} from "./drm-driver.js";
import {
  drmModeCreateDumbIoctl,
  drmModeDestroyDumbIoctl,
  drmModeMapDumbIoctl,
} from "./drm-dumb.js";
import type { DrmFile } from "./drm-file.js";
import { drmGemCloseIoctl, drmGemFlinkIoctl, drmGemOpenIoctl } from "./drm-gem.js";
import {
  drmModeAddFb2Ioctl,
  drmModeGetConnectorIoctl,
  drmModeGetCrtcIoctl,
  drmModeGetEncoderIoctl,
  drmModeGetResourcesIoctl,
  drmModePageFlipIoctl,
  drmModeRmFbIoctl,
  drmModeSetCrtcIoctl,
} from "./drm-mode.js";
import { drmPrimeFdToHandleIoctl, drmPrimeHandleToFdIoctl } from "./drm-prime.js";

/** drm_copy_field(): copies min(len, room) bytes to the user buffer, reports the full length. */
function copyField(
  d: CStruct,
  lenOff: number,
  ptrOff: number,
  value: string,
  current: Current,
): void {
  const enc = new TextEncoder().encode(value);
  const room = d.u64(lenOff);
  const n = Math.min(enc.length, room);
  const ptr = d.u64(ptrOff);
  if (n > 0 && ptr !== 0) current.copyToUser(ptr, enc.subarray(0, n));
  d.setU64(lenOff, enc.length);
}

/** DRM_IOCTL_VERSION (drm_version). */
function drmVersion(dev: DrmDevice, d: CStruct, _f: DrmFile, current: Current): void {
  const drv = dev.driver;
  d.setS32(0, drv.major).setS32(4, drv.minor).setS32(8, drv.patchlevel);
  copyField(d, 16, 24, drv.name, current);
  copyField(d, 32, 40, drv.date, current);
  copyField(d, 48, 56, drv.desc, current);
}

/** drm_getcap()'s answer for `cap`: PRIME for everyone, the rest KMS only (EOPNOTSUPP). */
function getCapValue(dev: DrmDevice, cap: bigint): number {
  switch (cap) {
    case BigInt(DRM_CAP_TIMESTAMP_MONOTONIC):
      return 1;
    case BigInt(DRM_CAP_PRIME):
      return DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT;
    case BigInt(DRM_CAP_SYNCOBJ):
    case BigInt(DRM_CAP_SYNCOBJ_TIMELINE):
      // drm_core_check_feature(DRIVER_SYNCOBJ[_TIMELINE]): no model driver has syncobjs.
      return 0;
  }
  if (!dev.hasFeature(DRIVER_MODESET))
    throw new KernelError("EOPNOTSUPP", `DRM_IOCTL_GET_CAP: capability ${cap} needs a KMS driver`);
  switch (cap) {
    case BigInt(DRM_CAP_DUMB_BUFFER):
      return dev.driver.dumbCreate ? 1 : 0;
    case BigInt(DRM_CAP_VBLANK_HIGH_CRTC):
    case BigInt(DRM_CAP_CRTC_IN_VBLANK_EVENT):
      return 1;
    case BigInt(DRM_CAP_DUMB_PREFERRED_DEPTH):
      return dev.mode!.preferredDepth;
    case BigInt(DRM_CAP_DUMB_PREFER_SHADOW):
    case BigInt(DRM_CAP_ASYNC_PAGE_FLIP):
    case BigInt(DRM_CAP_PAGE_FLIP_TARGET):
    case BigInt(DRM_CAP_ADDFB2_MODIFIERS):
    case BigInt(DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP):
      return 0;
    case BigInt(DRM_CAP_CURSOR_WIDTH):
    case BigInt(DRM_CAP_CURSOR_HEIGHT):
      return 64;
    default:
      throw new KernelError("EINVAL", `DRM_IOCTL_GET_CAP: unknown capability ${cap}`);
  }
}

/** DRM_IOCTL_GET_CAP (drm_getcap). */
function drmGetCap(dev: DrmDevice, d: CStruct): void {
  d.setU64(8, 0);
  d.setU64(8, getCapValue(dev, d.view.getBigUint64(0, true)));
}

/** DRM_IOCTL_SET_CLIENT_CAP (drm_setclientcap). */
function drmSetClientCap(dev: DrmDevice, d: CStruct): void {
  const cap = d.view.getBigUint64(0, true);
  const value = d.view.getBigUint64(8, true);
  if (cap === BigInt(DRM_CLIENT_CAP_STEREO_3D) || cap === BigInt(DRM_CLIENT_CAP_UNIVERSAL_PLANES)) {
    if (value > 1n)
      throw new KernelError("EINVAL", "DRM_IOCTL_SET_CLIENT_CAP: value must be 0 or 1");
    return;
  }
  if (cap === BigInt(DRM_CLIENT_CAP_ATOMIC)) {
    if (!dev.hasFeature(DRIVER_ATOMIC))
      throw new KernelError("EOPNOTSUPP", "DRM_IOCTL_SET_CLIENT_CAP: the driver is not atomic");
    if (value > 2n) throw new KernelError("EINVAL", "DRM_IOCTL_SET_CLIENT_CAP: bad atomic value");
    return;
  }
  throw new KernelError("EINVAL", `DRM_IOCTL_SET_CLIENT_CAP: unknown capability ${cap}`);
}

const def = (
  cmd: number,
  func: DrmIoctlDesc["func"],
  flags: number,
  name: string,
): DrmIoctlDesc => ({
  cmd,
  func,
  flags,
  name,
});

/** drm_ioctls[]: the modelled core ioctls with their modern permission flags. */
const CORE_IOCTLS: ReadonlyMap<number, DrmIoctlDesc> = new Map(
  [
    def(DRM_IOCTL_VERSION, drmVersion, DRM_RENDER_ALLOW, "DRM_IOCTL_VERSION"),
    def(DRM_IOCTL_GET_CAP, drmGetCap, DRM_RENDER_ALLOW, "DRM_IOCTL_GET_CAP"),
    def(DRM_IOCTL_SET_CLIENT_CAP, drmSetClientCap, 0, "DRM_IOCTL_SET_CLIENT_CAP"),
    def(DRM_IOCTL_GEM_CLOSE, drmGemCloseIoctl, DRM_RENDER_ALLOW, "DRM_IOCTL_GEM_CLOSE"),
    def(DRM_IOCTL_GEM_FLINK, drmGemFlinkIoctl, DRM_AUTH, "DRM_IOCTL_GEM_FLINK"),
    def(DRM_IOCTL_GEM_OPEN, drmGemOpenIoctl, DRM_AUTH, "DRM_IOCTL_GEM_OPEN"),
    def(
      DRM_IOCTL_PRIME_HANDLE_TO_FD,
      drmPrimeHandleToFdIoctl,
      DRM_RENDER_ALLOW,
      "DRM_IOCTL_PRIME_HANDLE_TO_FD",
    ),
    def(
      DRM_IOCTL_PRIME_FD_TO_HANDLE,
      drmPrimeFdToHandleIoctl,
      DRM_RENDER_ALLOW,
      "DRM_IOCTL_PRIME_FD_TO_HANDLE",
    ),
    def(DRM_IOCTL_MODE_GETRESOURCES, drmModeGetResourcesIoctl, 0, "DRM_IOCTL_MODE_GETRESOURCES"),
    def(DRM_IOCTL_MODE_GETCRTC, drmModeGetCrtcIoctl, 0, "DRM_IOCTL_MODE_GETCRTC"),
    def(DRM_IOCTL_MODE_SETCRTC, drmModeSetCrtcIoctl, DRM_MASTER, "DRM_IOCTL_MODE_SETCRTC"),
    def(DRM_IOCTL_MODE_GETENCODER, drmModeGetEncoderIoctl, 0, "DRM_IOCTL_MODE_GETENCODER"),
    def(DRM_IOCTL_MODE_GETCONNECTOR, drmModeGetConnectorIoctl, 0, "DRM_IOCTL_MODE_GETCONNECTOR"),
    def(DRM_IOCTL_MODE_ADDFB2, drmModeAddFb2Ioctl, 0, "DRM_IOCTL_MODE_ADDFB2"),
    def(DRM_IOCTL_MODE_RMFB, drmModeRmFbIoctl, 0, "DRM_IOCTL_MODE_RMFB"),
    def(DRM_IOCTL_MODE_PAGE_FLIP, drmModePageFlipIoctl, DRM_MASTER, "DRM_IOCTL_MODE_PAGE_FLIP"),
    def(DRM_IOCTL_MODE_CREATE_DUMB, drmModeCreateDumbIoctl, 0, "DRM_IOCTL_MODE_CREATE_DUMB"),
    def(DRM_IOCTL_MODE_MAP_DUMB, drmModeMapDumbIoctl, 0, "DRM_IOCTL_MODE_MAP_DUMB"),
    def(DRM_IOCTL_MODE_DESTROY_DUMB, drmModeDestroyDumbIoctl, 0, "DRM_IOCTL_MODE_DESTROY_DUMB"),
  ].map((d) => [_IOC_NR(d.cmd), d]),
);

/** drm_ioctl_permit(): EACCES unless the caller may run an ioctl with `flags`. */
export function drmIoctlPermit(flags: number, file: DrmFile, name: string): void {
  // ROOT_ONLY: processes are root in the model.
  void DRM_ROOT_ONLY;
  if (flags & DRM_AUTH && !file.isRenderClient && !file.authenticated)
    throw new KernelError("EACCES", `${name}: the client is not authenticated`);
  if (flags & DRM_MASTER && file.dev.master !== file)
    throw new KernelError("EACCES", `${name}: only the DRM master may do this`);
  if (!(flags & DRM_RENDER_ALLOW) && file.isRenderClient)
    throw new KernelError("EACCES", `${name}: not allowed on a render node`);
}

/** drm_ioctl(). */
export function drmIoctl(file: DrmFile, cmd: number, arg: number, current: Current): number {
  const dev = file.dev;
  // Only ioctls of type 'd' are DRM's: anything else (a dma-buf or V4L2 ioctl on a DRM
  // fd) is ENOTTY before the number is looked at.
  if (_IOC_TYPE(cmd) !== DRM_IOCTL_BASE.charCodeAt(0))
    throw new KernelError(
      "ENOTTY",
      `${dev.driver.name}: ioctl 0x${cmd.toString(16)} is not a DRM ioctl (type is not '${DRM_IOCTL_BASE}')`,
    );
  const nr = _IOC_NR(cmd);
  let desc: DrmIoctlDesc | undefined;
  if (nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END) {
    desc = dev.driver.ioctls?.[nr - DRM_COMMAND_BASE];
  } else {
    desc = CORE_IOCTLS.get(nr);
  }
  if (desc === undefined)
    throw new KernelError(
      "EINVAL",
      `${dev.driver.name}: unknown DRM ioctl 0x${cmd.toString(16)} (nr 0x${nr.toString(16)})`,
    );
  const drvSize = _IOC_SIZE(desc.cmd);
  const dir = (cmd >>> 30) & (desc.cmd >>> 30);
  const inSize = dir & IOC_WRITE ? _IOC_SIZE(cmd) : 0;
  const outSize = dir & IOC_READ ? _IOC_SIZE(cmd) : 0;
  const ksize = Math.max(inSize, outSize, drvSize);
  const kdata = new Uint8Array(ksize);
  if (inSize > 0) kdata.set(current.copyFromUser(arg, inSize));
  const data = new CStruct(kdata);
  drmIoctlPermit(desc.flags, file, desc.name);
  try {
    desc.func(dev, data, file, current);
  } finally {
    // drm_ioctl copies the struct back whatever the handler returned.
    if (outSize > 0) current.copyToUser(arg, kdata.subarray(0, outSize));
  }
  return 0;
}
