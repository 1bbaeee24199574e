/**
 * What a driver sees of the kernel it is probed into: the machine and its DMA mapping
 * API, the dma-buf core and fence contexts, and the device-node table it registers its
 * /dev entries in (misc_register, video_register_device, drm_dev_register).
 *
 * Drivers depend on this interface, never on the Kernel class, so the layering stays
 * downward: machine -> DMA API -> dma-buf -> drivers -> kernel/uAPI. The Kernel
 * implements it and probes the built-in drivers at boot.
 */

import type { DmaMappingApi } from "../dma/mapping.js";
import type { DmaBufCore } from "../dma-buf/dma-buf.js";
import type { FenceEnv } from "../dma-buf/dma-fence.js";
import { KernelError } from "../errno.js";
import type { Machine } from "../machine/machine.js";
import type { File } from "../vfs/file.js";

export interface DriverHost {
  readonly machine: Machine;
  readonly dma: DmaMappingApi;
  readonly fences: FenceEnv;
  readonly dmaBuf: DmaBufCore;
  /** Registers a device node; EEXIST if the path is taken. */
  addDevnode(path: string, open: (flags: number) => File): void;
  /** Whether a device node exists at `path` (device-number allocators look for a free one). */
  hasDevnode(path: string): boolean;
}

/**
 * The machine-device name of a new driver instance (dev_name(), which is also the name
 * the checker, traces and reports use for the DMA master): `requested` when the caller
 * names it, else `base` for the first instance and `base-1`, `base-2`... after it, so a
 * kernel with one device of a kind names it exactly as before. EEXIST, as a second
 * device_add() of one name fails, when `requested` is taken.
 */
export function driverDeviceName(host: DriverHost, base: string, requested?: string): string {
  const taken = new Set(host.machine.devices.map((d) => d.name));
  if (requested !== undefined) {
    if (requested === "")
      throw new KernelError("EINVAL", `${base}: the device name must not be empty`);
    if (taken.has(requested))
      throw new KernelError("EEXIST", `${base}: a device named '${requested}' exists already`);
    return requested;
  }
  if (!taken.has(base)) return base;
  for (let n = 1; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/**
 * The lowest free `${prefix}N` device node at or above `first` — the number
 * video_register_device(vdev, type, -1) and the accel/DRM minor allocators give a new
 * node when the caller does not ask for one.
 */
export function freeDevnodePath(host: DriverHost, prefix: string, first = 0): string {
  for (let n = first; ; n++) if (!host.hasDevnode(`${prefix}${n}`)) return `${prefix}${n}`;
}
