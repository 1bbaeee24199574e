/**
 * Buffer lifetime as a property: random sequences of system calls by two or three
 * processes of one kernel — heap allocations, dup, close, fd passing, mmap, munmap,
 * exit, sync-file export, udmabuf from sealed memfds — checked after every step
 * against a reference model that only counts references (fds and mmaps). A buffer
 * is alive exactly while the model says something refers to it; at the end nothing
 * is alive, no page is lost and no CPU mapping is left.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type DmaBuf, isDmaBufFile } from "../../src/dma-buf/dma-buf.js";
import { DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW } from "../../src/include/uapi/dma-buf.js";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from "../../src/include/uapi/fcntl.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { dmaBufExportSyncFile, dmaHeapAlloc, udmabufCreate } from "../../src/uapi/lib.js";
import { SimUapi } from "../../src/uapi/sim.js";
import type { Mapping } from "../../src/uapi/uapi.js";

type Op =
  | {
      readonly t: "alloc";
      readonly p: number;
      readonly heap: "system" | "cma";
      readonly pages: number;
    }
  | {
      readonly t: "udmabuf";
      readonly p: number;
      readonly pages: number;
      readonly keepMemfd: boolean;
    }
  | { readonly t: "dup"; readonly p: number; readonly i: number }
  | { readonly t: "close"; readonly p: number; readonly i: number }
  | { readonly t: "send"; readonly p: number; readonly q: number; readonly i: number }
  | {
      readonly t: "mmap";
      readonly p: number;
      readonly i: number;
      readonly off: number;
      readonly len: number;
    }
  | { readonly t: "munmap"; readonly p: number; readonly i: number }
  | { readonly t: "syncfile"; readonly p: number; readonly i: number; readonly write: boolean }
  | { readonly t: "exit"; readonly p: number }
  | { readonly t: "spawn"; readonly p: number };

const slot = fc.nat(2);
const pick = fc.nat(63);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("alloc" as const),
      p: slot,
      heap: fc.constantFrom("system" as const, "cma" as const),
      pages: fc.integer({ min: 1, max: 20 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("udmabuf" as const),
      p: slot,
      pages: fc.integer({ min: 1, max: 4 }),
      keepMemfd: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("dup" as const), p: slot, i: pick }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("close" as const), p: slot, i: pick }) },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant("send" as const), p: slot, q: slot, i: pick }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("mmap" as const),
      p: slot,
      i: pick,
      off: pick,
      len: pick,
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("munmap" as const), p: slot, i: pick }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("syncfile" as const),
      p: slot,
      i: pick,
      write: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("exit" as const), p: slot }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("spawn" as const), p: slot }) },
);

/** What an fd refers to, for the model: a dma-buf, or anything else (memfd, sync_file). */
type Ref =
  | { readonly kind: "buf"; readonly buf: DmaBuf }
  | { readonly kind: "other"; readonly what: string };

interface Proc {
  readonly u: SimUapi;
  /** The device nodes, opened at spawn and never closed by the ops. */
  readonly dev: { readonly system: number; readonly cma: number; readonly udmabuf: number };
  /** Every other open fd. */
  readonly fds: Map<number, Ref>;
  readonly maps: { readonly map: Mapping; readonly buf: DmaBuf }[];
}

function spawn(k: Kernel, n: number): Proc {
  const u = new SimUapi(k, `proc${n}`);
  return {
    u,
    dev: {
      system: u.open("/dev/dma_heap/system", O_RDWR),
      cma: u.open("/dev/dma_heap/cma", O_RDWR),
      udmabuf: u.open("/dev/udmabuf", O_RDWR),
    },
    fds: new Map(),
    maps: [],
  };
}

/** The buffer behind a new fd, for the model to name it (it takes no reference). */
function bufferOf(p: Proc, fd: number): DmaBuf {
  const f = p.u.process.files.lookup(fd);
  assert.ok(isDmaBufFile(f), `fd ${fd} is not a dma-buf`);
  return f.privateData;
}

function nth<T>(xs: readonly T[], i: number): T | undefined {
  return xs.length === 0 ? undefined : xs[i % xs.length];
}

