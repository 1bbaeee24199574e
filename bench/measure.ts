/**
 * What `npm run bench` and `npm run bench:filing` measure the same way: best-of timing,
 * the memcpy baseline, and tracked DMA's rigs (a non-coherent arm64 device reading and
 * writing a 32 MiB streaming mapping through the DMA API, checker on), whose rounds
 * alternate with the baseline's copies.
 *
 * The rigs take the model's classes as an argument so that `bench:filing` can run the
 * same rounds on the build of an older commit beside today's, in one process.
 */

import type { DmaDirection } from "../src/dma/direction.js";
import type { DmaMappingApi } from "../src/dma/mapping.js";
import { hostBytes } from "../src/machine/host-memory.js";
import type { Machine } from "../src/machine/machine.js";

const MiB = 1024 * 1024;

/** Warm-up rounds of tracked DMA, not timed (nor the baseline's copies before them). */
export const DMA_WARM_ROUNDS = 2;
/** Timed rounds of tracked DMA per rig: its figure is the best of them. */
export const DMA_TIMED_ROUNDS = 30;
/** Runs of a copy timed back to back, and of {@link memcpyBackToBackAndInTurn}'s: best of these. */
export const COPY_RUNS = 15;

/** Best (lowest) wall time in ms of `runs` timed calls of `f`, after `warm` untimed ones. `setup` is untimed. */
export function best(runs: number, warm: number, f: () => void, setup?: () => void): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < warm + runs; i++) {
    setup?.();
    const t0 = performance.now();
    f();
    const dt = performance.now() - t0;
    if (i >= warm && dt < min) min = dt;
  }
  return min;
}

/** Fills `buf` with a seeded xorshift pattern (no zero pages, nothing a copy can skip). */
export function fill(buf: Uint8Array, seed: number): void {
  let x = seed | 1;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
}

/**
 * The host's memcpy of a buffer's size, the baseline of every ratio: one copy timed
 * before each timed round of tracked DMA ({@link MemcpyBaseline.sample}), the best of
 * them. Why there: a round streams 32 MiB of DRAM and two 32 MiB host arrays, so the
 * copy, like the round, finds its buffers at most partly in the host's caches, and on a
 * machine shared with other work both are timed in the same stretch of time. A copy
 * timed back to back ({@link MemcpyBaseline.backToBack}) is partly served from the
 * host's last-level cache by the copy before: on the 2-core VM (December 2026) it read
 * 1.16-1.37 times as fast as the same copy between four buffer pairs in turn, each last
 * touched three copies earlier, in twelve runs of `npm run bench:filing`, which prints
 * both.
 * From one process to the next it read 1.2-2.4 ms,
 * steady within each (why, not established), and tracked DMA's ratio to it 0.35-0.70
 * within one hour for the same code; timed between the rounds as here, 0.54-0.64 in the
 * final runs of the session that made this the baseline, where the copy timed back to
 * back gave 0.44-0.51.
 */
export class MemcpyBaseline {
  readonly #a: Uint8Array;
  readonly #b: Uint8Array;
  #bestMs = Number.POSITIVE_INFINITY;

