/**
 * What a real kernel offers the conformance suite (the simulator's list is in
 * ./sim-backend.ts), detected at run time from the device nodes, debugfs and /proc (the way
 * the kernel's selftests decide to skip: tools/testing/selftests/sync/sync_test.c stats
 * /sys/kernel/debug/sync/sw_sync; udmabuf.c skips without /dev/udmabuf).
 */

import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import type { Uapi } from "../../src/uapi/uapi.js";
import { type Capability, openVgem, SW_SYNC_PATH, SYSTEM_HEAP, UDMABUF_DEV } from "./suite.js";
import { IO_TLB_USED } from "./swiotlb-cases.js";
import { openVim2m } from "./vim2m-cases.js";
import { openVivid, VIVID_CAPTURE } from "./vivid-cases.js";

/** Huge pages the hugetlb cases need free (2 MiB each): see udmabufChunks in suite.ts. */
export const HUGETLB_PAGES_NEEDED = 8;

export interface DetectedCapabilities {
  readonly capabilities: Capability[];
  /** Why each missing capability is missing, in words. */
  readonly missing: Partial<Record<Capability, string>>;
  /** uname -r. */
  readonly kernel: string;
}

/** The kernel release as [major, minor]. */
function kernelVersion(rel: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m === null ? [0, 0] : [Number(m[1]), Number(m[2])];
}

/** Free 2 MiB huge pages, from /proc/meminfo. */
function freeHugePages(): number {
  try {
    const info = readFileSync("/proc/meminfo", "utf8");
    const size = /^Hugepagesize:\s+(\d+) kB/m.exec(info);
    const free = /^HugePages_Free:\s+(\d+)/m.exec(info);
    if (size === null || free === null || size[1] !== "2048") return 0;
    return Number(free[1]);
  } catch {
    return 0;
  }
}

/** Probes the running kernel (through `u` for memfd) for what the suite's cases need. */
export function detectLinuxCapabilities(u: Uapi): DetectedCapabilities {
  const have: Capability[] = [];
  const missing: Partial<Record<Capability, string>> = {};
  const check = (cap: Capability, ok: boolean, why: string): void => {
    if (ok) have.push(cap);
    else missing[cap] = why;
  };
  const kernel = release();
  check("system-heap", existsSync(SYSTEM_HEAP), `no ${SYSTEM_HEAP} (CONFIG_DMABUF_HEAPS_SYSTEM)`);
  check("udmabuf", existsSync(UDMABUF_DEV), `no ${UDMABUF_DEV} (CONFIG_UDMABUF)`);
  check("sw_sync", existsSync(SW_SYNC_PATH), `no ${SW_SYNC_PATH} (CONFIG_SW_SYNC, debugfs)`);
  let memfd = false;
  try {
    u.close(u.memfdCreate("probe", 0));
    memfd = true;
  } catch {
    // memfd_create(2) missing: ENOSYS.
  }
  check("memfd", memfd, "memfd_create(2) failed");
  const hugePages = freeHugePages();
  check(
    "hugetlb",
    hugePages >= HUGETLB_PAGES_NEEDED,
    `${hugePages} free 2 MiB huge pages, need ${HUGETLB_PAGES_NEEDED} (vm.nr_hugepages)`,
  );
  // SYNC_IOC_SET_DEADLINE and SW_SYNC_GET_DEADLINE arrived in Linux 6.5.
  const [major, minor] = kernelVersion(kernel);
  check(
    "fence-deadline",
    major > 6 || (major === 6 && minor >= 5),
    `Linux ${kernel} predates fence deadlines (6.5)`,
  );
  let vgem = -1;
  try {
    vgem = openVgem(u);
  } catch {
    // No /dev/dri at all.
  }
  if (vgem >= 0) u.close(vgem);
  check("vgem", vgem >= 0, "no vgem at /dev/dri/card* (modprobe vgem)");
  // vivid's capture node: VIDIOC_QUERYCAP's driver is "vivid" (a real webcam is not).
  const vivid = openVivid(u);
  if (vivid >= 0) u.close(vivid);
  check("vivid", vivid >= 0, `no vivid at ${VIVID_CAPTURE} (modprobe vivid n_devs=1 allocators=1)`);
  const m2m = openVim2m(u);
  if (m2m >= 0) u.close(m2m);
  check("vim2m", m2m >= 0, "no vim2m at /dev/video* (CONFIG_VIDEO_VIM2M; the VM builds it)");
  // RAM above 4 GiB (MemTotal above it means some lies there) and swiotlb's debugfs.
  const memTotal = memTotalBytes();
  check(
    "swiotlb-highmem",
    memTotal > 4 * 1024 ** 3 && existsSync(IO_TLB_USED),
    memTotal > 4 * 1024 ** 3
      ? `no ${IO_TLB_USED} (debugfs, CONFIG_SWIOTLB)`
      : `RAM all below 4 GiB (MemTotal ${Math.round(memTotal / 1024 ** 2)} MiB): scripts/kernel-conformance.mjs runs these cases in a second boot with 5 GiB`,
  );
  return { capabilities: have, missing, kernel };
}

/** MemTotal of /proc/meminfo in bytes (0 when unreadable). */
function memTotalBytes(): number {
  try {
    const m = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}