class World {
  readonly k: Kernel;
  readonly procs: (Proc | undefined)[];
  readonly log: string[] = [];

  constructor(profile: string, nprocs: number) {
    this.k = new Kernel({ profile });
    this.procs = Array.from({ length: nprocs }, (_, i) => spawn(this.k, i));
  }

  #proc(p: number): Proc | undefined {
    return this.procs[p % this.procs.length];
  }

  #bufFds(pr: Proc): [number, DmaBuf][] {
    const out: [number, DmaBuf][] = [];
    for (const [fd, r] of pr.fds) if (r.kind === "buf") out.push([fd, r.buf]);
    return out;
  }

  apply(op: Op): void {
    const pr = this.#proc(op.p);
    if (op.t === "spawn") {
      if (pr === undefined) this.procs[op.p % this.procs.length] = spawn(this.k, op.p);
      this.log.push("spawn");
      return;
    }
    if (pr === undefined) return;
    const u = pr.u;
    switch (op.t) {
      case "alloc": {
        const fd = dmaHeapAlloc(u, pr.dev[op.heap], op.pages * PAGE_SIZE);
        pr.fds.set(fd, { kind: "buf", buf: bufferOf(pr, fd) });
        this.log.push(`alloc ${op.heap} ${op.pages} -> ${fd}`);
        return;
      }
      case "udmabuf": {
        const size = op.pages * PAGE_SIZE;
        const memfd = u.memfdCreate("guest", MFD_ALLOW_SEALING);
        u.ftruncate(memfd, size);
        u.pwrite(memfd, new Uint8Array([1, 2, 3, 4]), 0);
        u.fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK);
        const fd = udmabufCreate(u, pr.dev.udmabuf, memfd, 0, size);
        pr.fds.set(fd, { kind: "buf", buf: bufferOf(pr, fd) });
        if (op.keepMemfd) pr.fds.set(memfd, { kind: "other", what: "memfd" });
        else u.close(memfd);
        this.log.push(`udmabuf ${op.pages} -> ${fd}`);
        return;
      }
      case "dup": {
        const e = nth([...pr.fds], op.i);
        if (e === undefined) return;
        const fd = u.dup(e[0]);
        pr.fds.set(fd, e[1]);
        this.log.push(`dup ${e[0]} -> ${fd}`);
        return;
      }
      case "close": {
        const e = nth([...pr.fds], op.i);
        if (e === undefined) return;
        u.close(e[0]);
        pr.fds.delete(e[0]);
        this.log.push(`close ${e[0]}`);
        return;
      }
      case "send": {
        const to = this.#proc(op.q);
        const e = nth([...pr.fds], op.i);
        if (to === undefined || e === undefined) return;
        const fd = u.sendFd(e[0], to.u);
        to.fds.set(fd, e[1]);
        this.log.push(`send ${e[0]} -> ${fd}`);
        return;
      }
      case "mmap": {
        const e = nth(this.#bufFds(pr), op.i);
        if (e === undefined) return;
        const pages = e[1].size / PAGE_SIZE;
        const off = op.off % pages;
        const len = 1 + (op.len % (pages - off));
        const map = u.mmap(
          len * PAGE_SIZE,
          PROT_READ | PROT_WRITE,
          MAP_SHARED,
          e[0],
          off * PAGE_SIZE,
        );
        map.fill(0, PAGE_SIZE, 0x5a);
        pr.maps.push({ map, buf: e[1] });
        this.log.push(`mmap ${e[0]} @${off}+${len}`);
        return;
      }
      case "munmap": {
        if (pr.maps.length === 0) return;
        const [m] = pr.maps.splice(op.i % pr.maps.length, 1);
        u.munmap(m!.map);
        this.log.push("munmap");
        return;
      }
      case "syncfile": {
        const e = nth(this.#bufFds(pr), op.i);
        if (e === undefined) return;
        const fd = dmaBufExportSyncFile(u, e[0], op.write ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ);
        pr.fds.set(fd, { kind: "other", what: "sync_file" });
        this.log.push(`syncfile ${e[0]} -> ${fd}`);
        return;
      }
      case "exit": {
        u.exit();
        this.procs[op.p % this.procs.length] = undefined;
        this.log.push("exit");
        return;
      }
    }
  }

  /** References per buffer, as the model counts them: fds and mmaps of live processes. */
  expected(): Map<DmaBuf, number> {
    const refs = new Map<DmaBuf, number>();
    const add = (b: DmaBuf): void => {
      refs.set(b, (refs.get(b) ?? 0) + 1);
    };
    for (const pr of this.procs) {
      if (pr === undefined) continue;
      for (const r of pr.fds.values()) if (r.kind === "buf") add(r.buf);
      for (const m of pr.maps) add(m.buf);
    }
    return refs;
  }

  check(): void {
    const want = this.expected();
    const live = this.k.dmaBuf.buffers;
    const why = (): string => this.log.join("; ");
    assert.equal(live.length, want.size, `live buffers after: ${why()}`);
    for (const b of live) {
      assert.ok(want.has(b), `${b.describe()} is alive with no reference after: ${why()}`);
      assert.equal(b.file.count, want.get(b), `${b.describe()} file count after: ${why()}`);
    }
    const maps = this.procs.reduce((n, pr) => n + (pr?.maps.length ?? 0), 0);
    assert.equal(this.k.machine.cpu.liveMappings, maps, `CPU mappings after: ${why()}`);
    for (const pr of this.procs) {
      if (pr === undefined) continue;
      const open = pr.u.process.files.fds().filter((fd) => !Object.values(pr.dev).includes(fd));
      assert.deepEqual(
        open,
        [...pr.fds.keys()].sort((a, b) => a - b),
        `fds after: ${why()}`,
      );
    }
  }
}

