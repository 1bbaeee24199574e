/**
 * Little-endian C struct access over bytes, the way both sides of an ioctl see its
 * argument: userspace fills a struct, the kernel copies it in, reads fields, writes
 * results back. 64-bit fields are read as numbers (exact to 2^53, which covers every
 * size and address the model uses) and rejected beyond that rather than rounded.
 */

export class CStruct {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  static alloc(size: number): CStruct {
    return new CStruct(new Uint8Array(size));
  }
  u32(off: number): number {
    return this.view.getUint32(off, true);
  }
  s32(off: number): number {
    return this.view.getInt32(off, true);
  }
  /** A __u64 as a number; values past 2^53 come back as Infinity so checks reject them. */
  u64(off: number): number {
    const v = this.view.getBigUint64(off, true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
  }
  setU32(off: number, v: number): this {
    this.view.setUint32(off, v >>> 0, true);
    return this;
  }
  setS32(off: number, v: number): this {
    this.view.setInt32(off, v | 0, true);
    return this;
  }
  setU64(off: number, v: number | bigint): this {
    this.view.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
    return this;
  }
  /** A NUL-terminated char[len] field. */
  cstr(off: number, len: number): string {
    let end = off;
    while (end < off + len && this.bytes[end] !== 0) end++;
    return new TextDecoder().decode(this.bytes.subarray(off, end));
  }
  /** Writes a string into char[len], truncated to len-1 bytes and NUL-terminated (strscpy). */
  setCstr(off: number, len: number, s: string): this {
    const enc = new TextEncoder().encode(s).subarray(0, len - 1);
    this.bytes.fill(0, off, off + len);
    this.bytes.set(enc, off);
    return this;
  }
}
