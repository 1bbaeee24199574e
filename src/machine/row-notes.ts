/**
 * Rows of DRAM known equal by the structure of the DMA write that put them there.
 *
 * A device that writes a frame whose rows it knows (a test pattern's colour bars, a
 * GPU's result made of a few distinct rows) says which rows equal the row above; a
 * device that later reads the same bytes as rows of the same length (a GPU job's
 * source, a display's scanout) then knows it without comparing them, which is a pass
 * over the frame (the host's memcmp) less. Nothing here is a guess: a note names the
 * physical pieces the write landed on, in order, and holds only while no byte of them
 * has been written again ({@link PhysicalMemory.lastWriteIn}, tracked per page). A
 * write during which anything else wrote memory (a dirty line evicted by a speculative
 * fill), that did not land whole (an IOMMU fault) or whose pieces overlap leaves no
 * note; a reader without a note compares, as before. A note written over in part no
 * longer answers a reader, but still tells the writer of the next frame of its key
 * which of its bytes DRAM keeps (those after the last page written since).
 */

import { MEMORY_CHUNK_SHIFT, PAGE_SHIFT, PAGE_SIZE, type PhysicalMemory } from "./memory.js";

/**
 * What a frame is, when its producer knows it as a function of a few parameters (the
 * shape of `ScratchContent`, src/lib/scratch.ts): the product named by `key` for the
 * value `seq` of its one varying parameter. Two frames of one key differ at most in
 * their first `rows` rows (the larger count of the two); every other byte is the same.
 */
export interface RowContent {
  readonly key: string;
  readonly seq: number;
  readonly rows: number;
}

/** Which rows of a frame equal the row above, as the frame's producer knows them. */
export interface RowStructure {
  /** Bytes per row of the stream written (rows packed: a row's end is the next's start). */
  readonly rowBytes: number;
  /**
   * `same[y] !== 0`: row y is byte for byte row y - 1 (never claimed for row 0). Rows
   * beyond its length, and rows with 0, are not known either way.
   */
  readonly same: Uint8Array;
  /**
   * What the whole stream written is, when known: a later write of another frame of
   * the same key over exactly these bytes need not copy the rows both frames share.
   */
  readonly content?: RowContent | undefined;
}

/** What DRAM is known to hold at a reader's bytes (see {@link RowNotes.known}). */
export interface KnownRows {
  /** `same[y] !== 0`: row y equals row y - 1 (the rows the reader's bytes hold whole). */
  readonly same: Uint8Array;
  /** What the noted stream is, when its producer said (the reader's bytes are its start). */
  readonly content: RowContent | undefined;
}

/** The physical pieces of a byte stream in stream order, adjacent pieces merged. */
export class PhysRuns {
  /** start, length pairs. */
  runs = new Float64Array(64);
  /** Pairs in {@link runs}. */
  count = 0;
  /** Bytes of the stream. */
  bytes = 0;

  reset(): void {
    this.count = 0;
    this.bytes = 0;
    this.#cursor = 0;
    this.#cursorAt = 0;
  }

  /** The next `len` bytes of the stream lie at `phys`. */
  add(phys: number, len: number): void {
    if (len <= 0) return;
    this.bytes += len;
    const n = this.count;
    const r = this.runs;
    if (n > 0 && r[2 * n - 2]! + r[2 * n - 1]! === phys) {
      r[2 * n - 1] = r[2 * n - 1]! + len;
      return;
    }
    if (2 * n + 2 > r.length) {
      const grown = new Float64Array(r.length * 2);
      grown.set(r);
      this.runs = grown;
    }
    this.runs[2 * n] = phys;
    this.runs[2 * n + 1] = len;
    this.count = n + 1;
  }

