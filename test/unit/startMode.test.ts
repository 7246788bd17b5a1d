import * as assert from "assert";
import { startMode } from "../../scripts/local/startMode";

describe("npm start's mode", () => {
  it("is the twin by default, and with --twin or AMI_FACTORY_EMULATOR=twin", () => {
    assert.strictEqual(startMode([], {}), "twin");
    assert.strictEqual(startMode(["--keep"], {}), "twin");
    assert.strictEqual(startMode([], { AMI_FACTORY_EMULATOR: "twin" }), "twin");
    assert.strictEqual(startMode(["--twin"], { AMI_FACTORY_EMULATOR: "recorded" }), "twin");
  });

  it("is recorded with --recorded or AMI_FACTORY_EMULATOR=recorded", () => {
    assert.strictEqual(startMode(["--recorded"], {}), "recorded");
    assert.strictEqual(startMode([], { AMI_FACTORY_EMULATOR: "recorded" }), "recorded");
  });

  it("refuses unknown arguments, both modes at once and an unknown AMI_FACTORY_EMULATOR, naming the choices", () => {
    assert.throws(() => startMode(["--recoded"], {}), /unknown argument --recoded: npm start \[-- --recorded \| --twin\]/);
    assert.throws(() => startMode(["--recorded", "--twin"], {}), /exclude each other/);
    assert.throws(() => startMode([], { AMI_FACTORY_EMULATOR: "real" }), /AMI_FACTORY_EMULATOR=real: "twin" \(the default\) or "recorded"/);
  });
});
