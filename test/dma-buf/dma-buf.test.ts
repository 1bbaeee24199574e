/**
 * The dma-buf core (drivers/dma-buf/dma-buf.c) at kernel level: a tiny exporter written
 * here records every op the core calls, so each test can say exactly which exporter
 * and importer callbacks run, when, and how often. The real heaps cover the
 * debugfs views.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../../src/dma/direction.js";
import { SgTable } from "../../src/dma/scatterlist.js";
import { dmaBufStatus } from "../../src/dma-buf/debugfs.js";
import {
  type DmaBuf,
  type DmaBufAttachOps,
  type DmaBufOps,
  dmaBufExport,
  dmaBufFd,
  dmaBufGet,
} from "../../src/dma-buf/dma-buf.js";
import {
  DMA_RESV_USAGE_READ,
  DMA_RESV_USAGE_WRITE,
  type DmaResvUsage,
} from "../../src/dma-buf/dma-resv.js";
import { SwSyncTimeline } from "../../src/dma-buf/sw-sync.js";
import { KernelError } from "../../src/errno.js";
import {
  MAP_SHARED,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from "../../src/include/uapi/fcntl.js";
import { Kernel, SW_SYNC_PATH } from "../../src/kernel/kernel.js";
import type { Process } from "../../src/kernel/process.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import type { Violation } from "../../src/machine/violations.js";

const PAGES = 4;
const SIZE = PAGES * PAGE_SIZE;

interface Priv {
  readonly phys: number;
}

interface Exported {
  readonly k: Kernel;
  readonly buf: DmaBuf<Priv>;
  /** Every exporter op the core called, in order. */
  readonly calls: string[];
  readonly count: (op: string) => number;
}

/** Ops of a minimal exporter over four pages of the page allocator, logging each call. */
function testOps(k: Kernel, calls: string[], extra: Partial<DmaBufOps<Priv>>): DmaBufOps<Priv> {
  return {
    mapDmaBuf(a, dir) {
      calls.push(`map ${a.dev.name} ${dir}`);
      return SgTable.fromRanges([{ phys: a.dmabuf.priv.phys, len: SIZE }]);
    },
    unmapDmaBuf(a, _sgt, dir) {
      calls.push(`unmap ${a.dev.name} ${dir}`);
    },
    release(buf) {
      calls.push("release");
      k.machine.pages.free(buf.priv.phys / PAGE_SIZE);
    },
    attach(_buf, a) {
      calls.push(`attach ${a.dev.name}`);
    },
    detach(_buf, a) {
      calls.push(`detach ${a.dev.name}`);
    },
    mmap(buf, vma) {
      calls.push("mmap");
      vma.ranges = [{ phys: buf.priv.phys + vma.pgoff * PAGE_SIZE, len: vma.length }];
      vma.attr = "cached";
    },
    ...extra,
  };
}

function exportTest(extra: Partial<DmaBufOps<Priv>> = {}, k = new Kernel()): Exported {
  const calls: string[] = [];
  const phys = k.machine.pages.alloc(2) * PAGE_SIZE;
  const buf = dmaBufExport(k.dmaBuf, {
    expName: "test",
    ops: testOps(k, calls, extra),
    size: SIZE,
    flags: O_RDWR,
    priv: { phys },
  });
  return {
    k,
    buf,
    calls,
    count: (op) => calls.filter((c) => c === op || c.startsWith(`${op} `)).length,
  };
}

