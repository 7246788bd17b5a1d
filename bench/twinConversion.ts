// One real conversion end to end on the twin (AMI_FACTORY_EMULATOR=twin), in place against copy,
// side by side in one run (by hand, not npm test; as root the first time: the demo PV disk):
//
//   bash scripts/setup.sh --twin && bash scripts/local/with-toolchain.sh node -r ts-node/register bench/twinConversion.ts
//
// The PV disk of `npm start` (scripts/local/demoDisk.ts) is imported (ImportSnapshot) and registered
// paravirtual; then, through the real engine, one ConvertedHvmAmi with method "in-place", and after
// it (one at a time: the machine's two cores would blur the times) one with method "copy". For each:
// the wall time of its `up` (worker VM, guest script, snapshot, register, the test launch booted in
// qemu), the guest script's own seconds and bytes written to the volume that becomes the image (the
// facts' bytesWritten), and the new snapshot's data against the source snapshot: ListChangedBlocks
// (EBS direct APIs) from the source to the new snapshot, as a share of the source's used bytes (its
// blocks that hold data, ListSnapshotBlocks). A copy's snapshot shares no lineage with the source
// (a new empty volume): all its blocks are new data. Goal (issue 19): in place adds < 0.1% of the
// source's used bytes as new snapshot data. BENCH_VERIFY=false skips the test launches.
import * as fs from "fs";
import * as path from "path";
import { performance } from "perf_hooks";
import * as pulumi from "@pulumi/pulumi";
import { ConvertedHvmAmi } from "../providers";
import { startEmulator } from "../scripts/emulator/start";
import { demoDisk } from "../scripts/local/demoDisk";
import { localStack } from "../scripts/local/engine";
import { changedBlocks, countSnapshotBlocks } from "../scripts/local/snapshotBytes";
import { REPO_ROOT } from "../scripts/local/toolchain";
import { importSnapshot, putObject, registerPv } from "../scripts/local/twinImport";

const REGION = "us-east-1";
const METHODS = ["in-place", "copy"] as const;
type Method = (typeof METHODS)[number];

interface Result {
  method: Method;
  seconds: number;
  guestSeconds: number;
  bytesWritten: number;
  newDataBytes: number;
  lineage: "changed blocks" | "no common lineage: all blocks";
  snapshotId: string;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(4)}%`;

async function newData(source: string, snapshotId: string): Promise<Pick<Result, "newDataBytes" | "lineage">> {
  try {
    const c = await changedBlocks(REGION, source, snapshotId);
    return { newDataBytes: c.blocks.filter((b) => b.SecondBlockToken).length * c.blockSize, lineage: "changed blocks" };
  } catch (e) {
    // "Snapshots of no common lineage: ValidationException UNRELATED_SNAPSHOTS" (the emulator, as the EBS direct APIs).
    if ((e as { name?: string }).name !== "ValidationException" || !/lineage/.test((e as Error).message)) throw e;
    const all = await countSnapshotBlocks(REGION, snapshotId);
    return { newDataBytes: all.blocks * all.blockSize, lineage: "no common lineage: all blocks" };
  }
}

async function main(): Promise<void> {
  const disk = demoDisk((l) => console.log(`demo disk: ${l}`));
  const emu = await startEmulator({ mode: "twin", env: { MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } });
  try {
    Object.assign(process.env, emu.env);
    await putObject(REGION, "bench", "pv.vmdk", disk.file);
    const sourceSnapshot = await importSnapshot(REGION, "bench", "pv.vmdk", "bench: PV source");
    const sourceAmi = await registerPv(REGION, "bench-pv", sourceSnapshot);
    const used = await countSnapshotBlocks(REGION, sourceSnapshot);
    const usedBytes = used.blocks * used.blockSize;
    console.log(`source: ${sourceAmi} on ${sourceSnapshot}, ${mib(usedBytes)} used (${used.blocks} blocks of ${used.blockSize} bytes with data)`);

    const verify = process.env.BENCH_VERIFY !== "false";
    const workDir = path.join(REPO_ROOT, ".local/bench-twin");
    fs.rmSync(workDir, { recursive: true, force: true });
    const active = new Set<Method>();
    const program = async () => {
      const out: Record<string, pulumi.Output<unknown>> = {};
      for (const method of METHODS.filter((m) => active.has(m))) {
        const image = new ConvertedHvmAmi(`bench-${method}`, { sourceAmiId: sourceAmi, method, name: `bench-${method}`, ...(verify ? {} : { verify: false }) });
        out[method] = pulumi.all([image.snapshotId, image.facts]).apply(([snapshotId, facts]) => ({ snapshotId, facts }));
      }
      return out;
    };
    const stack = await localStack({ stackName: "bench-twin", workDir, env: emu.env, program });
    await stack.setConfig("aws:region", { value: REGION });

    const results: Result[] = [];
    for (const method of METHODS) {
      active.add(method);
      console.log(`pulumi up: ConvertedHvmAmi method ${method}${verify ? " (and its test launch)" : " (verify: false)"}`);
      const t = performance.now();
      const up = await stack.up({ onOutput: (s) => process.stdout.write(s) });
      const seconds = (performance.now() - t) / 1000;
      const { snapshotId, facts } = up.outputs[method].value as { snapshotId: string; facts: { bytesWritten: number; seconds: number; method: string } };
      if (facts.method !== method) throw new Error(`asked for ${method}, the guest script did ${facts.method}`);
      results.push({ method, seconds, guestSeconds: facts.seconds, bytesWritten: facts.bytesWritten, snapshotId, ...(await newData(sourceSnapshot, snapshotId)) });
    }
    await stack.destroy({ onOutput: () => undefined });

    const [inPlace, copy] = results;
    const row = (label: string, f: (r: Result) => string, ratio?: string) =>
      console.log(`${label.padEnd(44)} ${f(inPlace).padStart(16)} ${f(copy).padStart(16)}${ratio ? `   copy/in place ${ratio}` : ""}`);
    console.log(`\n${"".padEnd(44)} ${"in place".padStart(16)} ${"copy".padStart(16)}`);
    row("wall time of the up (s)", (r) => r.seconds.toFixed(1), (copy.seconds / inPlace.seconds).toFixed(2));
    row("guest script (s, facts)", (r) => String(r.guestSeconds), (copy.guestSeconds / Math.max(inPlace.guestSeconds, 1)).toFixed(2));
    row("bytes written to the volume (facts)", (r) => mib(r.bytesWritten), (copy.bytesWritten / Math.max(inPlace.bytesWritten, 1)).toFixed(1));
    row("new snapshot data vs the source", (r) => mib(r.newDataBytes), (copy.newDataBytes / Math.max(inPlace.newDataBytes, 1)).toFixed(1));
    row("  as a share of the source's used bytes", (r) => pct(r.newDataBytes, usedBytes));
    row("  measured as", (r) => (r.lineage === "changed blocks" ? "ListChangedBlocks" : "all blocks"));
    const share = inPlace.newDataBytes / usedBytes;
    console.log(`\ngoal: in place adds < 0.1% of the source's used bytes as new snapshot data: ${pct(inPlace.newDataBytes, usedBytes)} → ${share < 0.001 ? "met" : "NOT met"}`);
  } finally {
    await emu.stop();
  }
}

main().catch((e) => {
  console.error(`bench/twinConversion: ${e instanceof Error ? e.stack : String(e)}`);
  process.exit(1);
});
