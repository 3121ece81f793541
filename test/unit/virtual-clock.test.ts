/**
 * The virtual clock the pipeline tests run on: timers fire in time order,
 * periodic ones re-arm, cancelled ones never fire, and a test that waits on
 * something no timer will bring fails naming what is pending.
 */
import { describe, expect, test } from "bun:test";
import { VirtualClock } from "../support/virtual-clock.ts";

describe("VirtualClock", () => {
  test("advance fires due timers in time order, then stops at the target time", async () => {
    const clock = new VirtualClock();
    const fired: string[] = [];
    clock.after(300, "c", () => fired.push(`c@${clock.now()}`));
    clock.after(100, "a", () => fired.push(`a@${clock.now()}`));
    clock.after(100, "b", () => fired.push(`b@${clock.now()}`));
    clock.after(500, "late", () => fired.push("late"));
    await clock.advance(300);
    expect(fired).toEqual(["a@100", "b@100", "c@300"]);
    expect(clock.now()).toBe(300);
    expect(clock.pendingNames()).toEqual(["late at 500 ms"]);
  });

  test("every re-arms until cancelled; cancel stops a timer that has not fired", async () => {
    const clock = new VirtualClock();
    let ticks = 0;
    const tick = clock.every(250, "tick", () => ticks++);
    const never = clock.after(100, "never", () => expect.unreachable());
    never.cancel();
    await clock.advance(1_000);
    expect(ticks).toBe(4);
    tick.cancel();
    await clock.advance(1_000);
    expect(ticks).toBe(4);
  });

  test("promise chains started by a timer run before time moves on", async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    void (async () => {
      await clock.sleep(200, "first");
      seen.push(clock.now());
      await clock.sleep(300, "second");
      seen.push(clock.now());
    })();
    await clock.advance(10_000);
    expect(seen).toEqual([200, 500]);
  });

  test("until jumps to the next timer until the promise settles: 300 s of patience in no wall time", async () => {
    const clock = new VirtualClock();
    const started = performance.now();
    const gaveUp = new Promise<number>((resolve) => clock.after(300_000, "patience", () => resolve(clock.now())));
    clock.every(250, "watchdog", () => {});
    expect(await clock.until(gaveUp, 301_000)).toBe(300_000);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  test("until fails naming the pending timers when the limit comes first", async () => {
    const clock = new VirtualClock();
    clock.after(60_000, "reconnect", () => {});
    const never = new Promise(() => {});
    expect(clock.until(never, 1_000)).rejects.toThrow(/not settled after 1000 ms of virtual time .*reconnect at 60000 ms/);
  });

  test("until passes a rejection through", async () => {
    const clock = new VirtualClock();
    const failing = clock.sleep(50, "x").then(() => Promise.reject(new Error("peer vanished")));
    expect(clock.until(failing, 100)).rejects.toThrow("peer vanished");
  });
});
