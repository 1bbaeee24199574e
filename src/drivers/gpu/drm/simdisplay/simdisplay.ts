/**
 * simdisplay: a KMS display controller with one CRTC, one primary plane, one encoder
 * and one virtual connector with one mode (default 640x480@60), on /dev/dri/cardN
 * (card2 when probed after vgem and simgpu; a primary node only, no render node: a
 * second display is the next card), modelled on the drm_gem_dma-based SoC
 * display drivers and vkms:
 *
 * - Buffers are drm_gem_dma objects: contiguous from CMA, write-combined for the CPU
 *   on non-coherent machines; an imported dma-buf must be contiguous for the device
 *   (EINVAL otherwise, unless the device sits behind an IOMMU).
 * - While the CRTC is on, a vblank comes every 1/refreshHz of virtual time. At each
 *   one a pending page flip whose framebuffer's implicit write fences have all
 *   signalled takes effect and its DRM_EVENT_FLIP_COMPLETE goes out (with the vblank
 *   sequence and time: drm_gem_plane_helper_prepare_fb + drm_crtc_send_vblank_event),
 *   then the visible lines of the current framebuffer are read by DMA through the
 *   device's mapping of it, and with a CRC source set the CRC-32 of those bytes
 *   (width * cpp per line, never the pitch padding) becomes a crc/data entry for that
 *   frame. A frame that takes longer to read than a refresh period (4K on a slow
 *   device) makes the vblanks during its read start no scanout of their own: those
 *   frames have no entry, so crc/data's frame numbers have gaps (counted in
 *   `underruns`).
 * - Vblank interrupts are only simulated while something observes them (a flip is
 *   pending or crc/data is open), so a CRTC left on does not keep the virtual clock
 *   busy for ever; the sequence numbers still count every period since the CRTC was
 *   enabled, as the hardware counter would.
 */

import type { DmaFence } from "../../../../dma-buf/dma-fence.js";
import { DMA_RESV_USAGE_WRITE } from "../../../../dma-buf/dma-resv.js";
import { KernelError } from "../../../../errno.js";
import { SIZEOF_DRM_EVENT_VBLANK } from "../../../../include/uapi/drm.js";
import {
  DRM_FORMAT_ARGB8888,
  DRM_FORMAT_XRGB8888,
  DRM_MODE_CONNECTOR_VIRTUAL,
  DRM_MODE_ENCODER_VIRTUAL,
  DRM_MODE_FLAG_NHSYNC,
  DRM_MODE_FLAG_NVSYNC,
  DRM_MODE_TYPE_DRIVER,
  DRM_MODE_TYPE_PREFERRED,
  type DrmModeInfo,
} from "../../../../include/uapi/drm-mode.js";
import { Crc32RowHasher, crc32Rows } from "../../../../lib/crc32.js";
import { RowGather } from "../../../../lib/row-gather.js";
import { DmaRowLists } from "../../../../lib/row-segments.js";
import { dmaReadScratch } from "../../../../lib/scratch.js";
import type { ClockEvent, Ns } from "../../../../machine/clock.js";
import type { DeviceConfig, DmaDevice, DmaSegment } from "../../../../machine/device.js";
import { type DriverHost, driverDeviceName } from "../../../host.js";
import { type DrmCrcSourceFuncs, DrmCrtcCrc } from "../drm-crc.js";
import {
  DRIVER_ATOMIC,
  DRIVER_GEM,
  DRIVER_MODESET,
  DrmDevice,
  type DrmDriver,
} from "../drm-device.js";
import { drmGemHandleCreate } from "../drm-gem.js";
import { drmGemDmaCreate, drmGemDmaPrimeImportSgTable, drmGemDmaSegments } from "../drm-gem-dma.js";
import {
  DrmConnector,
  DrmCrtc,
  type DrmCrtcFuncs,
  DrmEncoder,
  type DrmFramebuffer,
  DrmModeConfig,
  type DrmPendingVblankEvent,
  DrmPlane,
  drmSendVblankEvent,
} from "../drm-mode.js";

