/**
 * Fault injection for cache maintenance and syncs, in the spirit of lib/fault-inject.c:
 * every place that maintains the CPU cache or hands a buffer between the CPU and a
 * device asks this object first ("should this call fail?") and gets back what to do:
 * run it, leave it out, run it with the other direction, over less memory, or twice.
 *
 * Linux names its fault points (fail_page_alloc, failslab, fail_make_request) and
 * configures them through debugfs; here a point is a {@link FaultSite}: the Linux call
 * ("dma_sync_sg_for_cpu", "arch_sync_dma_for_device", "swiotlb_sync_single_for_device",
 * "DMA_BUF_IOCTL_SYNC(END)", "cache_clean") and the code in src/ that made it (the
 * driver function or userspace stage, found from the call stack). A plan is a list of
 * {@link FaultRule}s, plain data, so a scenario's named faults, a sweep point and the
 * mutation engine (`dmabuf mutate`) all drive the same mechanism.
 *
 * The same object records what each call really did (bytes asked for, bytes the cache
 * maintenance covered, cache lines it found to clean or drop): the byte-coverage and
 * call-site views of the reports, and the mutation engine's proof that leaving a call
 * out could not change anything.
 *
 * Disarmed (no rules, not recording), a consult is one branch; nothing is allocated.
 */

/** What a rule does to a matching call. */
export type FaultAction =
  /** Leave the call out entirely. */
  | "omit"
  /** Run it with the opposite DMA direction (TO_DEVICE <-> FROM_DEVICE; BIDIRECTIONAL -> TO_DEVICE). */
  | "flip"
  /** Run it over the first half of the memory it should cover. */
  | "shrink"
  /** Run it twice (a second DMA_BUF_IOCTL_SYNC(START) before the END). */
  | "repeat"
  /** Run the opposite hand-over: for_cpu where for_device was asked, and back. */
  | "swap"
  /**
   * Drop the CPU's copies of a buffer the device will write, before it does, instead of
   * what the architecture does (arm64 only cleans): invalidate a DMA_FROM_DEVICE buffer,
   * clean and invalidate a DMA_BIDIRECTIONAL one (v7_dma_map_area's rule). Enough on a
   * CPU without speculative fills, and what drivers written for one do (openmv/openmv
   * PR 1605).
   */
  | "invalidate";

export const FAULT_ACTIONS: readonly FaultAction[] = [
  "omit",
  "flip",
  "shrink",
  "repeat",
  "swap",
  "invalidate",
];

/** One rule of a plan: which calls it hits and what it does to them. */
export interface FaultRule {
  /** The Linux call ("dma_sync_sgtable_for_cpu"); `*` matches any run of characters ("dma_sync_*_for_cpu"). */
  readonly call: string;
  /** Only sites whose caller contains this text ("Vb2DcBuf.prepare", "stages"). */
  readonly caller?: string;
  readonly action: FaultAction;
  /** Matching calls to let through before the rule applies (default 0). */
  readonly skip?: number;
  /** Apply at most this many times (default: every time). */
  readonly times?: number;
  /** Apply to every n-th matching call only (default 1: all of them). */
  readonly every?: number;
  /** Only calls made while {@link FaultInjection.scope} is this (a pipeline graph's stage name). */
  readonly scope?: string;
}

/** What a call point supports besides "omit". */
export interface FaultPointInfo {
  /** DMA direction of the call, when it has one (flip applies). */
  readonly dir?: number;
  /** Bytes the call is asked to cover (coverage; shrink applies when > 0). */
  readonly bytes: number;
  /** Whether the call cannot be made to cover less (shrink does not apply although bytes > 0). */
  readonly whole?: boolean;
  /** Whether running it twice means anything (userspace brackets). */
  readonly repeatable?: boolean;
  /** Whether there is an opposite hand-over (DMA API syncs). */
  readonly swappable?: boolean;
  /** Whether the call's maintenance can be made an invalidate (arch_sync_dma_for_device). */
  readonly invalidatable?: boolean;
  /** The physical memory the call is asked to cover, when the call point knows it (the coverage picture). */
  readonly ranges?: readonly { readonly phys: number; readonly len: number }[];
}

/** Physical byte ranges. */
export type CoverageRanges = readonly { readonly phys: number; readonly len: number }[];

/** A call point as the reports and the mutation engine name it. */
export interface FaultSite {
  /** "<call> <- <caller>". */
  readonly id: string;
  readonly call: string;
  /** The first function outside the machine, DMA API, VFS and uAPI layers: "videobuf2-dma-contig.Vb2DcBuf.prepare". */
  readonly caller: string;
}