test("dma-buf lifetime follows the references, across processes, to the last page", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("arm64", "cortex-a9", "x86-64"),
      fc.integer({ min: 2, max: 3 }),
      fc.array(opArb, { minLength: 1, maxLength: 40 }),
      (profile, nprocs, ops) => {
        const w = new World(profile, nprocs);
        const m = w.k.machine;
        const freePages = m.pages.freePages;
        const cmaFree = m.cma.freeUnits;
        for (const op of ops) {
          w.apply(op);
          w.check();
        }
        for (let i = 0; i < w.procs.length; i++) {
          w.procs[i]?.u.exit();
          w.procs[i] = undefined;
          w.check();
        }
        assert.equal(w.k.dmaBuf.buffers.length, 0);
        assert.equal(w.k.processes.length, 0);
        assert.equal(m.pages.freePages, freePages, `pages leaked after: ${w.log.join("; ")}`);
        assert.equal(m.cma.freeUnits, cmaFree, `CMA leaked after: ${w.log.join("; ")}`);
        assert.equal(m.cpu.liveMappings, 0);
        assert.deepEqual(
          m.violations.list.map((v) => v.message),
          [],
        );
      },
    ),
    { numRuns: 150 },
  );
});

test("a buffer outlives its exporter's process while another process holds it", () => {
  const w = new World("arm64", 2);
  const start = w.k.machine.pages.freePages;
  w.apply({ t: "alloc", p: 0, heap: "system", pages: 3 });
  w.apply({ t: "udmabuf", p: 0, pages: 2, keepMemfd: false });
  w.apply({ t: "send", p: 0, q: 1, i: 0 });
  w.apply({ t: "send", p: 0, q: 1, i: 1 });
  w.apply({ t: "mmap", p: 1, i: 1, off: 0, len: 1 });
  w.apply({ t: "close", p: 1, i: 1 });
  w.check();
  w.apply({ t: "exit", p: 0 });
  w.check();
  assert.equal(w.k.dmaBuf.buffers.length, 2, "one by fd, the udmabuf by its mmap alone");
  const udma = w.k.dmaBuf.buffers.find((b) => b.expName === "udmabuf");
  assert.equal(udma?.file.count, 1);
  w.apply({ t: "munmap", p: 1, i: 0 });
  w.check();
  assert.deepEqual(
    w.k.dmaBuf.buffers.map((b) => b.expName),
    ["system"],
  );
  w.apply({ t: "exit", p: 1 });
  w.check();
  assert.equal(w.k.machine.pages.freePages, start);
});
