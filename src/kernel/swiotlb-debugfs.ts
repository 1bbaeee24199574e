/**
 * swiotlb's debugfs files (kernel/dma/swiotlb.c swiotlb_create_debugfs_files):
 * /sys/kernel/debug/swiotlb/io_tlb_nslabs (the default pool's slots) and io_tlb_used
 * (io_tlb_used_get: slots in use now), each read as one decimal line, as a
 * DEFINE_DEBUGFS_ATTRIBUTE "%llu\n" (or debugfs_create_ulong) file is. Registered only
 * when the machine has a bounce pool, as x86-64 sets swiotlb up only when RAM reaches
 * above 4 GiB (arch/x86/kernel/pci-dma.c pci_swiotlb_detect).
 */

import type { ContiguousArea } from "../machine/contiguous.js";
import { File, type FileOperations, simpleReadFromBuffer } from "../vfs/file.js";

/** The directory of the default pool's files. */
export const SWIOTLB_DEBUGFS = "/sys/kernel/debug/swiotlb";

interface AttrPriv {
  /** The value, computed at open (simple_attr_open formats it on the first read). */
  readonly text: Uint8Array;
  pos: number;
}

const attrFops: FileOperations = {
  name: "debugfs_attr",
  read(file, len) {
    const p = file.privateData as AttrPriv;
    return simpleReadFromBuffer(p, p.text, len);
  },
};

/** The files of `pool`, as path → open function, for the kernel's device-node table. */
export function swiotlbDebugfsFiles(pool: ContiguousArea): [string, (flags: number) => File][] {
  const attr = (name: string, value: () => number): [string, (flags: number) => File] => [
    `${SWIOTLB_DEBUGFS}/${name}`,
    (flags) =>
      new File(
        attrFops,
        { text: new TextEncoder().encode(`${value()}\n`), pos: 0 } satisfies AttrPriv,
        flags,
        name,
      ),
  ];
  return [
    attr("io_tlb_nslabs", () => pool.units),
    attr("io_tlb_used", () => pool.units - pool.freeUnits),
  ];
}