/** Everything one site did in a run. */
export interface FaultSiteStats extends FaultSite {
  /** Times the site was reached. */
  calls: number;
  /** Bytes the calls were asked to cover. */
  requestedBytes: number;
  /** Bytes the cache maintenance they caused covered (by line; 0 on a coherent device). */
  maintainedBytes: number;
  /** Cache lines the maintenance found to write back or drop: 0 means every call was a no-op on the cache. */
  linesAffected: number;
  /** Of those, dirty lines written back or discarded (the rest were clean copies dropped). */
  dirtyLines: number;
  /** swiotlb copies whose bytes changed the destination. */
  bouncesChanging: number;
  /** Whether any call had a direction, and which ones ("DMA_FROM_DEVICE", ...). */
  directions: string[];
  /** Applicable mutations (derived from the call's info). */
  canFlip: boolean;
  canShrink: boolean;
  canRepeat: boolean;
  canSwap: boolean;
  /** Times a rule changed this site. */
  injected: number;
  /**
   * Every function outside the model's layers on the calls' stacks, as "<module>.<function>"
   * (the caller, then who called it: `videobuf2-core.#cancel` for the finish at
   * STREAMOFF): what the call-site census (test/pipelines/call-sites.test.ts) checks each
   * registered call point against. Bounded. Recorded only when asked
   * (`FaultInjection.arm`'s `stacks`, `PipelineSpec.recordCallStacks`); empty otherwise.
   */
  via: string[];
  /**
   * The first call that maintained less than it was asked to: bytes asked and covered,
   * which call it was, and (when the call point gave its ranges) the physical ranges asked
   * for and those the cache maintenance covered: the byte-coverage picture
   * (amd/xdna-driver issue 1542; src/report/coverage.ts draws it).
   */
  firstGap?: {
    readonly requested: number;
    readonly maintained: number;
    readonly atCall: number;
    readonly requestedRanges?: CoverageRanges;
    readonly maintainedRanges?: CoverageRanges;
  };
}

/** The answer to a consult. */
export interface FaultDecision {
  readonly action: FaultAction | "run";
  /** Pass back to {@link FaultInjection.leave} when the call is done (undefined when disarmed). */
  readonly token: number | undefined;
}

const RUN: FaultDecision = { action: "run", token: undefined };

interface OpenCall {
  readonly stats: FaultSiteStats;
  requested: number;
  maintained: number;
  readonly requestedRanges: CoverageRanges | undefined;
  readonly maintainedRanges: { phys: number; len: number }[];
}

/** Frames of these source folders are the model's own layers, not a call site. */
const LAYER_DIRS =
  /[/\\](?:machine|dma|vfs|uapi|kernel|include)[/\\]|[/\\]dma-buf[/\\]dma-buf\.[jt]s|node:|fault-inject/;

export class FaultInjection {
  #rules: readonly FaultRule[] = [];
  readonly #matched: number[] = [];
  readonly #applied: number[] = [];
  #recording = false;
  /** Whether each call's whole stack is read for its site's `via`. */
  #stacks = false;
  readonly #sites = new Map<string, FaultSiteStats>();
  readonly #open: OpenCall[] = [];
  readonly #tokens = new Map<number, OpenCall>();
  #nextToken = 1;
  /** Set while a rule's "repeat" runs the call a second time, so it is not counted again. */
  #nesting = 0;
  /**
   * Who is making calls now, for rules with a `scope`: a pipeline graph sets its stage's
   * name while the stage runs, so a fault can be armed for one stage of a graph.
   */
  scope: string | undefined = undefined;

  /** Whether any consult does more than return "run". */
  get armed(): boolean {
    return this.#recording || this.#rules.length > 0;
  }

  /**
   * Installs a plan (replacing any) and starts recording sites when `record` is set;
   * with `stacks` also every function on each call's stack ({@link FaultSiteStats.via}:
   * the call-site census), which costs reading the whole stack per call.
   */
  arm(rules: readonly FaultRule[], record = true, stacks = false): void {
    this.#rules = rules;
    this.#matched.length = 0;
    this.#applied.length = 0;
    for (let i = 0; i < rules.length; i++) {
      this.#matched.push(0);
      this.#applied.push(0);
    }
    this.#recording = record || rules.length > 0;
    this.#stacks = stacks && this.#recording;
  }

