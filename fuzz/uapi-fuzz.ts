/**
 * Random multi-process uAPI sequences on the simulated kernel, as a hostile program
 * would issue them: dma-heap and udmabuf buffers, mmaps and CPU access, DMA_BUF_IOCTL_SYNC,
 * fd passing between processes, sw_sync fences, DRM dumb buffers with page flips and
 * the CRC file, V4L2 capture on vivid (S_FMT, REQBUFS, CREATE_BUFS, QBUF, DQBUF, EXPBUF,
 * STREAMON/STREAMOFF, MMAP or DMABUF buffers from the other fds), and blocking calls (poll
 * with timeout -1, read on a DRM fd or the CRC file, DQBUF) — then every process exits.
 *
 * A sequence is plain data ({@link FuzzOp}[]): indices pick among the fds and mappings
 * a process has when the op runs (modulo their count), so every sequence runs and any
 * subsequence still does, which is what lets fast-check shrink a failure to a minimal
 * reproducer. {@link runSequence} reports:
 *  - internal errors: anything thrown that is neither an errno (KernelError, as Linux
 *    would return) nor a "would block forever" SimulationError from a blocking call;
 *  - hangs: a wait that ran out of the run's budget of virtual time or events (a wait
 *    without progress that bounded waiting failed to stop);
 *  - leaks: pages, CMA or dma-bufs still held after every process exited.
 */

import fc from "fast-check";
import { simdisplayProbe } from "../src/drivers/gpu/drm/simdisplay/simdisplay.js";
import { vgemProbe } from "../src/drivers/gpu/drm/vgem/vgem.js";
import { vividProbe } from "../src/drivers/media/test-drivers/vivid/vivid-core.js";
import { KernelError } from "../src/errno.js";
import { DRM_FORMAT_XRGB8888, DRM_MODE_PAGE_FLIP_EVENT } from "../src/include/uapi/drm-mode.js";
import {
  F_ADD_SEALS,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  O_NONBLOCK,
  O_RDWR,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
} from "../src/include/uapi/fcntl.js";
import {
  V4L2_BUF_TYPE_VIDEO_CAPTURE,
  V4L2_MEMORY_DMABUF,
  V4L2_MEMORY_MMAP,
  V4L2_PIX_FMT_YUYV,
} from "../src/include/uapi/videodev2.js";
import { Kernel, SW_SYNC_PATH } from "../src/kernel/kernel.js";
import { UserFault } from "../src/kernel/process.js";
import { SimulationError } from "../src/machine/outcome.js";
import {
  drmCrcOpen,
  drmModeAddFB2,
  drmModeCreateDumb,
  drmModeGetConnector,
  drmModeGetResources,
  drmModePageFlip,
  drmModeSetCrtc,
} from "../src/uapi/drm.js";
import {
  dmaBufSync,
  dmaHeapAlloc,
  swSyncCreateFence,
  swSyncInc,
  udmabufCreate,
} from "../src/uapi/lib.js";
import { SimUapi } from "../src/uapi/sim.js";
import type { Mapping } from "../src/uapi/uapi.js";
import {
  vidiocCreateBufs,
  vidiocDqbuf,
  vidiocExpbuf,
  vidiocQbuf,
  vidiocReqbufs,
  vidiocSFmt,
  vidiocStreamoff,
  vidiocStreamon,
} from "../src/uapi/v4l2.js";

/** One operation. `p` picks a process, `i`/`j` pick among its fds or mappings. */
export type FuzzOp =
  | { readonly k: "spawn" }
  | { readonly k: "exit"; readonly p: number }
  | { readonly k: "heap"; readonly p: number; readonly cma: boolean; readonly pages: number }
  | { readonly k: "udmabuf"; readonly p: number; readonly pages: number }
  | { readonly k: "mmap"; readonly p: number; readonly i: number }
  | { readonly k: "munmap"; readonly p: number; readonly i: number }
  | { readonly k: "touch"; readonly p: number; readonly i: number; readonly write: boolean }
  | { readonly k: "sync"; readonly p: number; readonly i: number; readonly flags: number }
  | { readonly k: "close"; readonly p: number; readonly i: number }
  | { readonly k: "dup"; readonly p: number; readonly i: number }
  | { readonly k: "send"; readonly p: number; readonly i: number; readonly to: number }
  | { readonly k: "poll"; readonly p: number; readonly i: number; readonly timeout: number }
  | { readonly k: "read"; readonly p: number; readonly i: number }
  | { readonly k: "show"; readonly p: number }
  | { readonly k: "flip"; readonly p: number }
  | { readonly k: "crc"; readonly p: number }
  | { readonly k: "fence"; readonly p: number; readonly value: number }
  | { readonly k: "inc"; readonly p: number; readonly i: number }
  | { readonly k: "video"; readonly p: number; readonly width: number }
  | { readonly k: "reqbufs"; readonly p: number; readonly count: number; readonly dmabuf: boolean }
  | { readonly k: "createbufs"; readonly p: number; readonly count: number; readonly size: number }
  | { readonly k: "qbuf"; readonly p: number; readonly i: number; readonly j: number }
  | { readonly k: "dqbuf"; readonly p: number }
  | { readonly k: "expbuf"; readonly p: number; readonly i: number }
  | { readonly k: "stream"; readonly p: number; readonly on: boolean };