function errno(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof KernelError, `expected KernelError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

function dmaBufMisuse(k: Kernel): Violation[] {
  return k.machine.violations.list.filter((v) => v.kind === "api-misuse" && v.api === "dma-buf");
}

/** Adds `fence` to the buffer's reservation object with `usage`, as a driver would. */
function addFence(buf: DmaBuf<Priv>, usage: DmaResvUsage, tl: SwSyncTimeline, value: number): void {
  const f = tl.createFence(value);
  buf.resv.lock();
  assert.equal(buf.resv.reserveFences(1), 0);
  buf.resv.addFence(f, usage);
  buf.resv.unlock();
  f.put();
}

const dynamicOps = (calls: string[]): Partial<DmaBufOps<Priv>> => ({
  pin(a) {
    calls.push(`pin ${a.dev.name}`);
  },
  unpin(a) {
    calls.push(`unpin ${a.dev.name}`);
  },
});

function importer(log: string[]): DmaBufAttachOps<Priv> {
  return {
    moveNotify(a) {
      log.push(`move_notify ${a.dev.name}`);
    },
  };
}

describe("dma_buf_export", () => {
  for (const missing of ["mapDmaBuf", "unmapDmaBuf", "release"] as const) {
    test(`without ${missing}: EINVAL`, () => {
      const k = new Kernel();
      const ops: Partial<DmaBufOps<Priv>> = testOps(k, [], {});
      delete ops[missing];
      assert.throws(
        () =>
          dmaBufExport(k.dmaBuf, {
            expName: "broken",
            ops: ops as DmaBufOps<Priv>,
            size: SIZE,
            flags: O_RDWR,
            priv: { phys: 0 },
          }),
        errno("EINVAL"),
      );
      assert.equal(k.dmaBuf.buffers.length, 0, "nothing joins db_list");
    });
  }

  test("pin without unpin (and unpin without pin): EINVAL", () => {
    const k = new Kernel();
    for (const extra of [{ pin: () => {} }, { unpin: () => {} }]) {
      assert.throws(
        () =>
          dmaBufExport(k.dmaBuf, {
            expName: "half-dynamic",
            ops: testOps(k, [], extra),
            size: SIZE,
            flags: O_RDWR,
            priv: { phys: 0 },
          }),
        errno("EINVAL"),
      );
    }
  });

  test("cache_sgt_mapping with pin/unpin: EINVAL", () => {
    const k = new Kernel();
    const calls: string[] = [];
    assert.throws(
      () =>
        dmaBufExport(k.dmaBuf, {
          expName: "cached-dynamic",
          ops: testOps(k, calls, { cacheSgtMapping: true, ...dynamicOps(calls) }),
          size: SIZE,
          flags: O_RDWR,
          priv: { phys: 0 },
        }),
      errno("EINVAL"),
    );
  });

  test("a valid export joins db_list with its own inode number", () => {
    const a = exportTest();
    const b = exportTest({}, a.k);
    assert.deepEqual(a.k.dmaBuf.buffers, [a.buf, b.buf]);
    assert.notEqual(a.buf.ino, b.buf.ino);
    a.buf.put();
    b.buf.put();
    assert.equal(a.k.dmaBuf.buffers.length, 0);
  });
});

describe("lifetime: release runs once, at the last reference", () => {
  test("the fd's close releases", () => {
    const e = exportTest();
    const p = e.k.spawn("app");
    const fd = dmaBufFd(e.buf, p, O_CLOEXEC);
    assert.equal(p.files.cloexec(fd), true);
    assert.equal(e.count("release"), 0);
    p.close(fd);
    assert.equal(e.count("release"), 1);
    assert.equal(e.k.dmaBuf.buffers.length, 0);
  });

  test("dma_buf_get keeps it past close; dma_buf_put releases", () => {
    const e = exportTest();
    const p = e.k.spawn("app");
    const fd = dmaBufFd(e.buf, p, 0);
    const got = dmaBufGet(p, fd);
    assert.equal(got, e.buf);
    assert.equal(e.buf.file.count, 2);
    const dupFd = p.dup(fd);
    p.close(fd);
    p.close(dupFd);
    assert.equal(e.count("release"), 0, "the driver's reference holds it");
    assert.deepEqual(e.k.dmaBuf.buffers, [e.buf]);
    got.put();
    assert.equal(e.count("release"), 1);
    assert.equal(e.k.dmaBuf.buffers.length, 0);
  });

  test("an mmap holds a reference after close; munmap releases", () => {
    const e = exportTest();
    const p = e.k.spawn("app");
    const fd = dmaBufFd(e.buf, p, 0);
    const map = p.mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert.equal(e.count("mmap"), 1);
    p.close(fd);
    assert.equal(e.count("release"), 0);
    map.write(0, new Uint8Array([1, 2, 3]));
    p.munmap(map);
    assert.equal(e.count("release"), 1);
    assert.equal(e.k.machine.cpu.liveMappings, 0);
  });

  test("exit drops fds and mmaps: one release", () => {
    const e = exportTest();
    const p = e.k.spawn("app");
    const fd = dmaBufFd(e.buf, p, 0);
    p.dup(fd);
    p.mmap(SIZE, PROT_READ, MAP_SHARED, fd, 0);
    p.mmap(PAGE_SIZE, PROT_READ, MAP_SHARED, fd, PAGE_SIZE);
    p.exit();
    assert.equal(e.count("release"), 1);
    assert.equal(e.k.dmaBuf.buffers.length, 0);
  });

  test("release drops the fences of the buffer's own reservation object (dma_resv_fini)", () => {
    const e = exportTest();
    const tl = new SwSyncTimeline(e.k.fences, "gpu");
    const f = tl.createFence(1);
    e.buf.resv.lock();
    e.buf.resv.reserveFences(1);
    e.buf.resv.addFence(f, DMA_RESV_USAGE_WRITE);
    e.buf.resv.unlock();
    assert.equal(f.refcount, 2);
    e.buf.put();
    assert.equal(f.refcount, 1, "the buffer's reference to its fence is gone");
    f.put();
    assert.deepEqual(tl.pendingPoints, [], "the point left its timeline when freed");
    tl.release();
  });

  test("a shared reservation object (the exporter's) keeps its fences after release", () => {
    const k = new Kernel();
    const owner = exportTest({}, k);
    const calls: string[] = [];
    const phys = k.machine.pages.alloc(2) * PAGE_SIZE;
    const buf = dmaBufExport(k.dmaBuf, {
      expName: "shared-resv",
      ops: testOps(k, calls, {}),
      size: SIZE,
      flags: O_RDWR,
      priv: { phys },
      resv: owner.buf.resv,
    });
    assert.equal(buf.resv, owner.buf.resv);
    const tl = new SwSyncTimeline(k.fences, "gpu");
    addFence(buf, DMA_RESV_USAGE_WRITE, tl, 1);
    buf.put();
    assert.equal(
      owner.buf.resv.numFences,
      1,
      "the exporter's object is not finalised by the import",
    );
    owner.buf.put();
    assert.deepEqual(tl.pendingPoints, []);
    tl.release();
  });

  test("a put after the last is caught, not a second release", () => {
    const e = exportTest();
    e.buf.put();
    assert.throws(() => e.buf.put(), /already released/);
    assert.equal(e.count("release"), 1);
  });
});

describe("dma_buf_get", () => {
  test("on a file that is not a dma-buf: EINVAL", () => {
    const k = new Kernel();
    const p = k.spawn("app");
    const memfd = p.memfdCreate("x", MFD_CLOEXEC);
    const tl = p.open(SW_SYNC_PATH, O_RDWR);
    const heap = p.open("/dev/dma_heap/system", O_RDWR);
    for (const fd of [memfd, tl, heap]) assert.throws(() => dmaBufGet(p, fd), errno("EINVAL"));
  });

  test("on a closed fd: EBADF", () => {
    const e = exportTest();
    const p = e.k.spawn("app");
    const fd = dmaBufFd(e.buf, p, 0);
    p.close(fd);
    assert.throws(() => dmaBufGet(p, fd), errno("EBADF"));
    assert.throws(() => dmaBufGet(p, 77), errno("EBADF"));
    assert.throws(() => dmaBufGet(p, -1), errno("EBADF"));
  });
});

describe("attach and detach", () => {
  test("attach calls ops.attach, detach calls ops.detach, once each", () => {
    const e = exportTest();
    const dev = e.k.machine.addDevice("dev");
    const a = e.buf.attach(dev);
    assert.deepEqual(e.calls, ["attach dev"]);
    assert.deepEqual(e.buf.attachments, [a]);
    e.buf.detach(a);
    assert.deepEqual(e.calls, ["attach dev", "detach dev"]);
    assert.deepEqual(e.buf.attachments, []);
    assert.equal(dmaBufMisuse(e.k).length, 0);
    e.buf.put();
  });

  test("map and unmap go to the exporter each time without cache_sgt_mapping", () => {
    const e = exportTest();
    const dev = e.k.machine.addDevice("dev");
    const a = e.buf.attach(dev);
    const s1 = e.buf.mapAttachment(a, DMA_TO_DEVICE);
    const s2 = e.buf.mapAttachment(a, DMA_FROM_DEVICE);
    assert.notEqual(s1, s2);
    assert.equal(a.liveMappings, 2);
    e.buf.unmapAttachment(a, s1, DMA_TO_DEVICE);
    e.buf.unmapAttachment(a, s2, DMA_FROM_DEVICE);
    assert.equal(e.count("map"), 2);
    assert.equal(e.count("unmap"), 2);
    e.buf.detach(a);
    assert.equal(dmaBufMisuse(e.k).length, 0);
    e.buf.put();
  });

  test("using an attachment after detach: EINVAL", () => {
    const e = exportTest();
    const dev = e.k.machine.addDevice("dev");
    const a = e.buf.attach(dev);
    e.buf.detach(a);
    assert.throws(() => e.buf.mapAttachment(a, DMA_BIDIRECTIONAL), errno("EINVAL"));
    e.buf.detach(a);
    assert.equal(dmaBufMisuse(e.k).length, 1, "a double detach is reported");
    e.buf.put();
  });
});

describe("cache_sgt_mapping", () => {
  test("the same table comes back; unmap of it is a no-op; detach unmaps it", () => {
    const e = exportTest({ cacheSgtMapping: true });
    const dev = e.k.machine.addDevice("dev");
    const a = e.buf.attach(dev);
    const s1 = e.buf.mapAttachment(a, DMA_TO_DEVICE);
    const s2 = e.buf.mapAttachment(a, DMA_TO_DEVICE);
    assert.equal(s1, s2);
    assert.equal(e.count("map"), 1);
    e.buf.unmapAttachment(a, s1, DMA_TO_DEVICE);
    e.buf.unmapAttachment(a, s2, DMA_TO_DEVICE);
    assert.equal(e.count("unmap"), 0, "the cached mapping stays until detach");
    assert.equal(dmaBufMisuse(e.k).length, 0);
    e.buf.detach(a);
    assert.deepEqual(e.calls, [
      "attach dev",
      `map dev ${DMA_TO_DEVICE}`,
      `unmap dev ${DMA_TO_DEVICE}`,
      "detach dev",
    ]);
    e.buf.put();
  });

  test("another direction is EBUSY unless the cached mapping is BIDIRECTIONAL", () => {
    const e = exportTest({ cacheSgtMapping: true });
    const dev = e.k.machine.addDevice("dev");
    const dev2 = e.k.machine.addDevice("dev2");
    const a = e.buf.attach(dev);
    e.buf.mapAttachment(a, DMA_TO_DEVICE);
    assert.throws(() => e.buf.mapAttachment(a, DMA_FROM_DEVICE), errno("EBUSY"));
    assert.throws(() => e.buf.mapAttachment(a, DMA_BIDIRECTIONAL), errno("EBUSY"));
    const b = e.buf.attach(dev2);
    const bi = e.buf.mapAttachment(b, DMA_BIDIRECTIONAL);
    assert.equal(e.buf.mapAttachment(b, DMA_TO_DEVICE), bi);
    assert.equal(e.buf.mapAttachment(b, DMA_FROM_DEVICE), bi);
    assert.equal(e.count("map"), 2);
    e.buf.detach(a);
    e.buf.detach(b);
    assert.equal(e.count("unmap"), 2);
    e.buf.put();
  });
});

describe("dynamic exporters and importers", () => {
  test("a static importer of a dynamic exporter is pinned and mapped at attach", () => {
    const calls: string[] = [];
    const e = exportTest(dynamicOps(calls));
    const dev = e.k.machine.addDevice("dev");
    const a = e.buf.attach(dev);
    assert.deepEqual(calls, ["pin dev"]);
    assert.deepEqual(e.calls, ["attach dev", `map dev ${DMA_BIDIRECTIONAL}`]);
    assert.ok(a.sgt !== undefined, "the core caches the mapping");
    assert.equal(e.buf.resv.isLocked, false, "and drops the lock again");
    // The importer's own map gets the cached table, without the lock or another pin.
    const sgt = e.buf.mapAttachment(a, DMA_TO_DEVICE);
    assert.equal(sgt, a.sgt);
    e.buf.unmapAttachment(a, sgt, DMA_TO_DEVICE);
    assert.equal(e.count("map"), 1);
    assert.equal(e.count("unmap"), 0);
    e.buf.detach(a);
    assert.deepEqual(calls, ["pin dev", "unpin dev"]);
    assert.equal(e.count("unmap"), 1);
    e.buf.put();
  });

  test("a failing map at attach unpins and fails the attach", () => {
    const calls: string[] = [];
    const e = exportTest({
      ...dynamicOps(calls),
      mapDmaBuf() {
        throw new KernelError("ENOMEM", "no room");
      },
    });
    const dev = e.k.machine.addDevice("dev");
    assert.throws(() => e.buf.attach(dev), errno("ENOMEM"));
    assert.deepEqual(calls, ["pin dev", "unpin dev"]);
    assert.deepEqual(e.buf.attachments, []);
    assert.equal(e.buf.resv.isLocked, false);
    e.buf.put();
  });

  test("a dynamic importer must hold the reservation lock to map and unmap", () => {
    const calls: string[] = [];
    const moves: string[] = [];
    const e = exportTest(dynamicOps(calls));
    const dev = e.k.machine.addDevice("gpu");
    const a = e.buf.attach(dev, importer(moves));
    assert.equal(a.sgt, undefined, "both sides dynamic: nothing mapped at attach");
    assert.deepEqual(calls, []);
    assert.throws(() => e.buf.mapAttachment(a, DMA_BIDIRECTIONAL), /dma_resv_lock\(\) not held/);
    assert.equal(e.count("map"), 0);
    e.buf.resv.lock();
    const sgt = e.buf.mapAttachment(a, DMA_BIDIRECTIONAL);
    // Without CONFIG_DMABUF_MOVE_NOTIFY the core pins for the mapping's lifetime.
    assert.deepEqual(calls, ["pin gpu"]);
    e.buf.resv.unlock();
    assert.throws(
      () => e.buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL),
      /dma_resv_lock\(\) not held/,
    );
    e.buf.resv.lock();
    e.buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
    e.buf.resv.unlock();
    assert.deepEqual(calls, ["pin gpu", "unpin gpu"]);
    e.buf.detach(a);
    e.buf.put();
  });

  test("a dynamic importer of a static exporter gets a cached mapping and still needs the lock", () => {
    const moves: string[] = [];
    const e = exportTest();
    const dev = e.k.machine.addDevice("gpu");
    const a = e.buf.attach(dev, importer(moves));
    assert.ok(a.sgt !== undefined);
    assert.throws(() => e.buf.mapAttachment(a, DMA_BIDIRECTIONAL), /not held/);
    e.buf.resv.lock();
    assert.equal(e.buf.mapAttachment(a, DMA_BIDIRECTIONAL), a.sgt);
    e.buf.resv.unlock();
    e.buf.detach(a);
    assert.equal(e.count("unmap"), 1);
    e.buf.put();
  });

  test("with CONFIG_DMABUF_MOVE_NOTIFY a dynamic importer's map does not pin", () => {
    const calls: string[] = [];
    const e = exportTest(dynamicOps(calls), new Kernel({ dmaBuf: { moveNotify: true } }));
    const a = e.buf.attach(e.k.machine.addDevice("gpu"), importer([]));
    e.buf.resv.lock();
    const sgt = e.buf.mapAttachment(a, DMA_BIDIRECTIONAL);
    e.buf.unmapAttachment(a, sgt, DMA_BIDIRECTIONAL);
    e.buf.resv.unlock();
    assert.deepEqual(calls, []);
    e.buf.detach(a);
    e.buf.put();
  });

  test("move_notify calls every dynamic importer's move_notify, under the lock", () => {
    const calls: string[] = [];
    const moves: string[] = [];
    const e = exportTest(dynamicOps(calls));
    const g1 = e.buf.attach(e.k.machine.addDevice("gpu1"), importer(moves));
    const g2 = e.buf.attach(e.k.machine.addDevice("gpu2"), importer(moves));
    const st = e.buf.attach(e.k.machine.addDevice("static"));
    assert.throws(() => e.buf.moveNotify(), /not held/);
    assert.deepEqual(moves, []);
    e.buf.resv.lock();
    e.buf.moveNotify();
    e.buf.resv.unlock();
    assert.deepEqual(moves, ["move_notify gpu1", "move_notify gpu2"]);
    for (const a of [g1, g2, st]) e.buf.detach(a);
    e.buf.put();
  });

  test("importer ops without move_notify: EINVAL, and no attachment", () => {
    const e = exportTest(dynamicOps([]));
    const ops = { allowPeer2peer: true } as unknown as DmaBufAttachOps<Priv>;
    assert.throws(() => e.buf.attach(e.k.machine.addDevice("gpu"), ops), errno("EINVAL"));
    assert.deepEqual(e.buf.attachments, []);
    assert.equal(e.count("attach"), 0);
    e.buf.put();
  });

  test("dma_buf_pin from a static importer is reported", () => {
    const e = exportTest(dynamicOps([]));
    const a = e.buf.attach(e.k.machine.addDevice("dev"));
    e.buf.resv.lock();
    e.buf.pin(a);
    e.buf.unpin(a);
    e.buf.resv.unlock();
    assert.equal(dmaBufMisuse(e.k).length, 2);
    e.buf.detach(a);
    e.buf.put();
  });
});

describe("vmap", () => {
  function vmapOps(k: Kernel, calls: string[]): Partial<DmaBufOps<Priv>> {
    return {
      vmap(buf) {
        calls.push("vmap");
        return k.machine.cpu.map([{ phys: buf.priv.phys, len: SIZE }], "cached", "vmap test");
      },
      vunmap(_buf, map) {
        calls.push("vunmap");
        k.machine.cpu.unmap(map);
      },
    };
  }

  test("is reference counted: the exporter maps once and unmaps at the last vunmap", () => {
    const k = new Kernel();
    const calls: string[] = [];
    const e = exportTest(vmapOps(k, calls), k);
    const m1 = e.buf.vmap();
    const m2 = e.buf.vmap();
    assert.equal(m1, m2);
    assert.deepEqual(calls, ["vmap"]);
    assert.equal(e.buf.vmappingCounter, 2);
    assert.equal(k.machine.cpu.liveMappings, 1);
    e.buf.vunmap(m1);
    assert.deepEqual(calls, ["vmap"]);
    e.buf.vunmap(m2);
    assert.deepEqual(calls, ["vmap", "vunmap"]);
    assert.equal(e.buf.vmappingCounter, 0);
    assert.equal(k.machine.cpu.liveMappings, 0);
    assert.throws(() => e.buf.vunmap(m1), errno("EINVAL"));
    const m3 = e.buf.vmap();
    assert.deepEqual(calls, ["vmap", "vunmap", "vmap"]);
    e.buf.vunmap(m3);
    e.buf.put();
  });

  test("without an exporter vmap: EINVAL", () => {
    const e = exportTest();
    assert.throws(() => e.buf.vmap(), errno("EINVAL"));
    assert.equal(e.buf.vmappingCounter, 0);
    e.buf.put();
  });
});

describe("begin_cpu_access waits for the implicit fences on the virtual clock", () => {
  const MS = 1_000_000;

  test("a WRITE fence: a read bracket waits until it signals", () => {
    const e = exportTest();
    const clock = e.k.machine.clock;
    const tl = new SwSyncTimeline(e.k.fences, "gpu");
    addFence(e.buf, DMA_RESV_USAGE_WRITE, tl, 1);
    const t0 = clock.now;
    clock.after(3 * MS, "gpu done", () => tl.signal(1));
    e.buf.beginCpuAccess(DMA_FROM_DEVICE);
    assert.ok(clock.now >= t0 + 3 * MS, `now ${clock.now}, want >= ${t0 + 3 * MS}`);
    assert.equal(tl.value, 1);
    e.buf.endCpuAccess(DMA_FROM_DEVICE);
    // Signalled: the next bracket does not wait.
    const t1 = clock.now;
    e.buf.beginCpuAccess(DMA_BIDIRECTIONAL);
    e.buf.endCpuAccess(DMA_BIDIRECTIONAL);
    assert.equal(clock.now, t1);
    tl.release();
    e.buf.put();
  });

  test("the exporter's begin_cpu_access runs before the wait", () => {
    const seen: number[] = [];
    const k = new Kernel();
    const e = exportTest(
      {
        beginCpuAccess() {
          seen.push(k.machine.clock.now);
        },
      },
      k,
    );
    const tl = new SwSyncTimeline(k.fences, "gpu");
    addFence(e.buf, DMA_RESV_USAGE_WRITE, tl, 1);
    const t0 = k.machine.clock.now;
    k.machine.clock.after(MS, "gpu done", () => tl.signal(1));
    e.buf.beginCpuAccess(DMA_FROM_DEVICE);
    assert.deepEqual(seen, [t0]);
    assert.ok(k.machine.clock.now >= t0 + MS);
    tl.release();
    e.buf.put();
  });

  for (const [dir, name] of [
    [DMA_TO_DEVICE, "DMA_TO_DEVICE"],
    [DMA_BIDIRECTIONAL, "DMA_BIDIRECTIONAL"],
  ] as const) {
    test(`a READ fence blocks a ${name} bracket but not a DMA_FROM_DEVICE one`, () => {
      const e = exportTest();
      const clock = e.k.machine.clock;
      const tl = new SwSyncTimeline(e.k.fences, "display");
      addFence(e.buf, DMA_RESV_USAGE_READ, tl, 1);
      clock.after(5 * MS, "scanout done", () => tl.signal(1));
      const t0 = clock.now;
      e.buf.beginCpuAccess(DMA_FROM_DEVICE);
      e.buf.endCpuAccess(DMA_FROM_DEVICE);
      assert.equal(clock.now, t0, "readers do not wait for readers");
      assert.equal(tl.value, 0);
      e.buf.beginCpuAccess(dir);
      assert.ok(clock.now >= t0 + 5 * MS, `now ${clock.now}`);
      assert.equal(tl.value, 1);
      e.buf.endCpuAccess(dir);
      tl.release();
      e.buf.put();
    });
  }

  test("a fence nothing will signal: the wait says so instead of hanging", () => {
    const e = exportTest();
    const tl = new SwSyncTimeline(e.k.fences, "stuck");
    addFence(e.buf, DMA_RESV_USAGE_WRITE, tl, 1);
    assert.throws(
      () => e.buf.beginCpuAccess(DMA_FROM_DEVICE),
      /nothing scheduled can ever signal it/,
    );
    tl.release();
    e.buf.put();
  });
});

describe("api-misuse reports (WARN_ON in Linux)", () => {
  test("detach with live mappings", () => {
    const e = exportTest();
    const a = e.buf.attach(e.k.machine.addDevice("cam"));
    e.buf.mapAttachment(a, DMA_FROM_DEVICE);
    e.buf.detach(a);
    const v = dmaBufMisuse(e.k);
    assert.equal(v.length, 1);
    assert.equal(v[0]!.agent, "cam");
    assert.match(v[0]!.message, /1 mapping\(s\) still live/);
    assert.match(v[0]!.hint, /dma_buf_unmap_attachment/);
    e.buf.put();
  });

  test("unmap without a mapping", () => {
    const e = exportTest();
    const a = e.buf.attach(e.k.machine.addDevice("cam"));
    const sgt = e.buf.mapAttachment(a, DMA_FROM_DEVICE);
    e.buf.unmapAttachment(a, sgt, DMA_FROM_DEVICE);
    e.buf.unmapAttachment(a, sgt, DMA_FROM_DEVICE);
    const v = dmaBufMisuse(e.k);
    assert.equal(v.length, 1);
    assert.match(v[0]!.message, /no live mapping/);
    assert.equal(e.count("unmap"), 1, "the exporter is not asked to unmap twice");
    e.buf.detach(a);
    e.buf.put();
  });

  test("release with attachments", () => {
    const e = exportTest();
    const p = e.k.spawn("app");
    const fd = dmaBufFd(e.buf, p, 0);
    e.buf.attach(e.k.machine.addDevice("disp"));
    p.close(fd);
    const v = dmaBufMisuse(e.k);
    assert.equal(v.length, 1);
    assert.equal(v[0]!.agent, "disp");
    assert.match(v[0]!.message, /freed with 1 attachment/);
    assert.equal(e.count("release"), 1);
  });

  test("correct use reports nothing", () => {
    const e = exportTest();
    const a = e.buf.attach(e.k.machine.addDevice("cam"));
    const sgt = e.buf.mapAttachment(a, DMA_FROM_DEVICE);
    e.buf.unmapAttachment(a, sgt, DMA_FROM_DEVICE);
    e.buf.detach(a);
    e.buf.put();
    assert.deepEqual(e.k.machine.violations.list, []);
  });
});

describe("debugfs", () => {
  function heapBuffer(k: Kernel, p: Process, heap: string, len: number): DmaBuf {
    const fd = k.heaps.find(heap)!.bufferAlloc(p, len, O_RDWR | O_CLOEXEC, 0);
    return dmaBufGet(p, fd);
  }

  test("bufinfo has Linux's columns, one row per buffer, and the attached devices", () => {
    const k = new Kernel();
    const p = k.spawn("app");
    const a = heapBuffer(k, p, "system", 3 * PAGE_SIZE);
    const b = heapBuffer(k, p, "cma", 2 * PAGE_SIZE);
    b.setName("frame0");
    const cam = k.machine.addDevice("camera");
    const disp = k.machine.addDevice("display");
    const ca = a.attach(cam);
    const da = a.attach(disp);
    const text = k.bufinfo();
    const lines = text.split("\n");
    assert.equal(lines[0], "");
    assert.equal(lines[1], "Dma-buf Objects:");
    // seq_printf(s, "%-8s\t%-8s\t%-8s\t%-8s\texp_name\t%-8s\tname\n", "size", "flags", "mode", "count", "ino")
    assert.equal(lines[2], "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname");
    // "%08zu\t%08x\t%08x\t%08ld\t%s\t%08lu\t%s\n", newest first; O_RDWR = 2, FMODE_READ|WRITE = 3.
    const ino = (n: number): string => String(n).padStart(8, "0");
    assert.equal(lines[3], `00008192\t00000002\t00000003\t00000002\tcma\t${ino(b.ino)}\tframe0`);
    const rowA = lines.indexOf(
      `00012288\t00000002\t00000003\t00000002\tsystem\t${ino(a.ino)}\t<none>`,
    );
    assert.ok(rowA > 3, text);
    assert.deepEqual(lines.slice(rowA + 1, rowA + 5), [
      "\tAttached Devices:",
      "\tcamera",
      "\tdisplay",
      "Total 2 devices attached",
    ]);
    assert.ok(text.includes("\tAttached Devices:\nTotal 0 devices attached\n\n"), text);
    assert.ok(text.endsWith(`\nTotal 2 objects, ${5 * PAGE_SIZE} bytes\n`), text);
    a.detach(ca);
    a.detach(da);
    a.put();
    b.put();
    p.exit();
    assert.equal(k.bufinfo(), `\nDma-buf Objects:\n${lines[2]}\n\nTotal 0 objects, 0 bytes\n`);
  });

  test("bufinfo lists the unsignalled fences of the reservation object", () => {
    const k = new Kernel();
    const p = k.spawn("app");
    const buf = heapBuffer(k, p, "system", PAGE_SIZE);
    const tl = new SwSyncTimeline(k.fences, "gpu-ring");
    const f = tl.createFence(7);
    buf.resv.lock();
    buf.resv.reserveFences(1);
    buf.resv.addFence(f, DMA_RESV_USAGE_WRITE);
    buf.resv.unlock();
    f.put();
    assert.match(k.bufinfo(), /\twrite fence:sw_sync gpu-ring seq 7 unsignalled\n/);
    tl.inc(7);
    assert.match(k.bufinfo(), /\twrite fence:sw_sync gpu-ring seq 7 signalled\n/);
    buf.put();
    p.exit();
  });

  test("dmaBufStatus counts each attachment's mappings and the vmaps", () => {
    const k = new Kernel();
    const p = k.spawn("app");
    const buf = heapBuffer(k, p, "system", 4 * PAGE_SIZE);
    const dev = k.machine.addDevice("cam", { dmaBits: 64 });
    const dev2 = k.machine.addDevice("gpu", { dmaBits: 64 });
    const a = buf.attach(dev);
    const g = buf.attach(dev2, { moveNotify: () => {} });
    const s1 = buf.mapAttachment(a, DMA_FROM_DEVICE);
    const vm = buf.vmap();
    let st = dmaBufStatus(k.dmaBuf);
    assert.equal(st.length, 1);
    assert.equal(st[0]!.expName, "system");
    assert.equal(st[0]!.fileCount, 2);
    assert.equal(st[0]!.vmaps, 1);
    assert.deepEqual(st[0]!.attachments, [
      { device: "cam", dynamic: false, mappings: 1 },
      // A dynamic importer of a static exporter has its mapping cached at attach.
      { device: "gpu", dynamic: true, mappings: 1 },
    ]);
    buf.unmapAttachment(a, s1, DMA_FROM_DEVICE);
    buf.vunmap(vm);
    st = dmaBufStatus(k.dmaBuf);
    assert.equal(st[0]!.attachments[0]!.mappings, 0);
    assert.equal(st[0]!.vmaps, 0);
    buf.detach(a);
    buf.detach(g);
    buf.put();
    p.exit();
    assert.deepEqual(dmaBufStatus(k.dmaBuf), []);
  });
});
