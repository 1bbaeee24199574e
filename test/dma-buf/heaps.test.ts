/**
 * The system and CMA heaps (drivers/dma-buf/heaps/system_heap.c, cma_heap.c): how they
 * carve memory, what a fresh buffer holds and where its zeroes sit in the cache, mmap
 * rules, running out, and the cache maintenance (or lack of it) of the CPU-access
 * brackets.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DMA_BIDIRECTIONAL, DMA_TO_DEVICE } from "../../src/dma/direction.js";
import { type DmaBuf, dmaBufGet } from "../../src/dma-buf/dma-buf.js";
import type { HeapAttachment, HeapBuffer } from "../../src/dma-buf/heaps/heap-buffer.js";
import { SYSTEM_HEAP_ORDERS } from "../../src/dma-buf/heaps/system-heap.js";
import { KernelError } from "../../src/errno.js";
import {
  DMA_BUF_SYNC_END,
  DMA_BUF_SYNC_READ,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_START,
  DMA_BUF_SYNC_WRITE,
} from "../../src/include/uapi/dma-buf.js";
import {
  MAP_PRIVATE,
  MAP_SHARED,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from "../../src/include/uapi/fcntl.js";
import { Kernel, type KernelOptions } from "../../src/kernel/kernel.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { dmaBufSync, dmaHeapAlloc } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";

const KiB = 1024;
const MiB = 1024 * KiB;

function errno(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof KernelError, `expected KernelError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

interface Rig {
  readonly k: Kernel;
  readonly u: SimUapi;
  /** Allocates from /dev/dma_heap/<heap>; returns the fd and the kernel's buffer (with a reference). */
  alloc(heap: "system" | "cma", len: number): { fd: number; buf: DmaBuf<HeapBuffer> };
  /** The open heap device's fd. */
  readonly heaps: { readonly system: number; readonly cma: number };
}

function rig(options: KernelOptions = {}): Rig {
  const k = new Kernel(options);
  const u = new SimUapi(k, "app");
  const heaps = {
    system: u.open("/dev/dma_heap/system", O_RDWR),
    cma: u.open("/dev/dma_heap/cma", O_RDWR),
  };
  return {
    k,
    u,
    heaps,
    alloc(heap, len) {
      const fd = dmaHeapAlloc(u, heaps[heap], len);
      return { fd, buf: dmaBufGet(u.process, fd) as DmaBuf<HeapBuffer> };
    },
  };
}

/** A small machine, so running a heap dry is quick. */
const SMALL: KernelOptions = {
  profile: "arm64",
  overrides: {
    ram: { base: 0x4000_0000, size: 16 * MiB },
    cmaBytes: 2 * MiB,
    swiotlbBytes: 1 * MiB,
  },
};

function heapAttachment(buf: DmaBuf<HeapBuffer>, i = 0): HeapAttachment {
  const ha = buf.priv.attachments[i];
  assert.ok(ha !== undefined);
  return ha;
}

