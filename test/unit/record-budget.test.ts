// The receiver's record budget (src/rx/session.ts): the window plus at most ASSEMBLY_BYTES of records still arriving, whatever the foot size.
import { expect, test } from "bun:test";
import { ASSEMBLY_BYTES, budgetRecords, maxWindowFeet } from "../../src/rx/record-budget.ts";
import { DEFAULT_BUFFER_BYTES } from "../../src/options.ts";
import { MAX_FOOT_BYTES } from "../../src/protocol/xdr.generated.ts";
import { MIB } from "../support/sizes.ts";

test("beyond the window the budget holds at most ASSEMBLY_BYTES of feet, and at least one record, for every foot size", () => {
  for (const footBytes of [64 * 1024, 1 * MIB, 2 * MIB, 3 * MIB, 8 * MIB, 9 * MIB, MAX_FOOT_BYTES]) {
    for (const bufferBytes of [DEFAULT_BUFFER_BYTES, 256 * MIB]) {
      const windowFeet = maxWindowFeet(footBytes, bufferBytes);
      const spare = budgetRecords(windowFeet, footBytes) - windowFeet;
      expect({ footBytes, bufferBytes, atMost: spare * footBytes <= ASSEMBLY_BYTES, atLeastOne: spare >= 1 }).toEqual({
        footBytes,
        bufferBytes,
        atMost: true,
        atLeastOne: true,
      });
    }
  }
});

test("16 MiB feet: the window and one record in assembly", () => {
  expect(budgetRecords(6, MAX_FOOT_BYTES)).toBe(7);
  expect(budgetRecords(64, 2 * MIB)).toBe(72);
});
