/**
 * A small seeded pseudo-random generator (mulberry32), so every "random" choice in the
 * model (page scattering, test patterns) is the same for the same seed.
 */
export class Prng {
  /**
   * The state's 32 bits as an int32, stepped with `| 0` by both draws. Why: a uint32 past
   * 2^31 is a double to V8 (a heap number in the field, a double add in the loop); the
   * steps read only the bits, so the values are mulberry32's either way.
   */
  #s: number;
  constructor(seed: number) {
    this.#s = (seed >>> 0 || 0x9e3779b9) | 0;
  }

  /** Next 32-bit unsigned value. */
  nextU32(): number {
    this.#s = (this.#s + 0x6d2b79f5) | 0;
    return mulberry32(this.#s);
  }

  /** Integer in [0, n). */
  below(n: number): number {
    return this.nextU32() % n;
  }

  /**
   * `out[k] = base + below(n)` for `k` in `[0, count)`: the values of `count` calls of
   * {@link below}, in order. Why: a device write's speculative fills draw thousands of
   * lines; here the state stays in a local, and the remainder is taken without `%` on a
   * double (values past 2^31 are doubles to V8, and their `%` is a call into C's fmod).
   * `x - floor(x / n) * n` is exact for `x < 2^32`: the quotient's rounding error is far
   * below `1 / n`.
   */
  drawBelow(out: Float64Array, count: number, n: number, base: number): void {
    let s = this.#s;
    for (let k = 0; k < count; k++) {
      s = (s + 0x6d2b79f5) | 0;
      const x = mulberry32(s);
      out[k] = base + (x - Math.floor(x / n) * n);
    }
    this.#s = s;
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}

/** mulberry32's output for state `s` (after the state's step): one place for both draws. */
function mulberry32(s: number): number {
  let t = Math.imul(s ^ (s >>> 15), s | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