/** What went wrong in a sequence, with the op that did it. */
export interface FuzzFailure {
  readonly kind: "internal-error" | "hang" | "leak";
  /** Index of the op (ops.length for the exit-time checks). */
  readonly at: number;
  readonly message: string;
}

export interface FuzzOutcome {
  readonly failure: FuzzFailure | undefined;
  /** Blocking calls correctly ended as "would block forever". */
  readonly blockedForever: number;
  /** Calls that failed with an errno or a signal, as Linux would. */
  readonly errnos: number;
}

const small = fc.nat({ max: 15 });
const proc = fc.nat({ max: 3 });

/** The fast-check arbitrary of one op. */
export const fuzzOp: fc.Arbitrary<FuzzOp> = fc.oneof(
  fc.constant({ k: "spawn" as const }),
  fc.record({ k: fc.constant("exit" as const), p: proc }),
  fc.record({
    k: fc.constant("heap" as const),
    p: proc,
    cma: fc.boolean(),
    pages: fc.integer({ min: 0, max: 8 }),
  }),
  fc.record({ k: fc.constant("udmabuf" as const), p: proc, pages: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ k: fc.constant("mmap" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("munmap" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("touch" as const), p: proc, i: small, write: fc.boolean() }),
  fc.record({ k: fc.constant("sync" as const), p: proc, i: small, flags: fc.nat({ max: 7 }) }),
  fc.record({ k: fc.constant("close" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("dup" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("send" as const), p: proc, i: small, to: proc }),
  fc.record({
    k: fc.constant("poll" as const),
    p: proc,
    i: small,
    timeout: fc.constantFrom(-1, 0, 5),
  }),
  fc.record({ k: fc.constant("read" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("show" as const), p: proc }),
  fc.record({ k: fc.constant("flip" as const), p: proc }),
  fc.record({ k: fc.constant("crc" as const), p: proc }),
  fc.record({ k: fc.constant("fence" as const), p: proc, value: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ k: fc.constant("inc" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("video" as const), p: proc, width: fc.constantFrom(16, 64, 320) }),
  fc.record({
    k: fc.constant("reqbufs" as const),
    p: proc,
    count: fc.nat({ max: 4 }),
    dmabuf: fc.boolean(),
  }),
  fc.record({
    k: fc.constant("createbufs" as const),
    p: proc,
    count: fc.nat({ max: 2 }),
    // Bytes per buffer: too small (EINVAL), the format's, or far beyond RAM (ENOMEM).
    size: fc.constantFrom(0, 1000, 2 ** 32 - 4096),
  }),
  fc.record({ k: fc.constant("qbuf" as const), p: proc, i: small, j: small }),
  fc.record({ k: fc.constant("dqbuf" as const), p: proc }),
  fc.record({ k: fc.constant("expbuf" as const), p: proc, i: small }),
  fc.record({ k: fc.constant("stream" as const), p: proc, on: fc.boolean() }),
);

/** A sequence of `min` to `max` ops. */
export function fuzzSequence(max: number, min = 0): fc.Arbitrary<FuzzOp[]> {
  return fc.array(fuzzOp, { minLength: min, maxLength: max });
}

interface Proc {
  readonly u: SimUapi;
  readonly fds: number[];
  readonly maps: Mapping[];
  card?: number;
  crtc?: number;
  fbs: number[];
  timeline?: number;
  /** The process's /dev/video0 fd, and the memory of its last REQBUFS. */
  video?: number;
  memory: number;
}

const DSYNC = [0, 1, 2, 3, 4, 5, 6, 7].map((f) => BigInt(f & 3) | (f & 4 ? 4n : 0n));

/** Runs one sequence on a fresh kernel; see the module comment for what it checks. */
export function runSequence(ops: readonly FuzzOp[]): FuzzOutcome {
  const k = new Kernel({ profile: "arm64" });
  vgemProbe(k);
  vividProbe(k);
  const disp = simdisplayProbe(k, { width: 64, height: 32 });
  const m = k.machine;
  // A wait that is not stopped by bounded waiting ends here, as a hang.
  m.clock.budget = { virtualNs: 600e9, events: 200_000 };
  const pagesFree = m.pages.freePages;
  const cmaFree = m.cma.freeUnits;
  const procs: Proc[] = [];
  const spawn = (): Proc => {
    const p: Proc = {
      u: new SimUapi(k, `fuzz${procs.length}`),
      fds: [],
      maps: [],
      fbs: [],
      memory: V4L2_MEMORY_MMAP,
    };
    procs.push(p);
    return p;
  };
  spawn();
  let blockedForever = 0;
  let errnos = 0;
  const pick = <T>(xs: readonly T[], i: number): T | undefined =>
    xs.length === 0 ? undefined : xs[i % xs.length];
  const card = (p: Proc): number => {
    if (p.card === undefined) {
      p.card = p.u.open(disp.cardPath, O_RDWR);
      p.fds.push(p.card);
    }
    return p.card;
  };
  const video = (p: Proc): number => {
    if (p.video === undefined) {
      p.video = p.u.open("/dev/video0", O_RDWR);
      p.fds.push(p.video);
    }
    return p.video;
  };
  const CAP = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  const dumbFb = (p: Proc, fd: number): number => {
    const d = drmModeCreateDumb(p.u, fd, { width: 64, height: 32, bpp: 32 });
    const fb = drmModeAddFB2(p.u, fd, {
      width: 64,
      height: 32,
      pixelFormat: DRM_FORMAT_XRGB8888,
      handles: [d.handle],
      pitches: [d.pitch],
      offsets: [0],
    });
    p.fbs.push(fb);
    return fb;
  };
  const exec = (op: FuzzOp): void => {
    if (op.k === "spawn") {
      if (procs.length < 4) spawn();
      return;
    }
    const p = pick(procs, op.p);
    if (p === undefined) return;
    const u = p.u;
    switch (op.k) {
      case "exit":
        procs.splice(procs.indexOf(p), 1);
        u.exit();
        return;
      case "heap": {
        const heap = u.open(op.cma ? "/dev/dma_heap/cma" : "/dev/dma_heap/system", O_RDWR);
        p.fds.push(heap);
        p.fds.push(dmaHeapAlloc(u, heap, op.pages * 4096));
        return;
      }
      case "udmabuf": {
        const mfd = u.memfdCreate("fuzz", MFD_ALLOW_SEALING);
        p.fds.push(mfd);
        u.ftruncate(mfd, op.pages * 4096);
        u.fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK);
        const dev = u.open("/dev/udmabuf", O_RDWR);
        p.fds.push(dev);
        p.fds.push(udmabufCreate(u, dev, mfd, 0, op.pages * 4096));
        return;
      }
      case "mmap": {
        const fd = pick(p.fds, op.i);
        if (fd !== undefined) p.maps.push(u.mmap(4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
        return;
      }
      case "munmap": {
        const map = pick(p.maps, op.i);
        // Unmapping twice is allowed (Linux returns 0): the mapping stays in the list.
        if (map !== undefined) u.munmap(map);
        return;
      }
      case "touch": {
        const map = pick(p.maps, op.i);
        if (map === undefined) return;
        if (op.write) map.fill(0, 64, op.i);
        else map.read(0, 64);
        return;
      }
      case "sync": {
        const fd = pick(p.fds, op.i);
        if (fd !== undefined) dmaBufSync(u, fd, DSYNC[op.flags]!);
        return;
      }
      case "close": {
        const fd = pick(p.fds, op.i);
        if (fd === undefined) return;
        p.fds.splice(p.fds.indexOf(fd), 1);
        if (fd === p.card) p.card = undefined;
        if (fd === p.timeline) p.timeline = undefined;
        if (fd === p.video) p.video = undefined;
        u.close(fd);
        return;
      }
      case "dup": {
        const fd = pick(p.fds, op.i);
        if (fd !== undefined) p.fds.push(u.dup(fd));
        return;
      }
      case "send": {
        const fd = pick(p.fds, op.i);
        const to = pick(procs, op.to);
        if (fd !== undefined && to !== undefined) to.fds.push(u.sendFd(fd, to.u));
        return;
      }
      case "poll": {
        const fd = pick(p.fds, op.i);
        if (fd !== undefined) u.poll([{ fd, events: POLLIN }], op.timeout);
        return;
      }
      case "read": {
        const fd = pick(p.fds, op.i);
        if (fd !== undefined) u.read(fd, 4096);
        return;
      }
      case "show": {
        const fd = card(p);
        const res = drmModeGetResources(u, fd);
        const conn = drmModeGetConnector(u, fd, res.connectors[0]!);
        p.crtc = res.crtcs[0]!;
        drmModeSetCrtc(u, fd, {
          crtcId: p.crtc,
          fbId: dumbFb(p, fd),
          x: 0,
          y: 0,
          connectors: [conn.connectorId],
          mode: conn.modes[0]!,
        });
        return;
      }
      case "flip": {
        const fd = card(p);
        const crtc = p.crtc ?? drmModeGetResources(u, fd).crtcs[0]!;
        drmModePageFlip(u, fd, crtc, dumbFb(p, fd), DRM_MODE_PAGE_FLIP_EVENT, 1n);
        return;
      }
      case "crc":
        p.fds.push(drmCrcOpen(u, disp.minor, 0, "auto"));
        return;
      case "fence": {
        if (p.timeline === undefined) {
          p.timeline = u.open(SW_SYNC_PATH, O_RDWR | O_NONBLOCK);
          p.fds.push(p.timeline);
        }
        p.fds.push(swSyncCreateFence(u, p.timeline, op.value));
        return;
      }
      case "inc": {
        if (p.timeline !== undefined) swSyncInc(u, p.timeline, 1 + (op.i % 3));
        return;
      }
      case "video":
        vidiocSFmt(u, video(p), CAP, {
          width: op.width,
          height: op.width / 2,
          pixelformat: V4L2_PIX_FMT_YUYV,
        });
        return;
      case "reqbufs": {
        const memory = op.dmabuf ? V4L2_MEMORY_DMABUF : V4L2_MEMORY_MMAP;
        vidiocReqbufs(u, video(p), { count: op.count, type: CAP, memory });
        p.memory = memory;
        return;
      }
      case "createbufs":
        vidiocCreateBufs(u, video(p), {
          count: op.count,
          memory: p.memory,
          type: CAP,
          fmt: {
            width: 64,
            height: 32,
            pixelformat: V4L2_PIX_FMT_YUYV,
            ...(op.size > 0 ? { sizeimage: op.size } : {}),
          },
        });
        return;
      case "qbuf": {
        const dmabufFd = p.memory === V4L2_MEMORY_DMABUF ? pick(p.fds, op.j) : undefined;
        vidiocQbuf(u, video(p), {
          index: op.i % 4,
          type: CAP,
          memory: p.memory,
          ...(dmabufFd !== undefined ? { fd: dmabufFd } : {}),
        });
        return;
      }
      case "dqbuf":
        // Blocking: waits for a frame, or ends as "would block forever".
        vidiocDqbuf(u, video(p), CAP, p.memory);
        return;
      case "expbuf":
        p.fds.push(vidiocExpbuf(u, video(p), { type: CAP, index: op.i % 4, flags: O_RDWR }));
        return;
      case "stream":
        if (op.on) vidiocStreamon(u, video(p), CAP);
        else vidiocStreamoff(u, video(p), CAP);
        return;
    }
  };
  const classify = (e: unknown, at: number): FuzzFailure | undefined => {
    // An errno, or a signal (SIGBUS past the end of a memfd, as Linux sends): both are
    // what Linux does with a bad call, not failures of the model.
    if (e instanceof KernelError || e instanceof UserFault) {
      errnos++;
      return undefined;
    }
    if (e instanceof SimulationError) {
      if (e.kind === "would-block-forever") {
        blockedForever++;
        return undefined;
      }
      return { kind: "hang", at, message: `${e.kind}: ${e.message}` };
    }
    return { kind: "internal-error", at, message: (e as Error)?.stack ?? String(e) };
  };
  for (let at = 0; at < ops.length; at++) {
    try {
      exec(ops[at]!);
    } catch (e) {
      const f = classify(e, at);
      if (f) return { failure: f, blockedForever, errnos };
    }
  }
  // Every process exits; whatever devices still do finishes; nothing may stay allocated.
  try {
    for (const p of procs.splice(0)) p.u.exit();
    m.clock.runUntilIdle(200_000);
  } catch (e) {
    const f = classify(e, ops.length) ?? {
      kind: "hang" as const,
      at: ops.length,
      message: (e as Error).message,
    };
    return { failure: f, blockedForever, errnos };
  }
  const leaks: string[] = [];
  if (m.pages.freePages !== pagesFree)
    leaks.push(`${pagesFree - m.pages.freePages} pages not freed`);
  if (m.cma.freeUnits !== cmaFree) leaks.push(`${cmaFree - m.cma.freeUnits} CMA pages not freed`);
  if (k.dmaBuf.buffers.length > 0) leaks.push(`${k.dmaBuf.buffers.length} dma-bufs alive`);
  const failure: FuzzFailure | undefined =
    leaks.length > 0 ? { kind: "leak", at: ops.length, message: leaks.join(", ") } : undefined;
  return { failure, blockedForever, errnos };
}

/** A reproducer as TypeScript-ish text: one op per line. */
export function formatOps(ops: readonly FuzzOp[]): string {
  return ops.map((o) => `  ${JSON.stringify(o)}`).join(",\n");
}
