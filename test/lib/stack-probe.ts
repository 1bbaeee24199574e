/**
 * Functions outside the model's layers (this file's path names none of them) that call
 * back, each in a way a stack frame prints differently: for the fault injector's call-site
 * tests (test/machine/fault-inject-stacks.test.ts), which build stacks of these and of
 * frames of the layers.
 */

/** Calls `f` from a named function. */
export function probeNamed<T>(f: () => T): T {
  return f();
}

/** Calls `f` from an arrow function held by a named one (a frame named after the arrow's binding). */
export function probeArrow<T>(f: () => T): T {
  const g = (): T => f();
  return g();
}

/** Calls `f` from an anonymous arrow that `through` (another module's function) calls. */
export function probeThrough<T>(through: (g: () => T) => T, f: () => T): T {
  return through(() => f());
}

/** A class method's frame ("Probe.method"), and one called under another name ("[as alias]"). */
export class Probe {
  method<T>(f: () => T): T {
    return f();
  }
}

/** {@link Probe.method} called as `alias`. */
export function probeAlias<T>(f: () => T): T {
  const o = { alias: new Probe().method };
  return o.alias(f);
}
