// bench/costModel.ts, the paper model of issue 12: its shape, not its numbers.
import * as assert from "assert";
import { conversionCost, costTable, METHODS, ROOT_SIZES_GIB, SCENARIOS } from "../../bench/costModel";

describe("conversion cost model", () => {
  for (const s of SCENARIOS) {
    it(`${s.name}: dd and the copy grow with the root, in place does not`, () => {
      for (const [small, large] of ROOT_SIZES_GIB.slice(1).map((g, i) => [ROOT_SIZES_GIB[i], g])) {
        for (const m of ["dd", "copy"] as const) assert.ok(conversionCost(m, large, s).minutes > conversionCost(m, small, s).minutes, `${m} ${small} → ${large} GiB`);
        assert.strictEqual(conversionCost("in-place", large, s).minutes, conversionCost("in-place", small, s).minutes);
      }
    });

    it(`${s.name}: in place costs least and dd most, in time and in snapshot blocks, at every size`, () => {
      for (const g of ROOT_SIZES_GIB) {
        const [dd, copy, inPlace] = METHODS.map((m) => conversionCost(m, g, s));
        assert.ok(dd.minutes > copy.minutes && copy.minutes > inPlace.minutes, `${g} GiB`);
        assert.ok(dd.writtenMiB > copy.writtenMiB && copy.writtenMiB > inPlace.writtenMiB, `${g} GiB`);
      }
    });
  }

  it("is slower when first reads come from S3 than with fast snapshot restore", () => {
    const [lazy, fsr] = SCENARIOS;
    for (const m of METHODS) assert.ok(conversionCost(m, 200, lazy).minutes > conversionCost(m, 200, fsr).minutes, m);
  });

  it("prints one row per root size and scenario", () => assert.strictEqual(costTable().split("\n").length, 2 + ROOT_SIZES_GIB.length * SCENARIOS.length));
});
