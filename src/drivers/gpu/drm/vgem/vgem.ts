/**
 * vgem, the virtual GEM provider (drivers/gpu/drm/vgem/vgem_drv.c): a DRM device with
 * no hardware — /dev/dri/cardN and the next render minor, card0 and renderD128 when
 * probed first — whose objects are shmem pages. It exists so software renderers and tests
 * can share buffers with PRIME and make real implicit fences (vgem-fence.ts).
 *
 * As Linux 6.x: DRIVER_GEM | DRIVER_RENDER; dumb buffers (primary node only: the core
 * refuses CREATE_DUMB on render nodes); the shmem helpers with map_wc = true, because
 * vgem has no begin/end CPU-access ioctls and GEM dma-bufs do no cache maintenance;
 * imports attach the vgem platform device (64-bit mask) and map the buffer once.
 * `options.mapWc = false` gives the cached mapping older kernels had, to show why that
 * was changed. Linux's vgem_init() creates exactly one device; the model lets a test
 * probe more (DMA masters "vgem", "vgem-1"...) to stand in for several software
 * exporters.
 */

import { KernelError } from "../../../../errno.js";
import type { CStruct } from "../../../../include/uapi/struct.js";
import {
  DRM_IOCTL_VGEM_FENCE_ATTACH,
  DRM_IOCTL_VGEM_FENCE_SIGNAL,
} from "../../../../include/uapi/vgem-drm.js";
import type { DeviceConfig, DmaDevice } from "../../../../machine/device.js";
import { type DriverHost, driverDeviceName } from "../../../host.js";
import {
  DRIVER_GEM,
  DRIVER_RENDER,
  DRM_RENDER_ALLOW,
  DrmDevice,
  type DrmDriver,
} from "../drm-device.js";
import type { DrmFile } from "../drm-file.js";
import { drmGemHandleCreate } from "../drm-gem.js";
import { drmGemShmemCreate, drmGemShmemPrimeImportSgTable } from "../drm-gem-shmem.js";
import { VgemFile, vgemFenceAttach, vgemFenceClose, vgemFenceSignal } from "./vgem-fence.js";

export interface VgemOptions {
  /** CPU mappings write-combined (Linux 6.x, the default) or cached (older kernels). */
  readonly mapWc?: boolean;
  readonly device?: Partial<Omit<DeviceConfig, "name">>;
  /** The DMA master's name: default "vgem", then "vgem-1"... */
  readonly name?: string;
}

/** The probed vgem device. */
export class Vgem {
  constructor(
    readonly drm: DrmDevice,
    readonly dev: DmaDevice,
  ) {}
  get cardPath(): string {
    return this.drm.primaryPath;
  }
  get renderPath(): string {
    return this.drm.renderPath!;
  }
}

/** vgem_init(): registers the platform device and the DRM device. */
export function vgemProbe(host: DriverHost, options: VgemOptions = {}): Vgem {
  const mapWc = options.mapWc ?? true;
  const dev = host.machine.addDevice(driverDeviceName(host, "vgem", options.name), {
    dmaBits: 64,
    iommu: false,
    ...options.device,
  });
  let drm: DrmDevice;
  const driver: DrmDriver = {
    name: "vgem",
    desc: "Virtual GEM provider",
    date: "20120112",
    major: 1,
    minor: 0,
    patchlevel: 0,
    features: DRIVER_GEM | DRIVER_RENDER,
    ioctls: [
      undefined,
      {
        cmd: DRM_IOCTL_VGEM_FENCE_ATTACH,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_VGEM_FENCE_ATTACH",
        func: (_d, data: CStruct, file: DrmFile) => {
          data.setU32(8, vgemFenceAttach(file, data.u32(0), data.u32(4), data.u32(12)));
        },
      },
      {
        cmd: DRM_IOCTL_VGEM_FENCE_SIGNAL,
        flags: DRM_RENDER_ALLOW,
        name: "DRM_IOCTL_VGEM_FENCE_SIGNAL",
        func: (_d, data: CStruct, file: DrmFile) => {
          vgemFenceSignal(file, data.u32(0), data.u32(4));
        },
      },
    ],
    open(file) {
      file.driverPriv = new VgemFile();
    },
    postclose(file) {
      vgemFenceClose(file);
    },
    dumbCreate(file, width, height, bpp) {
      // drm_gem_shmem_dumb_create (DRM_GEM_SHMEM_DRIVER_OPS): pitch is
      // DIV_ROUND_UP(width * bpp, 8) in u32 arithmetic, not width * cpp, and the size
      // is PAGE_ALIGN(pitch * height).
      const pitch = Math.ceil((Math.imul(width, bpp) >>> 0) / 8);
      const size = Math.ceil((Math.imul(pitch, height) >>> 0) / 4096) * 4096;
      if (size === 0) throw new KernelError("EINVAL", "vgem dumb_create: size 0");
      const obj = drmGemShmemCreate(drm, size, mapWc);
      const handle = drmGemHandleCreate(file, obj);
      obj.dumb = true;
      obj.put();
      return { handle, pitch, size: obj.size };
    },
    gemPrimeImportSgTable: (d, attach, sgt) => drmGemShmemPrimeImportSgTable(d, attach, sgt),
  };
  drm = new DrmDevice(host, driver, dev);
  drm.register();
  return new Vgem(drm, dev);
}
