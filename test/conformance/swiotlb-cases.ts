/**
 * The swiotlb bounce of a 32-bit importer (suite "swiotlb", capability "swiotlb-highmem"):
 * a udmabuf whose pages lie above 4 GiB, imported by vivid's dma-contig capture queue,
 * whose device has a 32-bit DMA mask (vivid_create_instance: dma_coerce_mask_and_coherent
 * (DMA_BIT_MASK(32)) with allocators=1). Linux 6.12's udmabuf maps one PAGE_SIZE entry
 * per page (udmabuf.c get_sg_table), so dma-direct bounces page by page
 * (kernel/dma/direct.c dma_direct_map_page -> swiotlb_map): two IO_TLB_SIZE (2 KiB)
 * slots per 4 KiB page, counted in /sys/kernel/debug/swiotlb/io_tlb_used
 * (kernel/dma/swiotlb.c io_tlb_used_get).
 *
 * The conformance VM's RAM (1 GiB) is all below 4 GiB, so scripts/kernel-conformance.mjs
 * runs this suite in a second, short boot with 5 GiB: x86-64 puts user and hugetlb pages
 * in ZONE_NORMAL (above 4 GiB) first, and swiotlb is set up because max_pfn is above 4 GiB
 * (arch/x86/kernel/pci-dma.c pci_swiotlb_detect). The model's backend mirrors that boot
 * (sim-backend.ts). No case compares the frame: Linux's vivid writes it with the CPU
 * through the dma-buf's vmap (the memfd's pages), the model's vivid by DMA (the slots).
 */

import assert from "node:assert/strict";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_HUGETLB,
  O_RDONLY,
  O_RDWR,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
} from "../../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_MEMORY_DMABUF,
  V4L2_PIX_FMT_YUYV,
} from "../../src/include/uapi/videodev2.js";
import { udmabufCreate } from "../../src/uapi/lib.js";
import type { Uapi } from "../../src/uapi/uapi.js";
import {
  vidiocDqbuf,
  vidiocQbuf,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamoff,
  vidiocStreamon,
} from "../../src/uapi/v4l2.js";
import { scoped } from "./case-helpers.js";
// Types only: suite.ts imports this module, so a value import back would be a cycle.
import type { ConformanceCase } from "./suite.js";
import { openVivid, VIVID_CAPTURE } from "./vivid-cases.js";

/** swiotlb's default pool in debugfs (kernel/dma/swiotlb.c swiotlb_create_default_debugfs). */
export const IO_TLB_USED = "/sys/kernel/debug/swiotlb/io_tlb_used";
const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
const DMABUF = V4L2_MEMORY_DMABUF;
const MIB = 1024 * 1024;
const HPAGE = 2 * MIB;
/** IO_TLB_SIZE: 1 << IO_TLB_SHIFT (11). */
const IO_TLB_SIZE = 2048;
const FRAME_TIMEOUT_MS = 10_000;

/** io_tlb_used: the slots of the default pool in use ("%llu\n", io_tlb_used_get). */
export function ioTlbUsed(u: Uapi): number {
  const fd = u.open(IO_TLB_USED, O_RDONLY);
  try {
    const text = new TextDecoder().decode(u.read(fd, 64));
    assert.match(text, /^\d+\n$/, `${IO_TLB_USED}: ${JSON.stringify(text)}`);
    return Number(text);
  } finally {
    u.close(fd);
  }
}

export const swiotlbCases: ConformanceCase[] = [
  {
    suite: "swiotlb",
    name: "swiotlb bounce of a 32-bit importer: 1 MiB of a hugetlb memfd above 4 GiB as a udmabuf, queued as DMABUF on vivid's dma-contig capture queue (32-bit DMA mask), holds 512 slots of io_tlb_used (one 4 KiB mapping of two 2 KiB slots per page) from QBUF, still after DQBUF (the attachment stays mapped), and none after REQBUFS(0) (udmabuf.c get_sg_table; kernel/dma/swiotlb.c swiotlb_tbl_map_single, io_tlb_used_get; videobuf2-core.c __prepare_dmabuf, __vb2_dqbuf, __vb2_plane_dmabuf_put)",
    needs: ["vivid", "udmabuf", "hugetlb", "swiotlb-highmem"],
    run: scoped((u, h) => {
      const memfd = h.add(u.memfdCreate("conf-swiotlb", MFD_ALLOW_SEALING | MFD_HUGETLB));
      u.ftruncate(memfd, HPAGE);
      u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
      // Fault the folio in before the udmabuf pins it (it would be allocated then anyway).
      const view = u.mmap(HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
      view.fill(0, MIB, 0);
      u.munmap(view);
      const dev = h.add(u.open("/dev/udmabuf", O_RDWR));
      const dbuf = h.add(udmabufCreate(u, dev, memfd, 0, MIB));
      const fd = openVivid(u, VIVID_CAPTURE);
      assert.ok(fd >= 0, `no vivid at ${VIVID_CAPTURE}`);
      h.add(fd);
      vidiocSFmt(u, fd, CAP, { width: 640, height: 480, pixelformat: V4L2_PIX_FMT_YUYV });
      assert.equal(vidiocReqbufs(u, fd, { count: 2, type: CAP, memory: DMABUF }).count, 2);
      const before = ioTlbUsed(u);
      const slots = (MIB / 4096) * (4096 / IO_TLB_SIZE);
      vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: dbuf });
      assert.equal(ioTlbUsed(u) - before, slots, "slots taken by the QBUF's map");
      vidiocStreamon(u, fd, CAP);
      const [rev] = u.poll([{ fd, events: POLLIN }], FRAME_TIMEOUT_MS);
      assert.ok((rev ?? 0) & POLLIN, "no frame");
      const b = vidiocDqbuf(u, fd, CAP, DMABUF);
      assert.equal(b.index, 0);
      assert.equal(ioTlbUsed(u) - before, slots, "still mapped after DQBUF");
      vidiocQbuf(u, fd, { index: 0, type: CAP, memory: DMABUF, fd: dbuf });
      assert.equal(ioTlbUsed(u) - before, slots, "the same dma-buf queued again maps nothing");
      vidiocStreamoff(u, fd, CAP);
      vidiocReqbufs(u, fd, { count: 0, type: CAP, memory: DMABUF });
      assert.equal(ioTlbUsed(u), before, "REQBUFS(0) unmapped it: the slots are free");
      // No read of the memfd: see the file comment.
    }),
  },
];
