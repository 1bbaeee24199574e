/**
 * Violations: what the checker reports, and the registry of labelled memory regions
 * that lets a report say "buffer cam-frame0 at offset 0x1000" instead of a bare
 * physical address, and name the call that was missing in the caller's own terms.
 */

import type { Ns } from "./clock.js";

/** What went wrong. Coherency kinds come from the machine's shadow state; API kinds from the layers above. */
export type ViolationKind =
  /** The CPU read a cached line older than memory (a device wrote it after the line was cached). */
  | "stale-cpu-read"
  /** A non-coherent device read memory while the CPU cache held newer, dirty data for it. */
  | "stale-device-read"
  /** A dirty CPU line was written back over data a device had written: the device's write is lost. */
  | "lost-device-write"
  /** A device wrote memory under a dirty CPU line: any eviction would destroy the device's data. */
  | "dirty-line-under-dma"
  /**
   * The CPU's writes were discarded before reaching memory: an invalidate dropped dirty
   * lines the CPU wrote inside its access (the end of a DMA_BUF_IOCTL_SYNC bracket on a
   * DMA_FROM_DEVICE mapping, which 32-bit ARM invalidates), or a swiotlb copy back
   * replaced bytes the CPU wrote after its last hand-over to the device.
   */
  | "lost-cpu-write"
  /** The CPU touched a streaming DMA buffer while the device owned it. */
  | "cpu-access-device-owned"
  /**
   * The CPU touched a dma-buf through its mmap while a device job's fence on it had not
   * signalled: it read what was there before the job's write (or wrote under a job still
   * reading it).
   */
  | "cpu-access-before-fence"
  /** A device used a DMA address that no live mapping of it covers (an IOMMU would fault). */
  | "unmapped-device-access"
  /** A device used a mapping against its direction (wrote a DMA_TO_DEVICE buffer, ...). */
  | "dma-direction"
  /** A device was given an address beyond its DMA mask. */
  | "dma-mask-exceeded"
  /** The same memory was used through cached and uncached (or write-combined) aliases. */
  | "attribute-alias"
  /** Misuse of an API (DMA mapping API, dma-buf, V4L2, ...); `api` says which. */
  | "api-misuse"
  /** Resources still held at teardown (mappings, attachments, buffers). */
  | "leak";

export const COHERENCY_KINDS: readonly ViolationKind[] = [
  "stale-cpu-read",
  "stale-device-read",
  "lost-device-write",
  "dirty-line-under-dma",
  "lost-cpu-write",
  "cpu-access-device-owned",
  "cpu-access-before-fence",
  "attribute-alias",
];

export interface Violation {
  /** Order of discovery, from 0. */
  readonly seq: number;
  readonly kind: ViolationKind;
  /** For api-misuse and leak: which interface ("dma-api", "dma-buf", "v4l2", ...). */
  readonly api?: string;
  /** Virtual time of discovery. */
  readonly time: Ns;
  /** Who acted: "cpu" or a device name. */
  readonly agent: string;
  /** Physical address of the first affected byte (or -1 when none applies). */
  readonly phys: number;
  /** Bytes affected (summed over all affected lines). */
  readonly len: number;
  /** Label of the innermost registered region covering `phys` (a buffer or mapping). */
  readonly region?: string;
  /** Offset of `phys` inside that region. */
  readonly offset?: number;
  /** What happened, in one sentence. */
  readonly message: string;
  /** What to do about it: the call that was missing or misused. */
  readonly hint: string;
}

export interface PhysRange {
  readonly phys: number;
  readonly len: number;
}

/** A labelled piece of memory: a buffer, a DMA mapping, a bounce slot. */
export interface Region {
  readonly id: number;
  readonly label: string;
  readonly ranges: readonly PhysRange[];
  /** Hints that replace the checker's generic advice for this region, by kind. */
  readonly hints: Partial<Record<ViolationKind, string>>;
  /**
   * Advice appended to whatever hint wins, by kind: what an outer layer adds (a dma-buf
   * mmap says which DMA_BUF_IOCTL_SYNC does the sync the DMA API layer names).
   */
  readonly notes: Partial<Record<ViolationKind, string>>;
  /**
   * The region names the cause of anything that goes wrong in it, whatever else covers
   * the address: it describes a violation there (label and hint) ahead of more recently
   * registered regions. A cache line a DMA buffer shares with other data is one.
   */
  readonly cause?: boolean;
}

export type ViolationInput = Omit<Violation, "seq" | "region" | "offset" | "hint"> & {
  readonly hint?: string;
};

