// One strict shape for bad-input tables: each row must be refused, with a failure on the named
// property whose reason matches.
import * as assert from "assert";
import type { Failure } from "../../providers/core/inputs";

export type BadInputRow = [what: string, change: Record<string, unknown>, property: string, reason: RegExp];

export function refusesEach(check: (raw: Record<string, unknown>) => { inputs?: unknown; failures: Failure[] }, valid: Record<string, unknown>, rows: BadInputRow[]): void {
  for (const [what, change, property, reason] of rows) {
    it(`refuses ${what}, naming ${property}`, () => {
      const { inputs, failures } = check({ ...valid, ...change });
      assert.strictEqual(inputs, undefined);
      const failure = failures.find((f) => f.property === property);
      assert.ok(failure, `no failure for ${property}: ${JSON.stringify(failures)}`);
      assert.match(failure.reason, reason);
    });
  }
}
