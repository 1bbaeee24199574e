/**
 * DMA masters: devices that read and write memory on their own, asynchronously, on the
 * virtual clock.
 *
 * A device addresses memory with DMA addresses. Without an IOMMU a DMA address is the
 * physical address less a bus offset, limited by the device's DMA mask (address lines
 * beyond the mask do not exist: the address wraps). With an IOMMU it is an I/O virtual
 * address translated page by page. The DMA API layer tells the device which DMA ranges
 * are mapped for it and in which direction ("windows"); an access outside them is
 * reported, because on real hardware it corrupts memory or faults.
 */

import { performance } from "node:perf_hooks";
import type { SystemBus } from "./bus.js";
import type { Ns } from "./clock.js";
import type { CostLedger } from "./cost.js";
import type { IommuDomain } from "./iommu.js";
import { MEMORY_CHUNK_SHIFT } from "./memory.js";
import { type KnownRows, PhysRuns, type RowContent, type RowStructure } from "./row-notes.js";
import type { TraceRecorder } from "./trace.js";

export interface DeviceConfig {
  readonly name: string;
  /** Snoops the CPU caches (dma-coherent in the device tree; PCIe on x86). */
  readonly coherent: boolean;
  /** Address bits the device can drive (dma_set_mask(DMA_BIT_MASK(n))). */
  readonly dmaBits: number;
  /** Transfer bandwidth, bytes per ns (= GB/s). */
  readonly bandwidthBytesPerNs: number;
  /** Fixed cost of starting one transfer (descriptor fetch, doorbell). */
  readonly setupNs: number;
  /** Whether the device sits behind an IOMMU. */
  readonly iommu: boolean;
  /** phys = dma + dmaOffset when there is no IOMMU (dma-ranges in the device tree). */
  readonly dmaOffset: number;
}

export type WindowDirection = "to-device" | "from-device" | "bidirectional";

/** A DMA range the device may use, and how (set by the DMA API layer). */
export interface DmaWindow {
  readonly dmaAddr: number;
  readonly len: number;
  readonly direction: WindowDirection;
  readonly label: string;
}

/** A piece of a scatter-gather transfer, in the device's address space. */
export interface DmaSegment {
  readonly dmaAddr: number;
  readonly len: number;
}

/** No rows known: what a noted write that failed leaves. */
const NO_ROWS: RowStructure = { rowBytes: 1, same: new Uint8Array(0) };

/** DRAM's chunk: the longest run {@link DmaDevice.readSegmentsInPlace} hands out as one piece. */
const MEMORY_CHUNK = 1 << MEMORY_CHUNK_SHIFT;