  constructor(readonly size: number) {
    // The source on the host's huge pages where it gives them, as the model's DRAM is,
    // the destination an ordinary array, as a device's buffer is: a round's read. (A copy
    // between two ordinary arrays read 4-8% slower here, the TLB's share.)
    this.#a = hostBytes(size);
    this.#b = new Uint8Array(size);
    fill(this.#a, 3);
    this.#b.set(this.#a); // touch every page of the destination first
  }

  /** Times one copy (kept when `timed`: the round after it is timed too). */
  sample(timed: boolean): void {
    const t0 = performance.now();
    this.#b.set(this.#a);
    const dt = performance.now() - t0;
    if (!timed) return;
    this.#samples++;
    if (dt < this.#bestMs) this.#bestMs = dt;
  }

  /** Timed copies so far: the baseline is the best of them. */
  get samples(): number {
    return this.#samples;
  }
  #samples = 0;

  /** Bytes per second: the best copy sampled. */
  get rate(): number {
    if (!Number.isFinite(this.#bestMs)) throw new Error("bench: memcpy baseline not sampled");
    return this.size / (this.#bestMs / 1e3);
  }

  /** Bytes per second of the same copy timed back to back, best of COPY_RUNS (shown, not compared with). */
  backToBack(): number {
    return this.size / (best(COPY_RUNS, 2, () => this.#b.set(this.#a)) / 1e3);
  }
}

/**
 * The host's copy of `size` bytes timed back to back between one pair of buffers and
 * between four pairs in turn (each pair last touched three copies earlier), best of
 * COPY_RUNS each: what separates a copy partly served from the host's last-level cache
 * from one that is not, on the same memory.
 */
export function memcpyBackToBackAndInTurn(size: number): {
  backToBackMs: number;
  inTurnMs: number;
} {
  const pairs: { a: Uint8Array; b: Uint8Array }[] = [];
  for (let p = 0; p < 4; p++) {
    const a = new Uint8Array(size);
    fill(a, 3 + p);
    const b = new Uint8Array(size);
    b.set(a);
    pairs.push({ a, b });
  }
  const one = pairs[0]!;
  const backToBackMs = best(COPY_RUNS, 2, () => one.b.set(one.a));
  let next = 0;
  const inTurnMs = best(COPY_RUNS, 2, () => {
    const { a, b } = pairs[next]!;
    next = (next + 1) % pairs.length;
    b.set(a);
  });
  return { backToBackMs, inTurnMs };
}

/** Tracked DMA's figure: bytes moved (read and written) per second in the best timed round. */
export interface DmaResult {
  readonly rate: number;
  readonly ms: number;
  readonly size: number;
}

/** One machine's tracked DMA: its rounds one at a time, then the checks and the figure. */
export interface DmaRig {
  /** One round (map, device read, device write, unmap), timed when `timed`. */
  round(timed: boolean): void;
  /** Checks what the rounds did and gives the best timed round's figure. */
  finish(): DmaResult;
}

/** The model's classes a rig runs on (today's, or an older build's: `bench:filing`). */
export interface ModelClasses {
  readonly Machine: typeof Machine;
  readonly DmaMappingApi: typeof DmaMappingApi;
  readonly DMA_BIDIRECTIONAL: DmaDirection;
}

/**
 * A tracked-DMA rig on arm64: each round the CPU dirties the buffer's first 1 MiB, then
 * dma_map_single, a device read and a device write of all of it, dma_unmap_single.
 * `fills` false: the profile without its speculative fills (an older build, which has
 * none, is given true: no override it would not know).
 */
export function dmaRig(model: ModelClasses, size: number, fills: boolean): DmaRig {
  const m = new model.Machine({
    profile: "arm64",
    overrides: fills ? undefined : { speculativeFillRate: 0 },
  });
  const api = new model.DmaMappingApi(m);
  const dir = model.DMA_BIDIRECTIONAL;
  const dev = m.addDevice("dma0", { coherent: false });
  const phys = m.cma.alloc(size / 4096, 256);
  const cpuBytes = 1 * MiB;
  const cpuData = new Uint8Array(cpuBytes);
  fill(cpuData, 11);
  const devOut = new Uint8Array(size);
  fill(devOut, 13);
  const devIn = new Uint8Array(size);
  let rounds = 0;
  let ms = Number.POSITIVE_INFINITY;
  return {
    round(timed) {
      // The CPU prepares the buffer's head: 1 MiB of dirty lines for the map to clean.
      cpuData[0] = rounds++;
      m.cpu.writePhys(phys, cpuData);
      const t0 = performance.now();
      const addr = api.dmaMapSingle(dev, phys, size, dir);
      if (api.dmaMappingError(dev, addr)) throw new Error("bench: dma_map_single failed");
      dev.read(addr, size, devIn);
      dev.write(addr, devOut);
      api.dmaUnmapSingle(dev, addr, size, dir);
      const dt = performance.now() - t0;
      if (timed && dt < ms) ms = dt;
    },
    finish() {
      // The model must have done the right thing: the device saw the CPU's bytes, the CPU
      // sees the device's, and the checker found nothing.
      if (devIn[0] !== cpuData[0] || devIn[cpuBytes - 1] !== cpuData[cpuBytes - 1])
        throw new Error("bench: device read the wrong bytes");
      const back = m.cpu.readPhys(phys + size - 4096, 4096);
      for (let i = 0; i < 4096; i++)
        if (back[i] !== devOut[size - 4096 + i]) throw new Error("bench: CPU read the wrong bytes");
      if (m.violations.count !== 0) throw new Error("bench: DMA run reported violations");
      if (api.swiotlb.activeMappings !== 0 || api.liveMappings !== 0)
        throw new Error("bench: mapping leaked");
      return { rate: (2 * size) / (ms / 1e3), ms, size };
    },
  };
}

/**
 * Runs the rigs' rounds in turn, one copy of the baseline timed before each round, so that
 * all are timed in the same stretch of time; then each rig's checks and figure.
 */
export function alternate(rigs: readonly DmaRig[], baseline: MemcpyBaseline): DmaResult[] {
  for (let i = 0; i < DMA_WARM_ROUNDS + DMA_TIMED_ROUNDS; i++) {
    for (const rig of rigs) {
      baseline.sample(i >= DMA_WARM_ROUNDS);
      rig.round(i >= DMA_WARM_ROUNDS);
    }
  }
  return rigs.map((rig) => rig.finish());
}