export interface SimDisplayOptions {
  readonly width?: number;
  readonly height?: number;
  readonly refreshHz?: number;
  readonly device?: Partial<Omit<DeviceConfig, "name">>;
  /** The DMA master's name: default "simdisplay", then "simdisplay-1"... */
  readonly name?: string;
}

/** The mode for a size: VESA 640x480@60 timings for the default, simple blanking otherwise. */
export function simdisplayMode(width: number, height: number, refreshHz: number): DrmModeInfo {
  if (width === 640 && height === 480 && refreshHz === 60) {
    return {
      clock: 25175,
      hdisplay: 640,
      hsyncStart: 656,
      hsyncEnd: 752,
      htotal: 800,
      hskew: 0,
      vdisplay: 480,
      vsyncStart: 490,
      vsyncEnd: 492,
      vtotal: 525,
      vscan: 0,
      vrefresh: 60,
      flags: DRM_MODE_FLAG_NHSYNC | DRM_MODE_FLAG_NVSYNC,
      type: DRM_MODE_TYPE_PREFERRED | DRM_MODE_TYPE_DRIVER,
      name: "640x480",
    };
  }
  const htotal = width + 160;
  const vtotal = height + 45;
  return {
    clock: Math.max(1, Math.round((htotal * vtotal * refreshHz) / 1000)),
    hdisplay: width,
    hsyncStart: width + 16,
    hsyncEnd: width + 112,
    htotal,
    hskew: 0,
    vdisplay: height,
    vsyncStart: height + 10,
    vsyncEnd: height + 12,
    vtotal,
    vscan: 0,
    vrefresh: refreshHz,
    flags: DRM_MODE_FLAG_NHSYNC | DRM_MODE_FLAG_NVSYNC,
    type: DRM_MODE_TYPE_PREFERRED | DRM_MODE_TYPE_DRIVER,
    name: `${width}x${height}`,
  };
}

interface PendingFlip {
  readonly fb: DrmFramebuffer;
  /** The fb's implicit write fences, taken at the flip (prepare_fb). */
  readonly fences: DmaFence[];
  readonly event: DrmPendingVblankEvent | null;
}

/** One frame the display read. */
export interface ScanoutRecord {
  readonly sequence: number;
  readonly time: Ns;
  readonly fbId: number;
  readonly crc: number;
}

/** mode_config.max_width / max_height: the largest framebuffer simdisplay scans out. */
export const SIMDISPLAY_MAX_WIDTH = 4096;
export const SIMDISPLAY_MAX_HEIGHT = 4096;

/** The probed display controller. */
export class SimDisplay implements DrmCrtcFuncs, DrmCrcSourceFuncs {
  readonly drm: DrmDevice;
  readonly dev: DmaDevice;
  readonly mode: DrmModeInfo;
  readonly config: DrmModeConfig;
  readonly crtc: DrmCrtc;
  readonly plane: DrmPlane;
  readonly encoder: DrmEncoder;
  readonly connector: DrmConnector;
  readonly crc: DrmCrtcCrc;
  readonly periodNs: Ns;
  readonly sources = ["auto"] as const;
  /** The last frames scanned out, newest last (at most 64 kept). */
  readonly scanouts: ScanoutRecord[] = [];
  #enableTime = 0;
  #seqBase = 0;
  #tick: ClockEvent | undefined;
  #pending: PendingFlip | null = null;
  #crcOn = false;
  /** A scanout's DMA is still reading the frame (see #scanout). */
  #scanning = false;
  /**
   * Vblanks whose scanout did not start because the last one was still reading: the
   * frame takes longer to fetch than a refresh period (a FIFO underrun on hardware).
   */
  underruns = 0;
  /** The last scanout: its DMA rows, memory's write sequence before it, its CRC. */
  #lastScan: { rows: readonly DmaSegment[]; seq: number; crc: number; clean: boolean } | undefined;
  /**
   * The DMA segments of the scanouts' rows, by buffer and geometry: the same list as last
   * time for a buffer scanned out before (a display scans the same few buffers out at
   * every vblank and flip, and a list of thousands of rows per vblank is most of what a
   * scanout of unchanged memory costs).
   */
  readonly #rowLists = new DmaRowLists();