export class DmaDevice {
  readonly name: string;
  readonly coherent: boolean;
  /** DMA_BIT_MASK(dmaBits). */
  readonly dmaMask: number;
  /** The device's own address space, when behind an IOMMU. */
  iommu: IommuDomain | undefined;
  /**
   * The windows, in the order they were added, and their ids: an array, not a Map, since
   * every access walks them (thousands a frame) and a Map's iterator is an object a walk.
   */
  readonly #windows: DmaWindow[] = [];
  readonly #windowIds: number[] = [];
  #nextWindow = 1;
  /** When the device's queue drains. */
  busyUntil: Ns = 0;
  /** Bytes moved by DMA, read and written. */
  bytesRead = 0;
  bytesWritten = 0;
  /**
   * The part of {@link bytesRead} read by {@link rereadSegments}: checked and counted as
   * DMA, but no byte copied (the bench tells moved bytes from re-read ones with it).
   */
  bytesReread = 0;
  /**
   * The part of {@link bytesRead} read by {@link readSegmentsInPlace}: checked, counted
   * and handed to the reader where the bytes lie in DRAM, without a copy.
   */
  bytesReadInPlace = 0;
  /** Accesses that faulted (an IOMMU fault: a read then returns zeros). */
  faults = 0;
  /**
   * Whether to time this device's transfers in host wall time (`npm run bench` asks, for
   * the rate of device DMA inside a pipeline); off otherwise, since reading the host's
   * clock per transfer is not free. Nothing the model computes depends on it.
   */
  timeTransfers = false;
  /**
   * Host wall-clock milliseconds spent inside {@link read}, {@link write} and
   * {@link readSegmentsInPlace} (less its reader's visits) while {@link timeTransfers}
   * is on: everything a transfer does (translation, window checks, the bus's checks and
   * snoops, speculative fills, the coherency shadow, the copy). The writes of one
   * {@link writeRows} (a frame's rows, thousands) are timed as one, its row-note
   * bookkeeping with them: two clock reads per row cost about 0.1-0.2 us, a few tenths
   * of a millisecond of a 4K frame's figure.
   */
  transferMs = 0;
  /** The same for {@link rereadSegments} (checks and counters, no copy). */
  rereadMs = 0;
  /** Whether a {@link writeRows} being timed as a whole is running (its transfers are not timed apart). */
  #batched = false;
  /** The pieces {@link write} lands on while {@link writeRows} notes them. */
  #noting: PhysRuns | undefined;
  /** Bytes asked of {@link write} and bus writes made while noting. */
  #notedAsked = 0;
  #notedPieces = 0;
  /** A reader's pieces, for {@link knownRows}. */
  readonly #readerRuns = new PhysRuns();
  /**
   * While a {@link writeRows} rewrites a frame over another of the same key: the stream's
   * pieces, and from which byte of it to its end DRAM already holds what is written.
   */
  readonly #heldRuns = new PhysRuns();
  #heldFrom = 0;
  #heldSeq0 = -1;

  constructor(
    readonly config: DeviceConfig,
    readonly bus: SystemBus,
    readonly costs: CostLedger,
    readonly trace: TraceRecorder,
  ) {
    this.name = config.name;
    this.coherent = config.coherent;
    this.dmaMask = config.dmaBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** config.dmaBits - 1;
  }

  // ---------------------------------------------------------------------------------
  // Windows (maintained by the DMA API layer)

  addWindow(w: DmaWindow): number {
    const id = this.#nextWindow++;
    this.#windows.push(w);
    this.#windowIds.push(id);
    return id;
  }

  removeWindow(id: number): void {
    const i = this.#windowIds.indexOf(id);
    if (i < 0) return;
    this.#windows.splice(i, 1);
    this.#windowIds.splice(i, 1);
  }

  get windowCount(): number {
    return this.#windows.length;
  }

  // ---------------------------------------------------------------------------------
  // Bus accesses, performed now

  /** Reads `len` bytes at DMA address `dmaAddr` into `dst[dstOff..]` (a new array if omitted). */
  read(
    dmaAddr: number,
    len: number,
    dst: Uint8Array = new Uint8Array(len),
    dstOff = 0,
  ): Uint8Array {
    const timed = this.timeTransfers && !this.#batched;
    const t0 = timed ? performance.now() : 0;
    if (this.iommu !== undefined)
      this.#translate(
        dmaAddr,
        len,
        false,
        (phys, n, off) => this.bus.read(this, phys, n, dst, dstOff + off),
        () => dst.fill(0, dstOff, dstOff + len),
      );
    else if (len > 0) this.bus.read(this, this.#direct(dmaAddr, len, false), len, dst, dstOff);
    this.bytesRead += len;
    if (timed) this.transferMs += performance.now() - t0;
    return dst;
  }

  /** Writes `len` bytes from `src[srcOff..]` to DMA address `dmaAddr`. */
  write(dmaAddr: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    const timed = this.timeTransfers && !this.#batched;
    const t0 = timed ? performance.now() : 0;
    const epoch = this.bus.shadow.beginWrite(this.name, this.bus.clock.now, "DMA write");
    if (this.iommu !== undefined)
      this.#translate(dmaAddr, len, true, (phys, n, off) =>
        this.#writePiece(phys, n, src, srcOff + off, off, epoch),
      );
    else if (len > 0)
      this.#writePiece(this.#direct(dmaAddr, len, true), len, src, srcOff, 0, epoch);
    if (this.#noting !== undefined && len > 0) this.#notedAsked += len;
    this.bytesWritten += len;
    if (timed) this.transferMs += performance.now() - t0;
  }

