/**
 * procfs fd information (fs/proc/fd.c): /proc/<pid>/fdinfo/<fd>, a read-only seq_file.
 * Its text is made at the first read (seq_show): "pos", "flags" (f_flags plus O_CLOEXEC
 * when the fd has it, in octal), then the file's own show_fdinfo lines (a dma-buf's
 * size, count, exp_name and name), after "mnt_id" and "ino" (./mount.ts).
 */

import { ensure, KernelError } from "../errno.js";
import { O_ACCMODE, O_RDONLY } from "../include/uapi/fcntl.js";
import { File, type FileOperations, simpleReadFromBuffer } from "./file.js";
import { MNT_ID } from "./mount.js";

interface FdinfoState {
  /** Makes the text (throws ENOENT once the fd is gone). */
  readonly show: () => string;
  text: string | undefined;
  pos: number;
}

const fdinfoFops: FileOperations = {
  name: "proc-fdinfo",
  read(file, len) {
    const st = file.privateData as FdinfoState;
    if (st.text === undefined) st.text = st.show();
    return simpleReadFromBuffer(st, new TextEncoder().encode(st.text), len);
  },
};

/** The path's pid ("self" or a number) and fd, or undefined when it is not an fdinfo path. */
export function parseFdinfoPath(path: string): { pid: "self" | number; fd: number } | undefined {
  const m = /^\/proc\/(self|\d+)\/fdinfo\/(\d+)$/.exec(path);
  if (m === null) return undefined;
  return { pid: m[1] === "self" ? "self" : Number(m[1]), fd: Number(m[2]) };
}

/**
 * Opens /proc/<pid>/fdinfo/<fd> (proc_fdinfo_instantiate + seq_fdinfo_open). `exists`
 * says whether the fd is open now (ENOENT otherwise); `show` makes the text at the
 * first read. Only reading is allowed (mode 0400; the model has no write for it).
 */
export function procFdinfoOpen(
  path: string,
  flags: number,
  exists: boolean,
  show: () => string,
): File<FdinfoState> {
  if (!exists) throw new KernelError("ENOENT", `${path}: no such fd`);
  ensure((flags & O_ACCMODE) === O_RDONLY, "EACCES", `${path}: fdinfo is read-only`);
  const file = new File<FdinfoState>(fdinfoFops, { show, text: undefined, pos: 0 }, flags, path);
  file.mntId = MNT_ID.proc;
  return file;
}
