/**
 * Introspection of live dma-bufs: /sys/kernel/debug/dma_buf/bufinfo in the kernel's
 * own format (dma_buf_debug_show in drivers/dma-buf/dma-buf.c), and the same facts as
 * data — with the per-attachment mappings Linux does not print — for reports and tests.
 */

import { O_ACCMODE, O_RDONLY, O_WRONLY } from "../include/uapi/fcntl.js";
import type { DmaBufCore } from "./dma-buf.js";
import {
  DMA_RESV_USAGE_BOOKKEEP,
  DMA_RESV_USAGE_READ,
  type DmaResvFenceDescription,
} from "./dma-resv.js";

const pad = (n: number | string, w: number, radix = 10): string =>
  n.toString(radix).padStart(w, "0");

/** FMODE_READ | FMODE_WRITE from the access mode (the f_mode column). */
function fmode(flags: number): number {
  const acc = flags & O_ACCMODE;
  return (acc === O_WRONLY ? 0 : 1) | (acc === O_RDONLY ? 0 : 2);
}

/** The text of /sys/kernel/debug/dma_buf/bufinfo. */
export function bufinfo(core: DmaBufCore): string {
  let out = "\nDma-buf Objects:\n";
  out += `${"size".padEnd(8)}\t${"flags".padEnd(8)}\t${"mode".padEnd(8)}\t${"count".padEnd(8)}\texp_name\t${"ino".padEnd(8)}\tname\n`;
  let count = 0;
  let size = 0;
  // db_list is a list_add() stack: newest first.
  for (const b of [...core.buffers].reverse()) {
    out += `${pad(b.size, 8)}\t${pad(b.file.flags, 8, 16)}\t${pad(fmode(b.file.flags), 8, 16)}\t${pad(b.file.count, 8)}\t${b.expName}\t${pad(b.ino, 8)}\t${b.name ?? "<none>"}\n`;
    b.resv.lock();
    out += b.resv.describeText(DMA_RESV_USAGE_READ);
    b.resv.unlock();
    out += "\tAttached Devices:\n";
    for (const a of b.attachments) out += `\t${a.dev.name}\n`;
    out += `Total ${b.attachments.length} devices attached\n\n`;
    count++;
    size += b.size;
  }
  out += `\nTotal ${count} objects, ${size} bytes\n`;
  return out;
}

/** One live buffer, as data. */
export interface DmaBufStatus {
  readonly ino: number;
  readonly size: number;
  readonly expName: string;
  readonly name: string | null;
  /** References to the buffer's file (fds, mmaps, kernel users). */
  readonly fileCount: number;
  readonly attachments: readonly {
    readonly device: string;
    readonly dynamic: boolean;
    /** Mappings handed out and not unmapped, plus a cached one. */
    readonly mappings: number;
  }[];
  readonly vmaps: number;
  readonly fences: readonly DmaResvFenceDescription[];
}

/** Every live buffer, oldest first. */
export function dmaBufStatus(core: DmaBufCore): DmaBufStatus[] {
  return core.buffers.map((b) => {
    b.resv.lock();
    const fences = b.resv.describe(DMA_RESV_USAGE_BOOKKEEP);
    b.resv.unlock();
    return {
      ino: b.ino,
      size: b.size,
      expName: b.expName,
      name: b.name ?? null,
      fileCount: b.file.count,
      attachments: b.attachments.map((a) => ({
        device: a.dev.name,
        dynamic: a.importerOps !== undefined,
        mappings: a.liveMappings + (a.sgt !== undefined ? 1 : 0),
      })),
      vmaps: b.vmappingCounter,
      fences,
    };
  });
}