  /**
   * One piece of a {@link write}: `n` bytes from `src[from..]` to `phys`, the piece at
   * offset `off` of the write.
   */
  #writePiece(
    phys: number,
    n: number,
    src: Uint8Array,
    from: number,
    off: number,
    epoch: number,
  ): void {
    const noting = this.#noting;
    if (noting === undefined) {
      this.bus.write(this, phys, src, from, n, epoch);
      return;
    }
    // The piece's tail DRAM holds already (a frame over another of the same key),
    // where the piece lands where the stream was checked to lie.
    let held = 0;
    if (this.#heldSeq0 >= 0) {
      const at = this.#notedAsked + off;
      const runs = this.#heldRuns;
      if (at + n <= runs.bytes && runs.holds(at, n, phys))
        held = Math.min(n, Math.max(0, at + n - this.#heldFrom));
    }
    this.bus.write(this, phys, src, from, n, epoch, held, this.#heldSeq0 + this.#notedPieces);
    noting.add(phys, n);
    this.#notedPieces++;
  }

  /** Reads a scatter-gather list into one contiguous array. */
  readSegments(segs: readonly DmaSegment[], dst?: Uint8Array): Uint8Array {
    const total = segs.reduce((n, s) => n + s.len, 0);
    const out = dst ?? new Uint8Array(total);
    let off = 0;
    for (const s of segs) {
      this.read(s.dmaAddr, s.len, out, off);
      off += s.len;
    }
    return out;
  }

  /**
   * The reads of {@link readSegments} — every translation, window and mask check, the
   * bus's checks and observer, the byte counters — without copying the bytes: for a
   * reader that already holds them because memory is unchanged since it last read the
   * same segments (a display scanning out the same frame again). A non-coherent master
   * without an IOMMU only: a coherent one also sees the CPU's dirty lines, and an IOMMU
   * read can fault and return zeros, so for those the bytes are not known beforehand.
   */
  rereadSegments(segs: readonly DmaSegment[]): void {
    if (this.coherent || this.iommu !== undefined)
      throw new Error(`${this.name}: rereadSegments needs a non-coherent master without an IOMMU`);
    const t0 = this.timeTransfers ? performance.now() : 0;
    for (const s of segs) {
      if (s.len > 0)
        this.bus.read(this, this.#direct(s.dmaAddr, s.len, false), s.len, undefined, 0);
      this.bytesRead += s.len;
      this.bytesReread += s.len;
    }
    if (this.timeTransfers) {
      const ms = performance.now() - t0;
      this.rereadMs += ms;
      // Not a transfer's time, also inside a writeRows timed as a whole.
      if (this.#batched) this.transferMs -= ms;
    }
  }

  /**
   * {@link readSegments} with the bytes used where they lie in DRAM instead of copied:
   * the same reads segment by segment (every translation, window and mask check, the
   * bus's checks and observer, the byte counters), then `visit(bytes, from, len, at)`
   * for each piece in order: the piece is `bytes[from..from+len)`, read-only host bytes
   * of memory (a piece per 1 MiB chunk a segment spans; `bytes` is the whole chunk,
   * {@link PhysicalMemory.chunkView}), and `at` its offset in the array readSegments
   * would have filled. For a reader that hashes or converts the bytes at once (a
   * display's CRC, a GPU job's source rows); the bytes are valid until memory is next
   * written. A non-coherent master without an IOMMU only (a coherent read also takes the
   * CPU's dirty lines, and an IOMMU fault returns zeros): for others it does nothing and
   * returns false, and the caller copies with readSegments.
   */
  readSegmentsInPlace(
    segs: readonly DmaSegment[],
    visit: (bytes: Uint8Array, from: number, len: number, at: number) => void,
  ): boolean {
    if (this.coherent || this.iommu !== undefined) return false;
    const memory = this.bus.memory;
    // The reads first, then the visits over what they read: the reads write no memory,
    // so the bytes are the same, and the transfer is timed without the reader's work
    // on the bytes by two clock reads, not two per piece (thousands a frame).
    const nested = this.#inPlaceDepth++ > 0;
    let pieces = nested ? new Float64Array(64) : this.#inPlacePieces;
    let np = 0;
    const timed = this.timeTransfers && !this.#batched;
    const t0 = timed ? performance.now() : 0;
    try {
      let at = 0;
      for (const s of segs) {
        if (s.len > 0) {
          const phys = this.#direct(s.dmaAddr, s.len, false);
          this.bus.read(this, phys, s.len, undefined, 0);
          for (let done = 0; done < s.len; ) {
            const p = phys + done;
            const co = (p - memory.base) % MEMORY_CHUNK;
            const k = Math.min(s.len - done, MEMORY_CHUNK - co);
            if (4 * np + 4 > pieces.length) {
              const grown = new Float64Array(pieces.length * 2);
              grown.set(pieces);
              pieces = grown;
            }
            pieces[4 * np] = p;
            pieces[4 * np + 1] = k;
            pieces[4 * np + 2] = at + done;
            pieces[4 * np + 3] = co;
            np++;
            done += k;
          }
        }
        this.bytesRead += s.len;
        this.bytesReadInPlace += s.len;
        at += s.len;
      }
    } finally {
      if (timed) this.transferMs += performance.now() - t0;
      if (!nested) this.#inPlacePieces = pieces;
      // Inside a writeRows timed as a whole, the reader's visits are taken out of it.
      const v0 = this.timeTransfers && this.#batched ? performance.now() : -1;
      // What was read is visited even when a later read threw, as when each piece was
      // visited right after its read.
      try {
        for (let i = 0; i < np; i++) {
          const k = pieces[4 * i + 1]!;
          visit(memory.chunkView(pieces[4 * i]!, k)!, pieces[4 * i + 3]!, k, pieces[4 * i + 2]!);
        }
      } finally {
        this.#inPlaceDepth--;
        if (v0 >= 0) this.transferMs -= performance.now() - v0;
      }
    }
    return true;
  }

  /** {@link readSegmentsInPlace}'s pieces read (address, length, offset, offset in chunk), reused. */
  #inPlacePieces = new Float64Array(4 * 1024);
  #inPlaceDepth = 0;

  /**
   * Runs `writes` (this device's {@link write}s and {@link writeSegments}: one frame's
   * DMA) and tells DRAM which rows of what they wrote equal the row above, as the
   * source's own structure knows them (`rows`: the stream of everything written, in
   * order, as packed rows). A later reader of exactly those bytes as rows of that
   * length learns it from {@link knownSameRows} without comparing them. The writes are
   * the same as without the note (every check, counter and observer); the note is kept
   * only if they landed whole, without overlap, with nothing else writing memory
   * meanwhile (src/machine/row-notes.ts). With `rows.content` and the `stream` the
   * writes address, when DRAM's note of exactly that stream names another frame of the
   * same key, the rows the two frames share are not copied: DRAM holds them already
   * (from the end of the last page written since that note on: a CPU that changed a
   * frame's top rows in place leaves the rows below them held).
   * Every write, check and observer is the same; a piece whose bytes something else
   * wrote in the meantime (a speculative fill's eviction) is copied whole.
   */
  writeRows(rows: RowStructure, writes: () => void, stream?: readonly DmaSegment[]): void {
    if (!this.timeTransfers || this.#batched) {
      this.#writeRows(rows, writes, stream);
      return;
    }
    const t0 = performance.now();
    this.#batched = true;
    try {
      this.#writeRows(rows, writes, stream);
    } finally {
      this.#batched = false;
      this.transferMs += performance.now() - t0;
    }
  }

  #writeRows(rows: RowStructure, writes: () => void, stream?: readonly DmaSegment[]): void {
    const notes = this.bus.rowNotes;
    const seq0 = this.bus.memory.writeSeq;
    // Another frame of the same key over exactly these bytes: the rows below both
    // frames' varying ones are in DRAM already (the writes are the same, without copies).
    // Only the part of the stream no page of which was written since the note: a CPU
    // that stamped a frame's top rows in place leaves the rest as the last frame's.
    const c = rows.content;
    let had: { readonly content: RowContent; readonly from: number } | undefined;
    if (c !== undefined && stream !== undefined && this.#streamRuns(stream))
      had = notes.unchangedFrom(this.#readerRuns, rows.rowBytes);
    if (c !== undefined && had !== undefined && had.content.key === c.key) {
      this.#heldRuns.copyFrom(this.#readerRuns);
      this.#heldFrom = Math.max(had.from, Math.max(had.content.rows, c.rows) * rows.rowBytes);
      this.#heldSeq0 = seq0;
    }
    this.#noting = notes.begin();
    this.#notedAsked = 0;
    this.#notedPieces = 0;
    let ok = false;
    try {
      writes();
      ok = true;
    } finally {
      this.#noting = undefined;
      this.#heldSeq0 = -1;
      // A write that threw leaves no note (an empty structure keeps none).
      notes.end(ok ? rows : NO_ROWS, seq0, this.#notedAsked, this.#notedPieces);
    }
  }

  /**
   * Which rows of `rowBytes` bytes of the stream `segs` addresses DRAM is known to hold
   * equal to the row above (`same[y] !== 0`), by the note a {@link writeRows} of
   * exactly these bytes left when none of them was written since; undefined when
   * nothing is known. What this device's read would see: a non-coherent master without
   * an IOMMU, within its DMA mask, only (a coherent read also takes the CPU's dirty
   * lines, and an IOMMU read can fault). Valid until memory is next written.
   */
  knownSameRows(segs: readonly DmaSegment[], rowBytes: number): Uint8Array | undefined {
    return this.knownRows(segs, rowBytes)?.same;
  }

  /**
   * {@link knownSameRows}, and what the noted stream is when its producer said
   * (`content`: the stream `segs` addresses is its start, byte for byte).
   */
  knownRows(segs: readonly DmaSegment[], rowBytes: number): KnownRows | undefined {
    if (!this.#streamRuns(segs)) return undefined;
    return this.bus.rowNotes.known(this.#readerRuns, rowBytes);
  }

  /**
   * The physical pieces of the stream `segs` addresses, into `#readerRuns`; false when
   * this device's read of them is not DRAM's bytes alone (see {@link knownRows}).
   */
  #streamRuns(segs: readonly DmaSegment[]): boolean {
    if (this.coherent || this.iommu !== undefined) return false;
    const runs = this.#readerRuns;
    runs.reset();
    for (const s of segs) {
      if (s.len <= 0) continue;
      if (s.dmaAddr + s.len - 1 > this.dmaMask) return false;
      runs.add(s.dmaAddr + this.config.dmaOffset, s.len);
    }
    return true;
  }

  /** Writes one contiguous array across a scatter-gather list. */
  writeSegments(segs: readonly DmaSegment[], src: Uint8Array): void {
    let off = 0;
    for (const s of segs) {
      if (off >= src.length) break;
      const n = Math.min(s.len, src.length - off);
      this.write(s.dmaAddr, src, off, n);
      off += n;
    }
  }

  // ---------------------------------------------------------------------------------
  // Timed work

  /** How long moving `bytes` takes on this device. */
  transferTime(bytes: number): Ns {
    return this.config.setupNs + bytes / this.config.bandwidthBytesPerNs;
  }

  /**
   * Queues a job that moves `bytes`: it starts when the device is free, occupies it for
   * {@link transferTime}, and at its end `work()` performs the accesses, then `done()`
   * runs. Returns the completion time.
   */
  submit(label: string, bytes: number, work: () => void, done?: () => void): Ns {
    const clock = this.bus.clock;
    const start = Math.max(clock.now, this.busyUntil);
    const dur = this.transferTime(bytes);
    const end = start + dur;
    this.busyUntil = end;
    clock.schedule(end, `${this.name}: ${label}`, () => {
      work();
      this.costs.charge("dma", dur, 1, bytes);
      this.trace.span(this.name, "dma", label, start, dur, { bytes });
      done?.();
    });
    return end;
  }

  // ---------------------------------------------------------------------------------

  /**
   * An access through the device's IOMMU (its callers check there is one; without one,
   * they resolve the address directly: #direct): `visit` per physical piece, or the
   * fault reported and `onFault` called.
   */
  #translate(
    dmaAddr: number,
    len: number,
    write: boolean,
    visit: (phys: number, len: number, off: number) => void,
    onFault?: () => void,
  ): void {
    if (len <= 0) return;
    const fault = this.iommu!.translate(dmaAddr, len, write, visit);
    if (fault !== undefined) {
      this.faults++;
      onFault?.();
      this.bus.log.report(
        {
          kind: "unmapped-device-access",
          time: this.bus.clock.now,
          agent: this.name,
          phys: -1,
          len,
          message: `IOMMU fault: ${this.name} ${write ? "wrote" : "read"} IOVA 0x${fault.iova.toString(16)} (${fault.reason === "unmapped" ? "not mapped" : `mapped without ${write ? "write" : "read"} permission`})`,
        },
        "map the buffer for this device (dma_map_*, dma_buf_map_attachment) before starting DMA, and keep it mapped until the DMA completes",
      );
    }
  }

  /**
   * Without an IOMMU: the physical address DMA address `dmaAddr` reaches (wrapped at the
   * DMA mask, which is reported) after the window check of the access.
   */
  #direct(dmaAddr: number, len: number, write: boolean): number {
    let addr = dmaAddr;
    if (dmaAddr + len - 1 > this.dmaMask) {
      addr = dmaAddr % (this.dmaMask + 1);
      this.bus.log.report(
        {
          kind: "dma-mask-exceeded",
          time: this.bus.clock.now,
          agent: this.name,
          phys: -1,
          len,
          message: `${this.name} was given DMA address 0x${dmaAddr.toString(16)} beyond its ${this.config.dmaBits}-bit mask; the access wrapped to 0x${addr.toString(16)}`,
        },
        "map through the DMA API so that unreachable memory is bounced (swiotlb) or remapped (IOMMU); never hand a device a physical address directly",
      );
    }
    this.#checkWindow(addr, len, write);
    return addr + this.config.dmaOffset;
  }

  #checkWindow(addr: number, len: number, write: boolean): void {
    const end = addr + len;
    let covered = false;
    const windows = this.#windows;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      if (addr >= w.dmaAddr && end <= w.dmaAddr + w.len) {
        covered = true;
        const allowed = write ? w.direction !== "to-device" : w.direction !== "from-device";
        if (allowed) return;
      }
    }
    const phys = addr + this.config.dmaOffset;
    this.bus.log.report(
      covered
        ? {
            kind: "dma-direction",
            time: this.bus.clock.now,
            agent: this.name,
            phys,
            len,
            message: `${this.name} ${write ? "wrote to a buffer mapped DMA_TO_DEVICE" : "read from a buffer mapped DMA_FROM_DEVICE"}`,
          }
        : {
            kind: "unmapped-device-access",
            time: this.bus.clock.now,
            agent: this.name,
            phys,
            len,
            message: `${this.name} ${write ? "wrote" : "read"} DMA address 0x${addr.toString(16)}+${len} that is not mapped for it`,
          },
      covered
        ? "map the buffer with the direction the device really uses (DMA_BIDIRECTIONAL if it both reads and writes)"
        : "map the buffer for this device (dma_map_*, dma_buf_map_attachment) before starting DMA, and keep it mapped until the DMA completes",
    );
  }
}