  /** The sites reached so far, in first-reached order. */
  get sites(): readonly FaultSiteStats[] {
    return [...this.#sites.values()];
  }

  /** Times each rule of the plan changed a call (a rule that never applied is a plan that could not take effect). */
  get appliedCounts(): readonly number[] {
    return [...this.#applied];
  }

  /**
   * should_fail(): called at the start of a maintenance or sync call. Returns what to
   * do; when the decision has a token the caller passes it to {@link leave} once done.
   */
  consult(call: string, info: FaultPointInfo): FaultDecision {
    if (!this.armed || this.#nesting > 0) return RUN;
    const frames = framesOutsideLayers(this.#stacks);
    const caller = frames.caller;
    const id = `${call} <- ${caller}`;
    let st = this.#sites.get(id);
    if (st === undefined) {
      st = {
        id,
        call,
        caller,
        calls: 0,
        requestedBytes: 0,
        maintainedBytes: 0,
        linesAffected: 0,
        dirtyLines: 0,
        bouncesChanging: 0,
        directions: [],
        canFlip: false,
        canShrink: false,
        canRepeat: false,
        canSwap: false,
        injected: 0,
        via: [],
      };
      this.#sites.set(id, st);
    }
    for (const v of frames.via) if (st.via.length < MAX_VIA && !st.via.includes(v)) st.via.push(v);
    st.calls++;
    st.requestedBytes += info.bytes;
    if (info.dir !== undefined) {
      st.canFlip = true;
      const d = DIRECTION_NAMES[info.dir] ?? String(info.dir);
      if (!st.directions.includes(d)) st.directions.push(d);
    }
    if (info.bytes > 0 && info.whole !== true) st.canShrink = true;
    if (info.repeatable) st.canRepeat = true;
    if (info.swappable) st.canSwap = true;
    let action: FaultDecision["action"] = "run";
    for (let i = 0; i < this.#rules.length; i++) {
      const r = this.#rules[i]!;
      if (r.call !== call && !globMatch(r.call, call)) continue;
      if (r.caller !== undefined && !caller.includes(r.caller)) continue;
      if (r.scope !== undefined && r.scope !== this.scope) continue;
      if (!applicable(r.action, info)) continue;
      const n = this.#matched[i]!++;
      const skip = r.skip ?? 0;
      if (n < skip || (n - skip) % (r.every ?? 1) !== 0) continue;
      if (r.times !== undefined && this.#applied[i]! >= r.times) continue;
      this.#applied[i]!++;
      st.injected++;
      action = r.action;
      break;
    }
    const open: OpenCall = {
      stats: st,
      requested: info.bytes,
      maintained: 0,
      requestedRanges: info.ranges,
      maintainedRanges: [],
    };
    const token = this.#nextToken++;
    this.#tokens.set(token, open);
    this.#open.push(open);
    return { action, token };
  }

  /** The call whose consult returned `token` is done. */
  leave(token: number | undefined): void {
    if (token === undefined) return;
    const open = this.#tokens.get(token);
    if (open === undefined) return;
    this.#tokens.delete(token);
    const i = this.#open.lastIndexOf(open);
    if (i >= 0) this.#open.splice(i, 1);
    const st = open.stats;
    st.maintainedBytes += open.maintained;
    if (
      st.firstGap === undefined &&
      open.maintained > 0 &&
      open.maintained < open.requested &&
      open.requested > 0
    ) {
      st.firstGap = {
        requested: open.requested,
        maintained: open.maintained,
        atCall: st.calls,
        ...(open.requestedRanges !== undefined
          ? {
              requestedRanges: open.requestedRanges.map((r) => ({ phys: r.phys, len: r.len })),
              maintainedRanges: open.maintainedRanges,
            }
          : {}),
      };
    }
  }

  /** Runs `f` as a rule's second execution of a call: not consulted or counted again. */
  again(f: () => void): void {
    this.#nesting++;
    try {
      f();
    } finally {
      this.#nesting--;
    }
  }

  /** Whether a maintenance operation runs inside a consulted call (it is then part of that call, not a site of its own). */
  get inCall(): boolean {
    return this.#open.length > 0;
  }

  /**
   * Cache maintenance done now: `bytes` covered, `lines` found to write back or drop,
   * `dirty` of them dirty. Added to every call in progress (a dma-buf sync contains a DMA
   * API sync contains the architecture's maintenance).
   */
  noteMaintenance(bytes: number, lines: number, dirty: number, ranges?: CoverageRanges): void {
    for (const o of this.#open) {
      o.maintained += bytes;
      o.stats.linesAffected += lines;
      o.stats.dirtyLines += dirty;
      // Kept only while the call may still be its site's first gap (bounded: one call).
      if (ranges !== undefined && o.requestedRanges !== undefined && o.stats.firstGap === undefined)
        for (const r of ranges) o.maintainedRanges.push({ phys: r.phys, len: r.len });
    }
  }

  /** A swiotlb copy in progress changed `changed` bytes of its destination. */
  noteBounce(changed: boolean): void {
    if (!changed) return;
    for (const o of this.#open) o.stats.bouncesChanging++;
  }
}

const DIRECTION_NAMES: Record<number, string> = {
  0: "DMA_BIDIRECTIONAL",
  1: "DMA_TO_DEVICE",
  2: "DMA_FROM_DEVICE",
};

function globMatch(pattern: string, text: string): boolean {
  if (!pattern.includes("*")) return false;
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(text);
}

function applicable(action: FaultAction, info: FaultPointInfo): boolean {
  switch (action) {
    case "omit":
      return true;
    case "flip":
      return info.dir !== undefined;
    case "shrink":
      return info.bytes > 0 && info.whole !== true;
    case "repeat":
      return info.repeatable === true;
    case "swap":
      return info.swappable === true;
    case "invalidate":
      return info.invalidatable === true && info.dir !== undefined && info.dir !== 1;
  }
}

/** The opposite direction for a "flip" (BIDIRECTIONAL, which both directions need, becomes TO_DEVICE). */
export function flipDirection<D extends number>(dir: D): D {
  return (dir === 1 ? 2 : 1) as D;
}

/** Half of `len`, rounded down to a multiple of `align`. */
export function shrinkLength(len: number, align = 1): number {
  return Math.floor(len / 2 / align) * align;
}

/** Bound on {@link FaultSiteStats.via}. */
const MAX_VIA = 64;

/** Frames of a call's stack read for its caller and `via` (the frame reading it included). */
const STACK_FRAMES = 40;
/**
 * Frames read first when only the caller is wanted: it is within the first dozen
 * (consult, the DMA API's layers, the driver function); a caller not found in them is
 * looked for again in {@link STACK_FRAMES}.
 */
const CALLER_FRAMES = 16;

/**
 * The site's caller, the first stack frame outside the model's layers as
 * "<module>.<function>", and with `stacks` every named function outside the layers on
 * the stack (`via`; empty without).
 *
 * Read from V8's structured frames (CallSites, `Error.prepareStackTrace`): a frame of one
 * of the model's layers is known by its script name and skipped unformatted, and the
 * others are formatted each exactly as the formatted stack prints it (Node's default
 * formatting is `"    at " + callSite.toString()` per frame); without `stacks`, only the
 * frames down to the caller are taken. Why: reading a stack cost 0.3-0.4 ms of CPU per
 * call in a pipeline (V8's code metadata and line tables are out of the host's caches
 * after a frame's DMA), several calls a frame; most of it formatting frames and working
 * out their line numbers. Where stacks are formatted otherwise (a program's own
 * `Error.prepareStackTrace`, Node's source maps), and with `formatted` (tests compare the
 * two), the formatted stack is read as it always was.
 */
export function framesOutsideLayers(
  stacks: boolean,
  formatted = false,
): { caller: string; via: string[] } {
  const limit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  if (formatted || !nodeFormats(prepare)) {
    Error.stackTraceLimit = STACK_FRAMES;
    const stack = new Error().stack ?? "";
    Error.stackTraceLimit = limit;
    return framesOfLines(stack.split("\n").slice(1), stacks);
  }
  // The frames below this function, as the formatted path's window less its own frame
  // (a frame of the layers, skipped by both).
  const want = stacks ? STACK_FRAMES - 1 : CALLER_FRAMES;
  const holder: { stack?: unknown } = {};
  Error.stackTraceLimit = want;
  Error.prepareStackTrace = callSitesOf;
  try {
    Error.captureStackTrace(holder, framesOutsideLayers);
    const sites = holder.stack as NodeJS.CallSite[];
    const first = scanSites(sites, stacks);
    if (stacks || first.caller !== undefined || sites.length < want)
      return { caller: first.result, via: first.via };
    // The caller is deeper than the first frames read: read as many as the formatted path.
    Error.stackTraceLimit = STACK_FRAMES - 1;
    const deeper: { stack?: unknown } = {};
    Error.captureStackTrace(deeper, framesOutsideLayers);
    const all = scanSites(deeper.stack as NodeJS.CallSite[], stacks);
    return { caller: all.result, via: all.via };
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}

/**
 * The caller's scan and `via` (with `stacks`) over structured frames; without `stacks`
 * the scan stops where the caller is known.
 */
function scanSites(
  sites: readonly NodeJS.CallSite[],
  stacks: boolean,
): { caller: string | undefined; result: string; via: string[] } {
  const via: string[] = [];
  const caller = new CallerScan();
  for (const site of sites) {
    if (!stacks && caller.done) break;
    const file = site.getScriptNameOrSourceURL();
    // A frame of the model's own layers, known by its script: `via` skips it, and so
    // does the caller's scan before its first frame outside them and after its end.
    if (typeof file === "string" && file !== "" && !site.isEval() && LAYER_DIRS.test(file)) {
      if (caller.skipsLayers) continue;
    }
    const line = `    at ${site.toString()}`;
    caller.line(line);
    if (stacks) viaLine(line, via);
  }
  return { caller: caller.done ? caller.result : undefined, result: caller.result, via };
}

/**
 * Whether stacks are formatted by Node's default (`Error.prepareStackTrace` is Node's
 * own or unset, and Node's source maps are off): each frame is then `callSite.toString()`.
 */
function nodeFormats(prepare: typeof Error.prepareStackTrace): boolean {
  return (
    (prepare === undefined || prepare.name === "ErrorPrepareStackTrace") &&
    process.sourceMapsEnabled !== true
  );
}

/** `Error.prepareStackTrace` that hands back V8's frames unformatted. */
function callSitesOf(_: Error, sites: NodeJS.CallSite[]): NodeJS.CallSite[] {
  return sites;
}

/** {@link framesOutsideLayers} from a formatted stack's frame lines. */
function framesOfLines(
  lines: readonly string[],
  stacks: boolean,
): { caller: string; via: string[] } {
  const via: string[] = [];
  const caller = new CallerScan();
  for (const line of lines) {
    caller.line(line);
    if (stacks) viaLine(line, via);
  }
  return { caller: caller.result, via };
}

/** Adds the formatted frame `line`'s "<module>.<function>" to `via` when outside the layers. */
function viaLine(line: string, via: string[]): void {
  const m = /at (\S+)(?: \[as [^\]]+\])? \((.+?):\d+:\d+\)$/.exec(line.trim());
  if (m === null || LAYER_DIRS.test(m[2]!) || m[1]!.startsWith("<")) return;
  const mod = (m[2]!.split(/[/\\]/).pop() ?? "").replace(/\.[jt]s$/, "");
  via.push(`${mod}.${m[1]!.replace(/^(?:Object|Array)\./, "").replace(/^async /, "")}`);
}

/**
 * The first stack frame outside the model's layers, as "<module>.<function>", from the
 * formatted frames in order ({@link line} each until {@link done}).
 */
class CallerScan {
  #module: string | undefined;
  #found: string | undefined;
  #done = false;

  /** Whether the caller is known (more frames change nothing). */
  get done(): boolean {
    return this.#done;
  }

  /** Whether a frame of the model's layers changes nothing: none outside them yet, or done. */
  get skipsLayers(): boolean {
    return this.#module === undefined || this.#done;
  }

  line(line: string): void {
    if (this.#done) return;
    const m = /at (?:(\S+) \()?(.+?):\d+:\d+\)?$/.exec(line.trim());
    if (m === null) return;
    const file = m[2]!;
    if (this.#module === undefined && LAYER_DIRS.test(file)) return;
    const mod = (file.split(/[/\\]/).pop() ?? file).replace(/\.[jt]s$/, "");
    // An arrow function has no name: name the site after the function that holds it.
    if (this.#module !== undefined && mod !== this.#module) {
      this.#done = true;
      return;
    }
    this.#module = mod;
    const fn = m[1]?.replace(/^(?:Object|Array)\./, "").replace(/^async /, "");
    if (fn !== undefined && !fn.startsWith("<")) {
      this.#found = `${mod}.${fn}`;
      this.#done = true;
    }
  }

  get result(): string {
    if (this.#found !== undefined) return this.#found;
    return this.#module === undefined ? "<kernel>" : `${this.#module}.<top>`;
  }
}

/**
 * Runs one consulted call: `run` gets the action to apply ("run", "flip", "shrink",
 * "swap"); "omit" skips it, "repeat" runs it twice. The shape every call point shares.
 */
export function injectFault(
  f: FaultInjection,
  call: string,
  info: FaultPointInfo,
  run: (action: Exclude<FaultAction, "omit" | "repeat"> | "run") => void,
): void {
  if (!f.armed) {
    run("run");
    return;
  }
  const d = f.consult(call, info);
  try {
    if (d.action === "omit") return;
    if (d.action === "repeat") {
      run("run");
      f.again(() => run("run"));
      return;
    }
    run(d.action);
  } finally {
    f.leave(d.token);
  }
}