describe("system heap", () => {
  test("orders are 8, 4, 0 as in system_heap.c", () => {
    assert.deepEqual([...SYSTEM_HEAP_ORDERS], [8, 4, 0]);
  });

  test("1 MiB + 64 KiB + 4 KiB is exactly three chunks, largest first", () => {
    const r = rig();
    const len = 1 * MiB + 64 * KiB + 4 * KiB;
    const { buf } = r.alloc("system", len);
    assert.equal(buf.size, len);
    assert.deepEqual(
      buf.priv.ranges.map((x) => x.len),
      [1 * MiB, 64 * KiB, 4 * KiB],
    );
    for (const x of buf.priv.ranges)
      assert.equal(x.phys % x.len, 0, "each chunk is naturally aligned");
    const dev = r.k.machine.addDevice("dev", { dmaBits: 64 });
    const a = buf.attach(dev);
    const table = heapAttachment(buf).table;
    assert.equal(table.origNents, 3);
    assert.deepEqual(table.physRanges(), buf.priv.ranges);
    const sgt = buf.mapAttachment(a, DMA_BIDIRECTIONAL);
    assert.equal(sgt, table, "the attachment maps its own copy of the table");
    assert.equal(sgt.origNents, 3);
    assert.equal(sgt.size, len);
    buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
    buf.detach(a);
    buf.put();
  });

  test("each attachment gets its own table over the same pages", () => {
    const r = rig();
    const { buf } = r.alloc("system", 68 * KiB);
    const a = buf.attach(r.k.machine.addDevice("a", { dmaBits: 64 }));
    const b = buf.attach(r.k.machine.addDevice("b", { dmaBits: 64 }));
    const ta = heapAttachment(buf, 0).table;
    const tb = heapAttachment(buf, 1).table;
    assert.notEqual(ta, tb);
    assert.deepEqual(ta.physRanges(), tb.physRanges());
    buf.detach(a);
    buf.detach(b);
    assert.deepEqual(buf.priv.attachments, []);
    buf.put();
  });

  test("a fresh buffer reads as zeroes, even over pages that held data", () => {
    const r = rig(SMALL);
    const dirty = r.alloc("system", 256 * KiB);
    const m = r.u.mmap(256 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, dirty.fd, 0);
    m.fill(0, 256 * KiB, 0xaa);
    const old = dirty.buf.priv.ranges;
    r.u.munmap(m);
    r.u.close(dirty.fd);
    dirty.buf.put();
    // Take all of memory: the old pages must be among it.
    const free = r.k.machine.pages.freePages * PAGE_SIZE;
    const { fd, buf } = r.alloc("system", free);
    const covers = (p: number): boolean =>
      buf.priv.ranges.some((x) => p >= x.phys && p < x.phys + x.len);
    assert.ok(
      old.every((x) => covers(x.phys)),
      "the new buffer reuses the old pages",
    );
    const view = r.u.mmap(free, PROT_READ, MAP_SHARED, fd, 0);
    const bytes = view.read(0, free);
    assert.equal(
      bytes.findIndex((b) => b !== 0),
      -1,
    );
    r.u.munmap(view);
    buf.put();
    r.u.exit();
  });

  for (const profile of ["cortex-a9", "arm64"]) {
    test(`${profile}: the zeroes sit dirty in the cache until the first dma_map cleans them`, () => {
      const r = rig({ profile });
      const cache = r.k.machine.cache;
      const { buf } = r.alloc("system", 64 * KiB);
      const dirtyLines = (): number =>
        buf.priv.ranges.reduce((n, x) => n + (cache.dirtyIn(x.phys, x.len)?.lines ?? 0), 0);
      assert.ok(cache.dirtyLines > 0);
      assert.ok(dirtyLines() > 0, "__GFP_ZERO wrote through the cacheable linear map");
      const dev = r.k.machine.addDevice("display", { dmaBits: 64 });
      const a = buf.attach(dev);
      assert.ok(dirtyLines() > 0, "attaching alone does no maintenance");
      const sgt = buf.mapAttachment(a, DMA_TO_DEVICE);
      assert.equal(dirtyLines(), 0, "dma_map_sgtable cleaned the buffer to memory");
      const seen = dev.readSegments(sgt.dmaSegments());
      assert.equal(seen.length, 64 * KiB);
      assert.equal(
        seen.findIndex((b) => b !== 0),
        -1,
      );
      assert.deepEqual(r.k.machine.violations.list, []);
      buf.unmapAttachment(a, sgt, DMA_TO_DEVICE);
      buf.detach(a);
      buf.put();
    });
  }

  test("MAP_PRIVATE: one page is allowed, more pages EINVAL (remap_pfn_range page by page)", () => {
    const r = rig();
    const { fd, buf } = r.alloc("system", 8 * KiB);
    const m = r.u.mmap(4 * KiB, PROT_READ, MAP_PRIVATE, fd, 4 * KiB);
    assert.equal(m.read(0, 4).length, 4);
    r.u.munmap(m);
    assert.throws(() => r.u.mmap(8 * KiB, PROT_READ, MAP_PRIVATE, fd, 0), errno("EINVAL"));
    buf.put();
  });

  test("exhausted: ENOMEM, the partial allocation given back, and nothing leaked", () => {
    const r = rig(SMALL);
    const pages = r.k.machine.pages;
    const start = pages.freePages;
    const fds: number[] = [];
    let failed: unknown;
    for (let i = 0; i < 64 && failed === undefined; i++) {
      try {
        fds.push(dmaHeapAlloc(r.u, r.heaps.system, 768 * KiB));
      } catch (e) {
        failed = e;
      }
    }
    assert.ok(errno("ENOMEM")(failed));
    assert.ok(fds.length >= 10, `only ${fds.length} buffers allocated`);
    // The failed buffer took what was left and gave it back.
    const before = pages.freePages;
    assert.ok(before > 0 && before < (768 * KiB) / PAGE_SIZE, `${before} pages free`);
    assert.equal(start - before, (fds.length * 768 * KiB) / PAGE_SIZE);
    // One page more than is left: the heap gets all of it, fails, and frees what it took.
    assert.throws(() => r.alloc("system", (before + 1) * PAGE_SIZE), errno("ENOMEM"));
    assert.equal(pages.freePages, before);
    assert.equal(r.k.dmaBuf.buffers.length, fds.length);
    r.u.exit();
    assert.equal(r.k.dmaBuf.buffers.length, 0);
    assert.equal(pages.freePages, start);
  });

  test("more than RAM: ENOMEM before touching the allocator", () => {
    const r = rig(SMALL);
    const start = r.k.machine.pages.freePages;
    assert.throws(() => r.alloc("system", 17 * MiB), errno("ENOMEM"));
    assert.equal(r.k.machine.pages.freePages, start);
  });
});

