/**
 * Shadow state for the coherency checker: which agent last wrote each line of memory
 * behind the cache's back, and who owns each streaming DMA buffer right now.
 *
 * The cache keeps, per line it holds, the epoch at which it was filled (or last agreed
 * with memory). Memory keeps, per line, the epoch of the last write that did not go
 * through the CPU cache (a device DMA write, an uncached CPU store). A cached line whose
 * fill epoch is older than memory's is stale: reading it returns old bytes, writing it
 * back destroys newer data. Epochs index a log of writers so a report can say who wrote
 * and when. All per-line state is in lazily allocated typed arrays.
 */

import { CHUNK_SHIFT, CHUNK_SIZE, ChunkedU32 } from "./chunked.js";
import type { Ns } from "./clock.js";
import type { PhysRange } from "./violations.js";

/** Who wrote memory behind the CPU cache, for a given epoch. */
export interface WriterRecord {
  readonly agent: string;
  readonly time: Ns;
  /** What the write was ("DMA write", "uncached store", ...). */
  readonly what: string;
}

/** A typed array twice as long as `a`, holding its elements first (the writers' arrays grown). */
function doubled<T extends Int32Array | Float64Array>(a: T): T {
  const b = new (a.constructor as new (length: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

/**
 * The shadow's per-line epochs ({@link CoherencyShadow.memEpoch}), where a write that
 * covers whole chunks of lines (a device's DMA of megabytes) records one epoch per chunk
 * and fills the chunk's entries only when its array is first asked for ({@link chunkOf},
 * {@link set}, a fill of part of it); {@link get} answers from the chunk's epoch.
 * Why: such a write's epochs were a fill of 128 KiB per 2 MiB written (0.06 ms for
 * tracked DMA's 32 MiB, host cache misses every one), and most are overwritten by the
 * next write before anything reads them (the CPU reads back a few lines, the map's clean
 * its dirty head). Reads the same as a {@link ChunkedU32} filled at once.
 */
export class LineEpochs extends ChunkedU32 {
  /** Per chunk: the epoch all its lines hold, not yet in its array (undefined or -1: none). */
  readonly #uniform: number[] = [];
  /** Per chunk with a pending epoch: its array, to fill then (undefined: never allocated). */
  readonly #parked: (Uint32Array | undefined)[] = [];
  /** Chunks with a pending epoch. */
  #pending = 0;

  override fillRange(from: number, to: number, value: number): void {
    // As a Uint32Array stores it (a pending epoch is never negative: -1 means none).
    const v = value >>> 0;
    let i = from;
    while (i < to) {
      const ci = i >>> CHUNK_SHIFT;
      const start = ci * CHUNK_SIZE;
      const end = Math.min(to, start + CHUNK_SIZE);
      if (end - i === CHUNK_SIZE) this.#setWhole(ci, v);
      else if (v !== this.initial || this.chunks[ci] !== undefined || this.#pendingAt(ci))
        this.chunk(ci).fill(v, i - start, end - start);
      i = end;
    }
  }

  override chunkOf(i: number): Uint32Array | undefined {
    const ci = i >>> CHUNK_SHIFT;
    const c = this.chunks[ci];
    if (c !== undefined || this.#pending === 0 || !this.#pendingAt(ci)) return c;
    return this.chunk(ci);
  }

  override get(i: number): number {
    const ci = i >>> CHUNK_SHIFT;
    const c = this.chunks[ci];
    if (c !== undefined) return c[i & (CHUNK_SIZE - 1)]!;
    return this.#pending !== 0 && this.#pendingAt(ci) ? this.#uniform[ci]! : this.initial;
  }

  override release(): void {
    for (let ci = 0; ci < this.#parked.length; ci++) {
      const c = this.#parked[ci];
      if (c !== undefined) this.chunks[ci] = c;
    }
    this.#parked.length = 0;
    this.#uniform.length = 0;
    this.#pending = 0;
    super.release();
  }

  /**
   * The chunk's array, with its pending epoch filled in first, in one fill of its 128 KiB
   * (a chunk from the free list is not cleared to the initial value before).
   */
  protected override chunk(ci: number): Uint32Array {
    const c = this.chunks[ci];
    if (c !== undefined) return c;
    if (!this.#pendingAt(ci)) return super.chunk(ci);
    const v = this.#uniform[ci]!;
    this.#uniform[ci] = -1;
    this.#pending--;
    const parked = this.#parked[ci];
    if (parked === undefined) return this.newChunk(ci, v);
    this.#parked[ci] = undefined;
    this.chunks[ci] = parked;
    parked.fill(v);
    return parked;
  }

  #pendingAt(ci: number): boolean {
    const v = this.#uniform[ci];
    return v !== undefined && v >= 0;
  }

  /** All of chunk `ci` holds `v` from now on. */
  #setWhole(ci: number, v: number): void {
    if (this.#pendingAt(ci)) {
      this.#uniform[ci] = v;
      return;
    }
    const c = this.chunks[ci];
    // A chunk never written reads as the initial value already.
    if (c === undefined && v === this.initial) return;
    this.#parked[ci] = c;
    this.chunks[ci] = undefined;
    this.#uniform[ci] = v;
    this.#pending++;
  }
}

export class CoherencyShadow {
  /** When false the machine moves bytes exactly the same way but checks nothing. */
  enabled = true;
  #epoch = 0;
  /**
   * The writer of each epoch, as numbers: its agent and what it did (indices into
   * {@link #names}) and when. Why not a record per epoch: a GPU writes a frame row by
   * row, an epoch per row, thousands a frame; a record is made only when a report asks.
   */
  #agentOf = new Int32Array(1024);
  #whatOf = new Int32Array(1024);
  #timeOf = new Float64Array(1024);
  /** Agent and write names, each once ("boot", "DMA write", "vivid-cap", ...). */
  readonly #names: string[] = [];
  readonly #nameIndex = new Map<string, number>();
  /** Per RAM line (index relative to the base of RAM): epoch of the last non-cache write. */
  readonly memEpoch = new LineEpochs();

  constructor() {
    this.#record(0, "boot", 0, "initial contents");
  }

  /** The most recent epoch issued (cache fills take this value). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Opens a new write epoch for one transfer or store. */
  beginWrite(agent: string, time: Ns, what: string): number {
    this.#epoch++;
    this.#record(this.#epoch, agent, time, what);
    return this.#epoch;
  }

  writer(epoch: number): WriterRecord {
    if (!(epoch >= 0 && epoch <= this.#epoch && Number.isInteger(epoch)))
      return { agent: "?", time: 0, what: "?" };
    return {
      agent: this.#names[this.#agentOf[epoch]!]!,
      time: this.#timeOf[epoch]!,
      what: this.#names[this.#whatOf[epoch]!]!,
    };
  }

  #record(epoch: number, agent: string, time: Ns, what: string): void {
    if (epoch >= this.#agentOf.length) {
      this.#agentOf = doubled(this.#agentOf);
      this.#whatOf = doubled(this.#whatOf);
      this.#timeOf = doubled(this.#timeOf);
    }
    // (The same writer as the last epoch's, most often: a GPU's row writes.)
    if (agent !== this.#lastAgent) {
      this.#lastAgent = agent;
      this.#lastAgentIndex = this.#name(agent);
    }
    if (what !== this.#lastWhat) {
      this.#lastWhat = what;
      this.#lastWhatIndex = this.#name(what);
    }
    this.#agentOf[epoch] = this.#lastAgentIndex;
    this.#whatOf[epoch] = this.#lastWhatIndex;
    this.#timeOf[epoch] = time;
  }

  #lastAgent: string | undefined;
  #lastAgentIndex = 0;
  #lastWhat: string | undefined;
  #lastWhatIndex = 0;

  #name(s: string): number {
    let i = this.#nameIndex.get(s);
    if (i === undefined) {
      i = this.#names.push(s) - 1;
      this.#nameIndex.set(s, i);
    }
    return i;
  }
}

/**
 * Whether a region's ranges overlap `[phys, end)`. A plain loop: the check runs for every
 * CPU access and device write (closures per call showed in the profiles of pipelines).
 */
function overlaps(r: OwnedRegion, phys: number, end: number): boolean {
  const ranges = r.ranges;
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i]!;
    if (phys < range.phys + range.len && range.phys < end) return true;
  }
  return false;
}

/** Who may touch a streaming mapping right now (Documentation/core-api/dma-api-howto.rst). */
export type StreamingOwner = "device" | "cpu";

export interface OwnedRegion {
  readonly id: number;
  readonly device: string;
  readonly label: string;
  /** Direction name, e.g. "DMA_FROM_DEVICE". */
  readonly direction: string;
  /** True for DMA_TO_DEVICE: the device only reads, so CPU reads do no harm. */
  readonly deviceReadsOnly: boolean;
  readonly ranges: readonly PhysRange[];
  owner: StreamingOwner;
  /** When `owner` last changed (a sequence number shared by all regions). */
  since: number;
  /** The call that gives the buffer back to the CPU, with its arguments. */
  readonly giveBackCall: string;
  /** Whether the device snoops the CPU caches (dev_is_dma_coherent). */
  readonly deviceCoherent?: boolean;
  /**
   * Whether the map itself invalidated the CPU's lines (a DMA_FROM_DEVICE map on 32-bit
   * ARM, or on arm64 with raspberrypi/linux PR 6995): then it hands the pages to the CPU
   * as a sync for the CPU would, for a device that maps only for CPU access.
   */
  readonly mapInvalidated?: boolean;
}

/**
 * Ownership of streaming mappings. Between dma_map_* (or dma_sync_*_for_device) and
 * dma_unmap_* (or dma_sync_*_for_cpu) the buffer belongs to the device and the CPU must
 * not touch it; the DMA API layer keeps this table up to date and the CPU checks it.
 *
 * When several devices map the same pages (a dma-buf with importers), the latest
 * hand-over of those pages decides: cache maintenance works on physical addresses, so a
 * dma_sync_*_for_cpu through any device's mapping gives the CPU a correct view until a
 * later sync for a device. This is how exporters keep one mapping per importer with
 * DMA_ATTR_SKIP_CPU_SYNC and do the CPU-access maintenance through their own
 * (vb2-dma-contig, the DRM GEM helpers).
 */
export class OwnershipTracker {
  readonly #regions = new Map<number, OwnedRegion>();
  /**
   * The regions in the order they were added (the Map's order), and the span of each
   * one's ranges: {@link conflict} runs for every CPU access and every device write
   * (thousands a frame), and most regions' spans miss the access.
   */
  readonly #list: OwnedRegion[] = [];
  readonly #lo: number[] = [];
  readonly #hi: number[] = [];
  /** Live dma_alloc_coherent buffers (consistent memory), by start address. */
  readonly #consistent = new Map<number, number>();
  #next = 1;

  /**
   * dma_alloc_coherent(): `[phys, phys+len)` is consistent memory from now on. The CPU
   * and a coherent device may then touch it at any time ("a write by either the device
   * or the processor can immediately be read by the processor or device without having
   * to worry about caching effects", Documentation/core-api/dma-api.rst); this is why
   * vb2-dma-contig's begin/end_cpu_access do nothing for coherent buffers.
   */
  addConsistent(phys: number, len: number): void {
    this.#consistent.set(phys, len);
  }

  /** dma_free_coherent(). */
  removeConsistent(phys: number): void {
    this.#consistent.delete(phys);
  }

  /** Devices that never do DMA: their mappings exist only to drive CPU-access maintenance. */
  readonly #cpuAccessOnly = new Set<string>();

  /**
   * Declares that `device` never starts DMA: its streaming mappings exist only so the
   * DMA API does the cache maintenance for CPU access (udmabuf's misc device, whose
   * first begin_cpu_access maps the pages). On a coherent device such a map gives the
   * CPU the pages, as dma_sync_*_for_cpu would; on a non-coherent one it does not
   * (arm64's map only cleans), and Linux 6.12's udmabuf really reads stale lines there.
   */
  declareCpuAccessOnly(device: string): void {
    this.#cpuAccessOnly.add(device);
  }

  #inConsistent(phys: number, len: number): boolean {
    for (const [p, l] of this.#consistent) if (phys >= p && phys + len <= p + l) return true;
    return false;
  }

  #seq = 0;

  add(r: Omit<OwnedRegion, "id" | "owner" | "since">): OwnedRegion {
    // A coherent device that maps only for CPU access hands the pages to the CPU by
    // mapping them: on a coherent device that map is all the maintenance there is.
    const forCpu =
      (r.deviceCoherent === true || r.mapInvalidated === true) && this.#cpuAccessOnly.has(r.device);
    // Field by field, in the order a spread of `r` gave: `{ ...r, id, ... }` cost V8 some
    // microseconds per map (a spread followed by more fields takes its slow path).
    const region: OwnedRegion = {
      device: r.device,
      label: r.label,
      direction: r.direction,
      deviceReadsOnly: r.deviceReadsOnly,
      ranges: r.ranges,
      giveBackCall: r.giveBackCall,
      deviceCoherent: r.deviceCoherent,
      mapInvalidated: r.mapInvalidated,
      id: this.#next++,
      owner: forCpu ? "cpu" : "device",
      since: ++this.#seq,
    };
    this.#regions.set(region.id, region);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const range of region.ranges) {
      if (range.phys < lo) lo = range.phys;
      if (range.phys + range.len > hi) hi = range.phys + range.len;
    }
    this.#list.push(region);
    this.#lo.push(lo);
    this.#hi.push(hi);
    return region;
  }

  /** A hand-over: dma_sync_*_for_cpu / _for_device (or unmap). */
  setOwner(region: OwnedRegion, owner: StreamingOwner): void {
    region.owner = owner;
    region.since = ++this.#seq;
  }

  remove(id: number): void {
    const r = this.#regions.get(id);
    if (r === undefined) return;
    this.#regions.delete(id);
    const i = this.#list.indexOf(r);
    this.#list.splice(i, 1);
    this.#lo.splice(i, 1);
    this.#hi.splice(i, 1);
  }

  get size(): number {
    return this.#regions.size;
  }

  /** The first device-owned region that a CPU access to `[phys, phys+len)` conflicts with. */
  conflict(phys: number, len: number, write: boolean): OwnedRegion | undefined {
    const list = this.#list;
    const n = list.length;
    if (n === 0) return undefined;
    const end = phys + len;
    const lo = this.#lo;
    const hi = this.#hi;
    // (A region whose ranges' span misses the access has no range that overlaps it.)
    let handedToCpu = 0;
    for (let i = 0; i < n; i++) {
      if (phys >= hi[i]! || lo[i]! >= end) continue;
      const r = list[i]!;
      if (r.owner === "cpu" && r.since > handedToCpu && overlaps(r, phys, end))
        handedToCpu = r.since;
    }
    // A coherent device's streaming mapping of consistent memory (an importer mapping a
    // dma_alloc_coherent buffer with DMA_ATTR_SKIP_CPU_SYNC) never needs a hand-over.
    let consistent: boolean | undefined;
    for (let i = 0; i < n; i++) {
      if (phys >= hi[i]! || lo[i]! >= end) continue;
      const r = list[i]!;
      if (r.owner !== "device" || r.since < handedToCpu) continue;
      if (!write && r.deviceReadsOnly) continue;
      if (r.deviceCoherent === true) {
        consistent ??= this.#consistent.size > 0 && this.#inConsistent(phys, len);
        if (consistent) continue;
      }
      if (overlaps(r, phys, end)) return r;
    }
    return undefined;
  }
}
