/**
 * The vivid driver's public face: probe it into a kernel (vividProbe), compute the frames
 * its capture device writes (vividTestPattern), and the CRC its output device records.
 */

export { type Vivid, type VividOptions, vividProbe } from "./vivid-core.js";
export { type TpgFormat, tpgDecodeSequence, vividTestPattern } from "./vivid-tpg.js";
export { VividCapture } from "./vivid-vid-cap.js";
export { VividOutput, type VividOutputFrame } from "./vivid-vid-out.js";