  constructor(host: DriverHost, options: SimDisplayOptions) {
    const width = options.width ?? 640;
    const height = options.height ?? 480;
    const refreshHz = options.refreshHz ?? 60;
    this.mode = simdisplayMode(width, height, refreshHz);
    this.periodNs = Math.round(1e9 / refreshHz);
    this.dev = host.machine.addDevice(driverDeviceName(host, "simdisplay", options.name), {
      ...options.device,
    });
    const driver: DrmDriver = {
      name: "simdisplay",
      desc: "dmabuf model display controller",
      date: "20250101",
      major: 1,
      minor: 0,
      patchlevel: 0,
      features: DRIVER_GEM | DRIVER_MODESET | DRIVER_ATOMIC,
      dumbCreate: (file, w, h, bpp) => {
        // drm_gem_dma_dumb_create: pitch = DIV_ROUND_UP(width * bpp, 8).
        const pitch = Math.ceil((w * bpp) / 8);
        const size = pitch * h;
        const obj = drmGemDmaCreate(this.drm, size);
        obj.dumb = true;
        const handle = drmGemHandleCreate(file, obj);
        obj.put();
        return { handle, pitch, size };
      },
      gemPrimeImportSgTable: (d, attach, sgt) => drmGemDmaPrimeImportSgTable(d, attach, sgt),
    };
    this.drm = new DrmDevice(host, driver, this.dev);
    const mc = new DrmModeConfig(this);
    mc.maxWidth = SIMDISPLAY_MAX_WIDTH;
    mc.maxHeight = SIMDISPLAY_MAX_HEIGHT;
    this.config = mc;
    this.plane = new DrmPlane(mc.allocId(), [DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888]);
    this.crtc = new DrmCrtc(mc.allocId(), 0);
    this.encoder = new DrmEncoder(mc.allocId(), DRM_MODE_ENCODER_VIRTUAL, 1);
    this.connector = new DrmConnector(
      mc.allocId(),
      DRM_MODE_CONNECTOR_VIRTUAL,
      1,
      this.encoder,
      [this.mode],
      Math.round(width * 0.2646),
      Math.round(height * 0.2646),
    );
    mc.planes.push(this.plane);
    mc.crtcs.push(this.crtc);
    mc.encoders.push(this.encoder);
    mc.connectors.push(this.connector);
    this.drm.mode = mc;
    this.crc = new DrmCrtcCrc(this.drm, this.crtc, this);
    this.drm.register();
    this.crc.register();
  }

  get cardPath(): string {
    return this.drm.primaryPath;
  }

  /** The DRM minor (its debugfs directory's name). */
  get minor(): number {
    return this.drm.index;
  }

  /** drm_crtc_vblank_count(): vblanks since the CRTC was first enabled. */
  get vblankCount(): number {
    if (!this.crtc.active) return this.#seqBase;
    return (
      this.#seqBase + Math.floor((this.drm.host.machine.now - this.#enableTime) / this.periodNs)
    );
  }

  /** Drops queued crc/data entries (a test convenience; userspace would read them). */
  discardCrcEntries(): void {
    this.crc.discard();
  }

  /** Whether a page flip waits for its vblank. */
  get flipPending(): boolean {
    return this.#pending !== null;
  }

  // ---- DrmCrtcFuncs ----

