/**
 * A reusable host buffer for frame-sized work that lives only until the next use: the
 * bytes a display scans out, a GPU job's source and result, the frame a pipeline
 * expects. Allocating a fresh frame-sized array each time costs host page faults (on
 * the machines this runs on, first-touching 32 MiB takes longer than copying it many
 * times); one buffer per user, grown to the largest size asked, costs them once.
 */
export class ScratchBuffer {
  #buf = new Uint8Array(0);

  /**
   * A view of exactly `len` bytes, valid until the next call. Its contents are left
   * over from earlier uses: the caller writes every byte it later reads.
   */
  get(len: number): Uint8Array {
    if (this.#buf.length < len) this.#buf = new Uint8Array(len);
    return this.#buf.subarray(0, len);
  }
}
