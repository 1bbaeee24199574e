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
import type { Machine } from "../machine/machine.js";
import type { File } from "../vfs/file.js";

export interface DriverHost {
  readonly machine: Machine;
  readonly dma: DmaMappingApi;
  readonly fences: FenceEnv;
  readonly dmaBuf: DmaBufCore;
  /** Registers a device node; EEXIST if the path is taken. */
  addDevnode(path: string, open: (flags: number) => File): void;
}
