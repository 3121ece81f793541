/**
 * Time, injected. Each role reads the time and sets its timers through one
 * Clock, never through performance.now() or setTimeout directly, so that the
 * same code runs on the wall clock in the product and on a virtual clock in
 * tests (test/support/virtual-clock.ts), where a 300 s patience or a 200 ms
 * round trip costs no wall time.
 *
 * Timers carry a name (what they wait for), which a virtual clock can list
 * when a test stalls.
 */

/** A pending timer; cancelling it twice, or after it fired, does nothing. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds from an arbitrary origin; never goes backwards. */
  now(): number;
  /** Calls `fire` once, `ms` from now. A `background` timer does not keep the process alive. */
  after(ms: number, name: string, fire: () => void, options?: { background?: boolean }): Timer;
  /** Calls `fire` every `ms` until cancelled. */
  every(ms: number, name: string, fire: () => void): Timer;
  /** Resolves `ms` from now. */
  sleep(ms: number, name: string): Promise<void>;
}

/** `promise`'s value, or undefined if `ms` pass first on `clock` (a timer named `name`). */
export async function within<T>(promise: Promise<T>, ms: number, clock: Clock, name: string): Promise<T | undefined> {
  let timer: Timer | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = clock.after(ms, name, () => resolve(undefined));
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    timer?.cancel();
  }
}

/** The wall clock: performance.now() and the runtime's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  after(ms, _name, fire, options) {
    const handle = setTimeout(fire, ms);
    if (options?.background === true) handle.unref?.();
    return { cancel: () => clearTimeout(handle) };
  },
  every(ms, _name, fire) {
    const handle = setInterval(fire, ms);
    return { cancel: () => clearInterval(handle) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