  setConfig(
    crtc: DrmCrtc,
    fb: DrmFramebuffer | null,
    mode: DrmModeInfo | null,
    x: number,
    y: number,
  ): void {
    if (fb === null || mode === null) {
      this.#disable();
      return;
    }
    if (mode.hdisplay !== this.mode.hdisplay || mode.vdisplay !== this.mode.vdisplay)
      throw new KernelError(
        "EINVAL",
        `simdisplay: mode ${mode.name} is not the connector's ${this.mode.name}`,
      );
    if (this.#pending !== null)
      throw new KernelError("EBUSY", "simdisplay: a page flip is still pending");
    // A blocking commit: prepare_fb's fences are waited for before the plane is programmed.
    for (const f of fb.obj.resv.getFences(DMA_RESV_USAGE_WRITE)) {
      f.wait(true);
      f.put();
    }
    if (!crtc.active) {
      crtc.active = true;
      this.#enableTime = this.drm.host.machine.now;
    }
    crtc.mode = mode;
    crtc.fb = fb;
    crtc.x = x;
    crtc.y = y;
    this.#arm();
  }

  pageFlip(_crtc: DrmCrtc, fb: DrmFramebuffer, event: DrmPendingVblankEvent | null): void {
    if (this.#pending !== null)
      throw new KernelError(
        "EBUSY",
        "DRM_IOCTL_MODE_PAGE_FLIP: a flip is already pending on this CRTC",
      );
    this.#pending = { fb, fences: fb.obj.resv.getFences(DMA_RESV_USAGE_WRITE), event };
    this.#arm();
  }

  fbRemoved(fb: DrmFramebuffer): void {
    if (this.#pending?.fb === fb) this.#dropPending();
    if (this.crtc.fb === fb) this.#disable();
  }

  // ---- DrmCrcSourceFuncs ----

  verifyCrcSource(_crtc: DrmCrtc, source: string): number {
    if (source !== "auto")
      throw new KernelError("EINVAL", `simdisplay: unknown CRC source '${source}'`);
    return 1;
  }

  setCrcSource(_crtc: DrmCrtc, source: string | null): void {
    this.#crcOn = source !== null;
    this.#arm();
  }

  isActive(crtc: DrmCrtc): boolean {
    return crtc.active;
  }

  // ---- vblank ----

  #dropPending(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    for (const f of p.fences) f.put();
    if (p.event !== null) p.event.file.cancelEvent(SIZEOF_DRM_EVENT_VBLANK);
  }

  #disable(): void {
    const crtc = this.crtc;
    this.#dropPending();
    if (crtc.active) this.#seqBase = this.vblankCount;
    crtc.active = false;
    crtc.fb = null;
    crtc.mode = null;
    if (this.#tick !== undefined) {
      this.drm.host.machine.clock.cancel(this.#tick);
      this.#tick = undefined;
    }
  }

  /** Schedules the next vblank interrupt if the CRTC is on and someone is watching. */
  #arm(): void {
    if (!this.crtc.active || this.#tick !== undefined) return;
    if (!this.#crcOn && this.#pending === null) return;
    const clock = this.drm.host.machine.clock;
    let k = Math.floor((clock.now - this.#enableTime) / this.periodNs) + 1;
    // Fractional periods: rounding can land k * period on `now` itself; always move on.
    while (this.#enableTime + k * this.periodNs <= clock.now) k++;
    const at = this.#enableTime + k * this.periodNs;
    this.#tick = clock.schedule(
      at,
      "simdisplay: vblank",
      () => {
        this.#tick = undefined;
        this.#vblank(this.#seqBase + k, at);
        this.#arm();
      },
      { periodic: true },
    );
  }

  /** The vblank interrupt: latch a ready flip, send its event, scan the frame out. */
  #vblank(sequence: number, time: Ns): void {
    const p = this.#pending;
    if (p?.fences.every((f) => f.isSignaled())) {
      // A latched flip is progress for waiters; a vblank that only scans out is not.
      this.drm.host.machine.clock.noteProgress();
      this.#pending = null;
      this.crtc.fb = p.fb;
      for (const f of p.fences) f.put();
      if (p.event !== null) drmSendVblankEvent(p.event, sequence, time);
    }
    this.#scanout(sequence, time);
  }

  /**
   * Whether this scanout reads the very bytes the last one did, so its CRC is the last
   * one's (the DMA read and its checks still run): no byte of memory changed since, the
   * same DMA rows, no IOMMU whose mappings could have moved under them, no fault now or
   * then (a faulting read returns zeros), and a non-coherent master (a coherent one
   * also sees the CPU's dirty lines).
   */
  #sameScan(rows: readonly DmaSegment[], seq: number): boolean {
    const last = this.#lastScan;
    if (last === undefined || !last.clean || last.seq !== seq) return false;
    if (this.dev.coherent || this.dev.iommu !== undefined) return false;
    if (last.rows === rows) return true;
    if (last.rows.length !== rows.length) return false;
    for (let i = 0; i < rows.length; i++) {
      const a = rows[i]!;
      const b = last.rows[i]!;
      if (a.dmaAddr !== b.dmaAddr || a.len !== b.len) return false;
    }
    return true;
  }

  /**
   * Reads the scanout's rows by DMA and returns the CRC of what was read. The rows are
   * hashed where they lie in DRAM when the device can read in place (the same reads and
   * checks as a copy, the same bytes, one pass over the frame less); otherwise they are
   * copied into the thread's DMA read buffer first (a frame-sized array per vblank, or
   * per display when a run boots a machine, costs host page faults). Rows DRAM knows
   * equal to the one above (`DmaDevice.knownSameRows`: a GPU's result of a few distinct
   * rows) are not compared.
   */
  #readCrc(rows: readonly DmaSegment[], rowBytes: number, height: number): number {
    let total = 0;
    for (const r of rows) total += r.len;
    if (total === rowBytes * height) {
      const h = new Crc32RowHasher(rowBytes);
      const memory = this.drm.host.machine.memory;
      const known = this.dev.knownSameRows(rows, rowBytes);
      const seq = memory.writeSeq;
      const gather = new RowGather(rowBytes, (b, off, y) =>
        h.row(
          b,
          off,
          known !== undefined && y < known.length && known[y] !== 0 && memory.writeSeq === seq,
        ),
      );
      if (this.dev.readSegmentsInPlace(rows, (b, from, len, at) => gather.push(b, at, from, len)))
        return h.value;
    }
    const bytes = this.dev.readSegments(rows, dmaReadScratch.get(rowBytes * height));
    return crc32Rows(bytes, rowBytes, rowBytes, height);
  }

  #scanout(sequence: number, time: Ns): void {
    const fb = this.crtc.fb;
    const mode = this.crtc.mode;
    if (fb === null || mode === null) return;
    // The display fetches one frame at a time: a vblank that finds the last fetch still
    // running starts none and gives no CRC (a gap in crc/data's frame numbers, which
    // carry the vblank count for readers to match), rather than queueing fetches that
    // fall ever further behind the vblanks.
    if (this.#scanning) {
      this.underruns++;
      return;
    }
    this.#scanning = true;
    const cpp = fb.format.cpp;
    const rowBytes = mode.hdisplay * cpp;
    const base = fb.offset + this.crtc.y * fb.pitch + this.crtc.x * cpp;
    const obj = fb.obj.get();
    const crcOn = this.#crcOn;
    this.dev.submit(
      `scanout frame ${sequence} (fb ${fb.id})`,
      rowBytes * mode.vdisplay,
      () => {
        const rows = this.#rowLists.rows(
          drmGemDmaSegments(obj),
          base,
          fb.pitch,
          rowBytes,
          mode.vdisplay,
        );
        const memory = this.drm.host.machine.memory;
        const seq = memory.writeSeq;
        const faults = this.dev.faults;
        let crc: number;
        if (this.#sameScan(rows, seq)) {
          // The same bytes as last time: the reads and their checks run, nothing is copied.
          this.dev.rereadSegments(rows);
          crc = this.#lastScan!.crc;
        } else {
          crc = this.#readCrc(rows, rowBytes, mode.vdisplay);
        }
        const clean = this.dev.faults === faults;
        this.#lastScan = { rows, seq, crc, clean };
        this.scanouts.push({ sequence, time, fbId: fb.id, crc });
        if (this.scanouts.length > 64) this.scanouts.shift();
        if (crcOn && this.#crcOn) this.crc.addEntry(sequence, [crc]);
      },
      () => {
        this.#scanning = false;
        obj.put();
      },
    );
  }
}

/** simdisplay's probe: one display controller per call, each its own DMA master and card. */
export function simdisplayProbe(host: DriverHost, options: SimDisplayOptions = {}): SimDisplay {
  return new SimDisplay(host, options);
}
