/**
 * Host memory for the model's big arrays (DRAM chunks, per-line shadow chunks, frame-sized
 * scratch buffers), on the host's 2 MiB transparent huge pages where its kernel gives them
 * on request: madvise(MADV_HUGEPAGE) (mm/madvise.c, mm/huge_memory.c; the "madvise" mode
 * of /sys/kernel/mm/transparent_hugepage/enabled, Debian's default).
 *
 * None of this is the model's: it is what the host pays to back the model's bytes. A
 * fresh 4 KiB page costs a page fault of 10-25 µs on the VMs this runs on, and a sweep
 * worker's first 32 MiB run of the main job faulted in about 95 k of them (1-1.5 s); a
 * 2 MiB page is one fault. Where huge pages cannot be asked for (no koffi binary, no
 * glibc, not Linux, THP off) the memory is ordinary; its contents, and every result of
 * the model, are the same either way.
 */

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** The host's huge page (x86-64 and arm64 with 4 KiB base pages: a PMD maps 2 MiB). */
const HUGE_PAGE = 2 * 1024 * 1024;
/** MADV_HUGEPAGE (include/uapi/asm-generic/mman-common.h). */
const MADV_HUGEPAGE = 14;
/** Bytes of host memory {@link hostChunk} cuts its pieces from at a time. */
export const HOST_SLAB_BYTES = 32 * 1024 * 1024;

interface Advisor {
  /** The address of an ArrayBuffer's bytes. */
  address(buf: ArrayBuffer): bigint;
  /** madvise(2); 0 on success. */
  madvise(addr: bigint, len: number, advice: number): number;
}

/** undefined: not tried yet; null: huge pages cannot be asked for here. */
let advisor: Advisor | null | undefined;

function getAdvisor(): Advisor | null {
  if (advisor !== undefined) return advisor;
  advisor = null;
  if (process.platform !== "linux") return advisor;
  try {
    const thp = readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
    if (thp.includes("[never]")) return advisor;
    // Loaded on first use: a machine that never holds 2 MiB of anything never loads it.
    const koffi = createRequire(import.meta.url)("koffi") as {
      load(name: string): { func(decl: string): (...args: unknown[]) => unknown };
      address(value: unknown): bigint;
    };
    const madvise = koffi
      .load("libc.so.6")
      .func("int madvise(uintptr_t addr, size_t len, int advice)");
    advisor = {
      address: (buf) => koffi.address(buf),
      madvise: (addr, len, advice) => madvise(addr, len, advice) as number,
    };
  } catch {
    // No THP in this kernel, no koffi binary for this platform, or no glibc: ordinary pages.
  }
  return advisor;
}

/**
 * `len` fresh zeroed bytes. From 2 MiB up, the view starts on a huge-page boundary of its
 * buffer's host memory, and the whole huge pages in it are advised as huge.
 */
export function hostBytes(len: number): Uint8Array<ArrayBuffer> {
  const a = len >= HUGE_PAGE ? getAdvisor() : null;
  if (a === null) return new Uint8Array(len);
  // One huge page more, to start the view on a boundary: only touched pages cost memory.
  const buf = new ArrayBuffer(len + HUGE_PAGE);
  const addr = a.address(buf);
  const pad = Number((BigInt(HUGE_PAGE) - (addr % BigInt(HUGE_PAGE))) % BigInt(HUGE_PAGE));
  const whole = Math.floor(len / HUGE_PAGE) * HUGE_PAGE;
  // A refusal (THP off, an old kernel) leaves ordinary pages, which is all it costs.
  a.madvise(addr + BigInt(pad), whole, MADV_HUGEPAGE);
  return new Uint8Array(buf, pad, len);
}

let slab: Uint8Array<ArrayBuffer> | undefined;
let slabUsed = HOST_SLAB_BYTES;

/**
 * `bytes` fresh zeroed bytes (a multiple of 8, at most {@link HOST_SLAB_BYTES}) cut from a
 * shared slab of {@link hostBytes}, so that many small arrays (1 MiB DRAM chunks, 64-128
 * KiB shadow chunks) share huge pages. A piece is never handed out twice; the slab lives
 * as long as any of its pieces.
 */
export function hostChunk(bytes: number): Uint8Array<ArrayBuffer> {
  if (bytes % 8 !== 0 || bytes > HOST_SLAB_BYTES) {
    throw new RangeError(`hostChunk: ${bytes} bytes (a multiple of 8, at most a slab)`);
  }
  // Without huge pages a slab saves nothing, and would keep its memory for any live piece.
  if (getAdvisor() === null) return new Uint8Array(bytes);
  if (slab === undefined || slabUsed + bytes > HOST_SLAB_BYTES) {
    slab = hostBytes(HOST_SLAB_BYTES);
    slabUsed = 0;
  }
  const piece = slab.subarray(slabUsed, slabUsed + bytes);
  slabUsed += bytes;
  return piece;
}
