/**
 * The simulator as a conformance backend: what it offers, and a process on a fresh
 * simulated kernel set up like the VM of scripts/kernel-conformance.mjs.
 */

import { vgemProbe } from "../../src/drivers/gpu/drm/vgem/vgem.js";
import { vim2mProbe } from "../../src/drivers/media/test-drivers/vim2m.js";
import { vividProbe } from "../../src/drivers/media/test-drivers/vivid/vivid.js";
import { Kernel, type KernelOptions } from "../../src/kernel/kernel.js";
import { resolveProfile } from "../../src/machine/profiles.js";
import { SimUapi } from "../../src/uapi/sim.js";
import { type Capability, openVgem } from "./suite.js";
import { openVim2m } from "./vim2m-cases.js";
import { openVivid } from "./vivid-cases.js";

/** Everything the simulator models (vgem and vivid through {@link makeSimUapi}), hugetlb memfds included. */
export const SIM_CAPABILITIES: readonly Capability[] = [
  "system-heap",
  "udmabuf",
  "sw_sync",
  "memfd",
  "hugetlb",
  "fence-deadline",
  "vgem",
  "vivid",
  "vim2m",
  "swiotlb-highmem",
];

/**
 * The model booted as the conformance script's second VM (5 GiB, 1.5 GiB of it above
 * 4 GiB, for the "swiotlb-highmem" cases): its RAM starts below 4 GiB just far enough for
 * the swiotlb pool and the CMA area, which take the bottom of RAM, so every page the page
 * allocator hands out (memfd, hugetlb, heap pages) lies above 4 GiB, as x86-64 serves
 * them from ZONE_NORMAL first there; and vivid's DMA masters get the 32-bit mask
 * vivid_create_instance() coerces with allocators=1 (dma_coerce_mask_and_coherent). The
 * main boot's vivid keeps the model's 64-bit default (docs/conformance.md says why).
 */
const GiB = 1024 * 1024 * 1024;

function highmemOptions(options: KernelOptions): KernelOptions {
  const name = typeof options.profile === "string" ? options.profile : "arm64";
  const p =
    typeof options.profile === "object" ? options.profile : resolveProfile(name, options.overrides);
  const low = p.swiotlbBytes + p.cmaBytes;
  return {
    ...options,
    overrides: { ...options.overrides, ram: { base: 4 * GiB - low, size: low + 2 * GiB } },
  };
}

/**
 * A process on a fresh simulated kernel with vgem at /dev/dri/card0 and vivid at
 * /dev/video0 (capture) and /dev/video1 (output), as the VM has them after `insmod vgem`
 * and `insmod vivid n_devs=1 allocators=1`. Each is probed (vgem_init, vivid_probe) only
 * when the kernel did not register one at boot itself. vivid gets the VM's module
 * parameters: dma-contig, and so no USERPTR (vivid_create_queue offers USERPTR only
 * with vmalloc), cache_hints=0.
 */
export function makeSimUapi(
  options: KernelOptions = {},
  needs: readonly Capability[] = [],
): SimUapi {
  const highmem = needs.includes("swiotlb-highmem");
  const k = new Kernel(highmem ? highmemOptions(options) : options);
  const u = new SimUapi(k);
  const vgem = openVgem(u);
  if (vgem >= 0) u.close(vgem);
  else vgemProbe(k);
  const vivid = openVivid(u);
  if (vivid >= 0) u.close(vivid);
  else
    vividProbe(k, {
      allocator: "dma-contig",
      userptr: false,
      ...(highmem ? { capture: { dmaBits: 32 }, output: { dmaBits: 32 } } : {}),
    });
  // vim2m as Linux's: its formats, limits and computation (vim2m-linux.ts).
  const m2m = openVim2m(u);
  if (m2m >= 0) u.close(m2m);
  else vim2mProbe(k, { formats: "linux" });
  return u;
}