/**
 * What a hazard model adds to a violation it knows the cause of (a line the CPU filled
 * speculatively during the DMA): a clause for the message, advice put before the hint.
 */
export type ViolationExplainer = (
  v: ViolationInput,
) => { readonly message?: string; readonly hint?: string } | undefined;

/** The violation log plus the region registry it uses to describe addresses. */
export class ViolationLog {
  readonly #list: Violation[] = [];
  readonly #regions = new Map<number, Region>();
  #nextRegion = 1;
  /** Registered regions with Region.cause set. */
  #causes = 0;
  readonly #explainers: ViolationExplainer[] = [];
  /** Called for every new violation (reports, traces, "fail fast" tests). */
  onViolation: ((v: Violation) => void) | undefined;

  get list(): readonly Violation[] {
    return this.#list;
  }

  get count(): number {
    return this.#list.length;
  }

  /** Violations of one kind. */
  ofKind(kind: ViolationKind): Violation[] {
    return this.#list.filter((v) => v.kind === kind);
  }

  /** Registers a labelled region; returns its id for {@link unregister}. */
  register(
    label: string,
    ranges: readonly PhysRange[],
    hints: Region["hints"] = {},
    notes: Region["notes"] = {},
    cause = false,
  ): number {
    const id = this.#nextRegion++;
    this.#regions.set(id, { id, label, ranges, hints, notes, ...(cause ? { cause } : {}) });
    if (cause) this.#causes++;
    return id;
  }

  unregister(id: number): void {
    if (this.#regions.get(id)?.cause === true) this.#causes--;
    this.#regions.delete(id);
  }

  #covers(r: Region, phys: number): boolean {
    return r.ranges.some((x) => phys >= x.phys && phys < x.phys + x.len);
  }

  /** The most recently registered region covering `phys`, with the offset of `phys` in it. */
  describe(phys: number): { region: Region; offset: number } | undefined {
    const regions = [...this.#regions.values()];
    // A region that names the cause (Region.cause) wins over later ones.
    if (this.#causes > 0)
      regions.sort((a, b) => Number(a.cause === true) - Number(b.cause === true));
    for (let i = regions.length - 1; i >= 0; i--) {
      const r = regions[i]!;
      let base = 0;
      for (const range of r.ranges) {
        if (phys >= range.phys && phys < range.phys + range.len) {
          return { region: r, offset: base + (phys - range.phys) };
        }
        base += range.len;
      }
    }
    return undefined;
  }

  /** Adds a hazard model's explanation to every violation it recognises. */
  addExplainer(e: ViolationExplainer): void {
    this.#explainers.push(e);
  }

  /** Records a violation, filling in the region, offset and the best hint available. */
  report(v: ViolationInput, defaultHint = ""): Violation {
    const where = v.phys >= 0 ? this.describe(v.phys) : undefined;
    let hint = where?.region.hints[v.kind] ?? v.hint ?? defaultHint;
    // A region that names the cause speaks alone: another region's note (a udmabuf's
    // first-START quirk, a dma-buf mmap's SYNC advice) would point at a different fix.
    if (v.phys >= 0 && where?.region.cause !== true) {
      for (const r of this.#regions.values()) {
        const note = r.notes[v.kind];
        if (note !== undefined && !hint.includes(note) && this.#covers(r, v.phys)) {
          hint = hint ? `${hint}; ${note}` : note;
        }
      }
    }
    let message = v.message;
    for (const explain of this.#explainers) {
      const x = explain(v);
      if (x?.message !== undefined) message = `${message}; ${x.message}`;
      if (x?.hint !== undefined) hint = hint ? `${x.hint}; ${hint}` : x.hint;
    }
    const full: Violation = {
      ...v,
      message,
      seq: this.#list.length,
      hint,
      ...(where ? { region: where.region.label, offset: where.offset } : {}),
    };
    this.#list.push(full);
    this.onViolation?.(full);
    return full;
  }

  clear(): void {
    this.#list.length = 0;
  }
}

/** One line per violation, for terminals and test failure messages. */
export function formatViolation(v: Violation): string {
  const where =
    v.region !== undefined
      ? `${v.region}+0x${(v.offset ?? 0).toString(16)}`
      : v.phys >= 0
        ? `phys 0x${v.phys.toString(16)}`
        : "-";
  const api = v.api ? `/${v.api}` : "";
  return `[${v.time.toFixed(0)} ns] ${v.kind}${api} by ${v.agent} at ${where} (${v.len} bytes): ${v.message}${v.hint ? ` -- hint: ${v.hint}` : ""}`;
}
