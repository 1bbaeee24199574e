/**
 * Rows out of the pieces of a packed byte stream: a device reading rows where they lie
 * in memory (DmaDevice.readSegmentsInPlace) gets each row's bytes in one or more pieces
 * (a row split across a page of a scattered buffer or a 1 MiB chunk of DRAM comes in
 * two). A row that lies whole in one piece is handed on where it lies; a split one is
 * gathered into a buffer first. Two gather buffers alternate, so the row before the
 * one handed on is still valid: a consumer compares each row with the one above it.
 */
export class RowGather {
  readonly #gather: [Uint8Array | undefined, Uint8Array | undefined] = [undefined, undefined];
  /** Bytes of the stream seen so far (pieces come in order, without gaps). */
  #pos = 0;

  /**
   * @param rowBytes bytes per row
   * @param onRow told of row `y`, complete, at `bytes[off..off+rowBytes)`
   */
  constructor(
    readonly rowBytes: number,
    readonly onRow: (bytes: Uint8Array, off: number, y: number) => void,
  ) {
    if (!(rowBytes > 0)) throw new RangeError(`row-gather: ${rowBytes} bytes per row`);
  }

  /**
   * The piece `bytes[from..from+len)` (all of `bytes` by default), at offset `at` of the
   * stream (the end of the last piece).
   */
  push(bytes: Uint8Array, at: number, from = 0, len = bytes.length - from): void {
    if (at !== this.#pos)
      throw new RangeError(`row-gather: a piece at ${at} after ${this.#pos} bytes`);
    const R = this.rowBytes;
    const end = from + len;
    let i = from;
    while (i < end) {
      const pos = at + (i - from);
      const y = Math.floor(pos / R);
      const inRow = pos - y * R;
      if (inRow === 0 && end - i >= R) {
        this.onRow(bytes, i, y);
        i += R;
        continue;
      }
      const slot = y & 1;
      let buf = this.#gather[slot];
      if (buf === undefined) {
        buf = new Uint8Array(R);
        this.#gather[slot] = buf;
      }
      const k = Math.min(R - inRow, end - i);
      buf.set(bytes.subarray(i, i + k), inRow);
      i += k;
      if (inRow + k === R) this.onRow(buf, 0, y);
    }
    this.#pos += len;
  }

  /** Bytes pushed so far. */
  get length(): number {
    return this.#pos;
  }
}
