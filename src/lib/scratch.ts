/**
 * A reusable host buffer for frame-sized work that lives only until the next use: the
 * bytes a display scans out, a GPU job's source and result, the frame a pipeline
 * expects. Allocating a fresh frame-sized array each time costs host page faults (on
 * the machines this runs on, first-touching 32 MiB takes longer than copying it many
 * times); one buffer per user, grown to the largest size asked, costs them once.
 * Growing reserves room ahead ({@link RESERVE_BYTES}): untouched pages are free.
 */
import { hostBytes } from "../machine/host-memory.js";

/**
 * Bytes a buffer reserves when it first grows (more when asked for more). A fresh
 * allocation's pages cost nothing until written, so a buffer that grows from frame to
 * frame (a sweep's runs from 64 KiB up to 16 MiB, say) grows within pages already
 * touched instead of faulting in a fresh array at every size on top of the last.
 */
const RESERVE_BYTES = 64 * 1024 * 1024;

export class ScratchBuffer {
  #buf = new Uint8Array(0);
  /**
   * What the buffer holds, when its producer knows it as a function of a few parameters
   * (see {@link ScratchContent}); undefined when unknown. {@link get} forgets it (the
   * caller is about to write), and so must anyone who changes the bytes in place.
   */
  content: ScratchContent | undefined;

  /**
   * A view of exactly `len` bytes, valid until the next call. Its contents are left
   * over from earlier uses: the caller writes every byte it later reads.
   */
  get(len: number): Uint8Array {
    this.content = undefined;
    if (this.#buf.length < len) this.#buf = hostBytes(Math.max(len, RESERVE_BYTES));
    return this.#buf.subarray(0, len);
  }

  /**
   * A view of the first `len` bytes as they are, `content` kept: for a producer that
   * brings known content up to date by rewriting only what differs.
   */
  peek(len: number): Uint8Array {
    if (this.#buf.length < len)
      throw new RangeError(`scratch: ${len} bytes asked of ${this.#buf.length}`);
    return this.#buf.subarray(0, len);
  }

  /** Bytes reserved (of which only those ever written cost host memory). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** The bytes were changed in place: what they hold is no longer known. */
  forget(): void {
    this.content = undefined;
  }

  /**
   * The first `rows` rows (of the content's geometry) were changed in place (a CPU's
   * stamp): below them and below the content's own varying rows the buffer still holds
   * its key's unvarying rows, above them no value of its key. The content keeps its key,
   * takes a `seq` no producer makes (each call its own) and `rows` that cover the change,
   * so a producer brings it up to date by rewriting those rows. Without content, nothing
   * is known either way.
   */
  touchRows(rows: number): void {
    const c = this.content;
    if (c === undefined) return;
    // What the rows below the change hold is known (see ScratchContent.before), and so
    // is which of them equal the row above: not the changed rows, nor the first below.
    const before =
      c.before === undefined
        ? { seq: c.seq, from: rows }
        : { seq: c.before.seq, from: Math.max(c.before.from, rows) };
    let same: SameRows | undefined;
    if (c.same !== undefined) {
      const claims = c.same.same.slice();
      claims.fill(0, 0, Math.min(claims.length, rows + 1));
      same = { pitch: c.same.pitch, rowBytes: c.same.rowBytes, same: claims };
    }
    this.content = {
      key: c.key,
      seq: touchedSeq--,
      rows: Math.max(c.rows, rows),
      before,
      ...(same === undefined ? {} : { same }),
    };
  }
}

/**
 * The bytes a device reads within one DMA callback (a GPU job's source rows, a display's
 * scanout), shared by every device of this thread: callbacks run one at a time, each to
 * completion, and none uses it after it returns. One frame-sized buffer instead of one
 * per kind of device is host memory a thread faults in once less.
 */
export const dmaReadScratch = new ScratchBuffer();

/** The next `seq` of a buffer changed in place: negative, and never the same twice. */
let touchedSeq = -1;

/**
 * What a scratch buffer holds: the product named by `key` (a pattern, a transform of
 * one, with every parameter in the key) for the value `seq` of its one varying
 * parameter. Two contents with the same key differ at most in their first `rows` rows
 * (of the key's geometry; the larger of the two counts); every other byte is the same.
 * So a producer asked for another `seq` of the same key rewrites only those rows, and a
 * consumer can reuse what it computed from the rest. A negative `seq` is a buffer
 * changed in place ({@link ScratchBuffer.touchRows}): equal to no other content's.
 */
export interface ScratchContent {
  readonly key: string;
  readonly seq: number;
  readonly rows: number;
  /**
   * Which rows of this content equal the row above, as its producer's structure makes
   * them (vivid's bars and band, a row-by-row transform of such a frame); absent when
   * not claimed. A claim about these bytes as they are: gone with any change in place.
   */
  readonly same?: SameRows;
  /**
   * For a buffer changed in place ({@link ScratchBuffer.touchRows}): the content of the
   * same key it held before, `seq`, which its rows from `from` on still hold.
   */
  readonly before?: { readonly seq: number; readonly from: number };
}

/**
 * Rows of a buffer known equal to the row above: row y is the `rowBytes` bytes at
 * `y * pitch`, equal to row y - 1 where `same[y] !== 0`; rows past `same`'s length are
 * not claimed.
 */
export interface SameRows {
  readonly pitch: number;
  readonly rowBytes: number;
  readonly same: Uint8Array;
}

/**
 * `s`'s claim for rows of `rowBytes` bytes at `pitch` (the same rows, or their first
 * bytes), else undefined: a claim about other byte ranges says nothing of these.
 */
export function sameRowsAs(
  s: SameRows | undefined,
  pitch: number,
  rowBytes: number,
): Uint8Array | undefined {
  return s !== undefined && s.pitch === pitch && rowBytes <= s.rowBytes ? s.same : undefined;
}

/**
 * Scratch buffers that outlive a run: a pipeline run takes one per stage by the stage's
 * name and gives them back at its end, so the next run in this thread (the main job and
 * sweeps boot a machine per run) reuses the memory, and often what it holds.
 */
export class ScratchPool {
  readonly #free = new Map<string, ScratchBuffer>();
  readonly #max: number;

  constructor(max = 8) {
    this.#max = max;
  }

  /** The buffer last given back under `name`, else any free one, else a new one. */
  take(name: string): ScratchBuffer {
    let b = this.#free.get(name);
    if (b !== undefined) {
      this.#free.delete(name);
      return b;
    }
    const any = this.#free.keys().next();
    if (any.done === true) return new ScratchBuffer();
    b = this.#free.get(any.value)!;
    this.#free.delete(any.value);
    return b;
  }

  /** Gives `b` back under `name` (the oldest free buffer is dropped beyond the pool's size). */
  give(name: string, b: ScratchBuffer): void {
    this.#free.delete(name);
    this.#free.set(name, b);
    while (this.#free.size > this.#max) this.#free.delete(this.#free.keys().next().value!);
  }
}
