/**
 * `chaos N`, as in the original: every N operations (feet sent or received)
 * a deterministic fault hits the connection that carried the foot, in turn
 * a graceful close, a reset, and a stall (the socket stays open but nothing
 * moves, which only the stall timeout can detect). Users rehearse recovery
 * with it; the tests use it to prove the output stays identical.
 */
export type ChaosFault = "close" | "reset" | "stall";

const FAULT_CYCLE: readonly ChaosFault[] = ["close", "reset", "stall"];

export class Chaos {
  private operations = 0;
  private faults = 0;

  /** `every` 0 disables chaos. */
  constructor(private readonly every: number) {}

  /** Counts one operation; returns the fault to inject now, if any. */
  tick(): ChaosFault | undefined {
    if (this.every <= 0) return undefined;
    this.operations++;
    if (this.operations % this.every !== 0) return undefined;
    return FAULT_CYCLE[this.faults++ % FAULT_CYCLE.length];
  }
}

/** What a connection must offer for chaos to hit it. */
export interface ChaosTarget {
  shutdown(): void;
  destroy(reason?: Error): void;
  stall(): void;
}

export function inject(fault: ChaosFault, target: ChaosTarget): void {
  if (fault === "close") target.shutdown();
  else if (fault === "reset") target.destroy(new Error("chaos: connection reset"));
  else target.stall();
}