  /**
   * Whether the stream's bytes `[at, at+len)` lie at `phys`, contiguous. Asked in
   * increasing order of `at` (a cursor walks the pieces; it starts over when asked
   * about an earlier byte).
   */
  holds(at: number, len: number, phys: number): boolean {
    if (at < this.#cursorAt) {
      this.#cursor = 0;
      this.#cursorAt = 0;
    }
    const r = this.runs;
    while (this.#cursor < this.count && this.#cursorAt + r[2 * this.#cursor + 1]! <= at) {
      this.#cursorAt += r[2 * this.#cursor + 1]!;
      this.#cursor++;
    }
    if (this.#cursor >= this.count) return false;
    const inRun = at - this.#cursorAt;
    return r[2 * this.#cursor]! + inRun === phys && inRun + len <= r[2 * this.#cursor + 1]!;
  }
  #cursor = 0;
  #cursorAt = 0;

  /** Copies `o`'s pieces into this. */
  copyFrom(o: PhysRuns): void {
    if (this.runs.length < 2 * o.count) this.runs = new Float64Array(o.runs.length);
    this.runs.set(o.runs.subarray(0, 2 * o.count));
    this.count = o.count;
    this.bytes = o.bytes;
    this.#cursor = 0;
    this.#cursorAt = 0;
  }
}

interface RowNote {
  readonly runs: PhysRuns;
  rowBytes: number;
  /** Rows known (the producer's claims, cut to the rows the stream holds whole). */
  rows: number;
  same: Uint8Array;
  /** memory.writeSeq when the write ended: the note holds while its pages are no newer. */
  seq: number;
  content: RowContent | undefined;
  /**
   * A page of it was found written since: it no longer holds for a reader of the whole
   * stream, but still tells a writer of the next frame which bytes DRAM keeps
   * ({@link RowNotes.unchangedFrom}).
   */
  stale: boolean;
}

/** Notes kept per machine: a pipeline's buffers in flight (each note is one frame's pieces). */
const MAX_NOTES = 16;

const CHUNK_PAGES = 1 << (MEMORY_CHUNK_SHIFT - PAGE_SHIFT);

/** The notes of one machine's DRAM (one per {@link SystemBus}). */
export class RowNotes {
  readonly #notes: RowNote[] = [];
  /** The pieces of the write being noted. */
  readonly #writing = new PhysRuns();
  #open = false;
  /** Per chunk, per page: the check that a note's pieces do not overlap (by generation). */
  readonly #pageGen: (Int32Array | undefined)[] = [];
  readonly #pageHi: (Uint16Array | undefined)[] = [];
  #gen = 0;

  constructor(readonly memory: PhysicalMemory) {}

  /** Notes held (for tests). */
  get size(): number {
    return this.#notes.length;
  }

  /**
   * A noted write begins: the returned runs collect the pieces it lands on (the device
   * adds each piece as the bus writes it). One at a time.
   */
  begin(): PhysRuns {
    if (this.#open) throw new Error("row-notes: a noted write is already open");
    this.#open = true;
    this.#writing.reset();
    return this.#writing;
  }

  /**
   * The noted write ended. It asked for `asked` bytes in `pieces` bus writes, starting
   * when memory's writeSeq was `seq0`; `rows` is what its source knew. Keeps a note if
   * exactly its own pieces were written (one writeSeq each), all of them, without
   * overlap; drops older notes of the same first byte.
   */
  end(rows: RowStructure, seq0: number, asked: number, pieces: number): void {
    this.#open = false;
    const w = this.#writing;
    const seq = this.memory.writeSeq;
    if (seq - seq0 !== pieces || w.bytes !== asked || w.count === 0) return;
    const R = rows.rowBytes;
    const n = Math.min(rows.same.length, Math.floor(w.bytes / R));
    if (!(R > 0) || n < 2 || this.#overlaps(w)) return;
    const first = w.runs[0]!;
    let note: RowNote | undefined;
    for (let i = 0; i < this.#notes.length; i++)
      if (this.#notes[i]!.runs.runs[0] === first) {
        note = this.#notes[i]!;
        this.#notes.splice(i, 1);
        break;
      }
    if (note === undefined && this.#notes.length >= MAX_NOTES) note = this.#notes.shift();
    note ??= {
      runs: new PhysRuns(),
      rowBytes: 0,
      rows: 0,
      same: new Uint8Array(0),
      seq: 0,
      content: undefined,
      stale: false,
    };
    note.runs.copyFrom(w);
    note.rowBytes = R;
    note.rows = n;
    if (note.same.length < n) note.same = new Uint8Array(n);
    note.same.set(rows.same.subarray(0, n));
    note.same[0] = 0;
    note.seq = seq;
    note.stale = false;
    const c = rows.content;
    note.content = c === undefined ? undefined : { key: c.key, seq: c.seq, rows: c.rows };
    this.#notes.push(note);
  }

  /**
   * Which rows of `rowBytes` bytes of the stream `reader` names DRAM holds equal to the
   * row above, and what the stream is, by the note of the write that put exactly these
   * bytes there (the same pieces from the first byte on, no byte of them written
   * since); undefined when no note holds. The result is the note's: valid until memory
   * is next written.
   */
  known(reader: PhysRuns, rowBytes: number): KnownRows | undefined {
    const note = this.#noteOf(reader, rowBytes);
    if (note === undefined || note.stale) return undefined;
    const rr = reader.runs;
    for (let i = 0; i < reader.count; i++) {
      if (this.memory.lastWriteIn(rr[2 * i]!, rr[2 * i + 1]!) > note.seq) {
        // Written since: the note never holds again for a reader (a writer of the next
        // frame still learns from it which bytes DRAM keeps).
        note.stale = true;
        return undefined;
      }
    }
    return {
      same: note.same.subarray(0, Math.min(note.rows, Math.floor(reader.bytes / rowBytes))),
      content: note.content,
    };
  }

  /**
   * The note of exactly the stream `reader` names, as rows of `rowBytes`: the latest
   * whose pieces begin where the reader's do, if the reader's are its pieces from the
   * first on (the last one may be shorter); written over since or not.
   */
  #noteOf(reader: PhysRuns, rowBytes: number): RowNote | undefined {
    const n = reader.count;
    if (n === 0) return undefined;
    const rr = reader.runs;
    for (let k = this.#notes.length - 1; k >= 0; k--) {
      const note = this.#notes[k]!;
      const nr = note.runs;
      if (nr.runs[0] !== rr[0] || note.rowBytes !== rowBytes) continue;
      if (reader.bytes > nr.bytes || n > nr.count) return undefined;
      for (let i = 0; i < n; i++) {
        if (nr.runs[2 * i] !== rr[2 * i]) return undefined;
        const len = rr[2 * i + 1]!;
        const have = nr.runs[2 * i + 1]!;
        if (i + 1 < n ? len !== have : len > have) return undefined;
      }
      return note;
    }
    return undefined;
  }

  /**
   * For a writer about to write a frame over exactly the stream `reader` names: what the
   * note of that stream (the one {@link known} would find) says the stream is, and from
   * which of its bytes on DRAM still holds it, no page of them written since the note
   * (`from`: 0 when none was; the stream's length when its last page was). Unlike
   * {@link known}, a note written over in part still answers for the rest (a CPU that
   * stamped the top rows of a frame in place leaves the rows below as the camera wrote
   * them). Undefined when no note covers exactly this stream or its producer did not
   * say what it is. Leaves the notes as they are.
   */
  unchangedFrom(
    reader: PhysRuns,
    rowBytes: number,
  ): { readonly content: RowContent; readonly from: number } | undefined {
    const note = this.#noteOf(reader, rowBytes);
    const content = note?.content;
    if (note === undefined || content === undefined) return undefined;
    const rr = reader.runs;
    // From the last piece back: the end of the last page written since the note.
    let end = reader.bytes;
    for (let i = reader.count - 1; i >= 0; i--) {
      const phys = rr[2 * i]!;
      const len = rr[2 * i + 1]!;
      end -= len;
      if (this.memory.lastWriteIn(phys, len) <= note.seq) continue;
      // The last written page: the last written 1 MiB block of the piece, then its page.
      const hi = this.#lastWritten(phys, phys + len, CHUNK_PAGES * PAGE_SIZE, note.seq);
      const lo = Math.max(phys, hi - CHUNK_PAGES * PAGE_SIZE);
      const last = this.#lastWritten(lo, hi, PAGE_SIZE, note.seq);
      return { content, from: end + (last - phys) };
    }
    return { content, from: 0 };
  }

  /**
   * The end of the last block of `[from, to)` (blocks of `block` bytes aligned from the
   * base of RAM, cut to the range) written after writeSeq `seq`, one of them known to be.
   */
  #lastWritten(from: number, to: number, block: number, seq: number): number {
    const base = this.memory.base;
    let lo = base + Math.floor((to - 1 - base) / block) * block;
    for (;;) {
      const a = Math.max(lo, from);
      const b = Math.min(lo + block, to);
      if (a <= from || this.memory.lastWriteIn(a, b - a) > seq) return b;
      lo -= block;
    }
  }

  /**
   * Whether two pieces of `w` share a byte. Per page, the end of what earlier pieces
   * covered in it: a piece starting below that end is taken as overlapping (pieces of a
   * page out of order are rare, and a false "overlaps" only costs the note).
   */
  #overlaps(w: PhysRuns): boolean {
    const r = w.runs;
    // Pieces in increasing order (a contiguous buffer, or pages allocated in order)
    // cannot share a byte: no page to mark.
    let sorted = true;
    for (let i = 1; i < w.count && sorted; i++) sorted = r[2 * i]! >= r[2 * i - 2]! + r[2 * i - 1]!;
    if (sorted) return false;
    const gen = ++this.#gen;
    const base = this.memory.base;
    for (let i = 0; i < w.count; i++) {
      let at = r[2 * i]! - base;
      const end = at + r[2 * i + 1]!;
      while (at < end) {
        const page = Math.floor(at / PAGE_SIZE);
        const ci = Math.floor(page / CHUNK_PAGES);
        const pi = page - ci * CHUNK_PAGES;
        let gens = this.#pageGen[ci];
        let his = this.#pageHi[ci];
        if (gens === undefined || his === undefined) {
          gens = new Int32Array(CHUNK_PAGES);
          his = new Uint16Array(CHUNK_PAGES);
          this.#pageGen[ci] = gens;
          this.#pageHi[ci] = his;
        }
        const lo = at - page * PAGE_SIZE;
        const hi = Math.min(end - page * PAGE_SIZE, PAGE_SIZE);
        if (gens[pi] === gen && lo < his[pi]!) return true;
        gens[pi] = gen;
        his[pi] = hi;
        at = page * PAGE_SIZE + hi;
      }
    }
    return false;
  }
}