describe("cma heap", () => {
  test("one contiguous scatterlist entry", () => {
    const r = rig();
    const len = 1 * MiB + 68 * KiB;
    const { buf } = r.alloc("cma", len);
    assert.equal(buf.priv.ranges.length, 1);
    assert.ok(r.k.machine.cma.contains(buf.priv.ranges[0]!.phys));
    const a = buf.attach(r.k.machine.addDevice("dev", { dmaBits: 64 }));
    const sgt = buf.mapAttachment(a, DMA_BIDIRECTIONAL);
    assert.equal(sgt.origNents, 1);
    assert.deepEqual(sgt.physRanges(), [{ phys: buf.priv.ranges[0]!.phys, len }]);
    buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
    buf.detach(a);
    buf.put();
  });

  test("reads as zeroes", () => {
    const r = rig();
    const { fd, buf } = r.alloc("cma", 16 * KiB);
    const m = r.u.mmap(16 * KiB, PROT_READ, MAP_SHARED, fd, 0);
    assert.equal(
      m.read(0, 16 * KiB).findIndex((b) => b !== 0),
      -1,
    );
    r.u.munmap(m);
    buf.put();
  });

  test("mmap needs MAP_SHARED: MAP_PRIVATE is EINVAL and leaves no reference", () => {
    const r = rig();
    const { fd, buf } = r.alloc("cma", 8 * KiB);
    assert.equal(buf.file.count, 2);
    assert.throws(() => r.u.mmap(8 * KiB, PROT_READ, MAP_PRIVATE, fd, 0), errno("EINVAL"));
    assert.equal(buf.file.count, 2);
    assert.equal(r.k.machine.cpu.liveMappings, 0);
    const m = r.u.mmap(8 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    r.u.munmap(m);
    buf.put();
  });

  test("exhausted: ENOMEM, and the area is whole again after everything is freed", () => {
    const r = rig(SMALL);
    const cma = r.k.machine.cma;
    const start = cma.freeUnits;
    assert.equal(start * PAGE_SIZE, 2 * MiB);
    const a = r.alloc("cma", 1 * MiB);
    const b = r.alloc("cma", 512 * KiB);
    assert.throws(() => r.alloc("cma", 1 * MiB), errno("ENOMEM"));
    assert.equal(cma.freeUnits, start - (1 * MiB + 512 * KiB) / PAGE_SIZE);
    a.buf.put();
    b.buf.put();
    r.u.close(a.fd);
    r.u.close(b.fd);
    assert.equal(cma.freeUnits, start);
    assert.equal(r.k.dmaBuf.buffers.length, 0);
    const whole = r.alloc("cma", 2 * MiB);
    assert.equal(cma.freeUnits, 0);
    whole.buf.put();
    r.u.exit();
    assert.equal(cma.freeUnits, start);
  });
});

describe("CPU-access brackets", () => {
  // The point made in the 2011 dma-buf thread: begin/end_cpu_access are the exporter's
  // hook, and an exporter with nothing mapped for a device has nothing to maintain.
  for (const heap of ["system", "cma"] as const) {
    for (const profile of ["cortex-a9", "arm64"]) {
      test(`${profile} ${heap}: with no attachment mapped, begin/end do no cache maintenance`, () => {
        const r = rig({ profile });
        const { fd, buf } = r.alloc(heap, 64 * KiB);
        const attached = buf.attach(r.k.machine.addDevice("idle", { dmaBits: 64 }));
        const cache = r.k.machine.cache;
        const before = cache.snapshotCounters();
        for (const flags of [DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW]) {
          dmaBufSync(r.u, fd, DMA_BUF_SYNC_START | flags);
          dmaBufSync(r.u, fd, DMA_BUF_SYNC_END | flags);
        }
        assert.deepEqual(cache.snapshotCounters(), before);
        buf.detach(attached);
        buf.put();
      });

      test(`${profile} ${heap}: with a mapped attachment, begin and end each sync it`, () => {
        const r = rig({ profile });
        const { fd, buf } = r.alloc(heap, 64 * KiB);
        const a = buf.attach(r.k.machine.addDevice("cam", { dmaBits: 64 }));
        const sgt = buf.mapAttachment(a, DMA_BIDIRECTIONAL);
        const cache = r.k.machine.cache;
        const ops = (): number => {
          const c = cache.snapshotCounters();
          return c.lineOps + c.setWayOps;
        };
        const m = r.u.mmap(64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        const t0 = ops();
        dmaBufSync(r.u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
        const t1 = ops();
        assert.ok(t1 > t0, "begin_cpu_access synced for the CPU");
        m.fill(0, 64 * KiB, 0x5a);
        dmaBufSync(r.u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
        assert.ok(ops() > t1, "end_cpu_access synced for the device");
        const seen = r.k.machine.device("cam").readSegments(sgt.dmaSegments());
        assert.equal(
          seen.findIndex((b) => b !== 0x5a),
          -1,
          "the device sees the CPU's writes",
        );
        assert.deepEqual(r.k.machine.violations.list, []);
        r.u.munmap(m);
        buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
        buf.detach(a);
        buf.put();
      });
    }
  }

  test("once the attachment is unmapped the brackets go quiet again", () => {
    const r = rig({ profile: "cortex-a9" });
    const { fd, buf } = r.alloc("system", 16 * KiB);
    const a = buf.attach(r.k.machine.addDevice("cam"));
    const sgt = buf.mapAttachment(a, DMA_BIDIRECTIONAL);
    buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
    const before = r.k.machine.cache.snapshotCounters();
    dmaBufSync(r.u, fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
    dmaBufSync(r.u, fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
    assert.deepEqual(r.k.machine.cache.snapshotCounters(), before);
    buf.detach(a);
    buf.put();
  });
});
