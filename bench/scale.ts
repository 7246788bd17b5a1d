// Fleet scale on the emulator through the real engine, side by side in one run (by hand, not npm test):
//
//   bash scripts/setup.sh && node -r ts-node/register bench/scale.ts
//
// 1 image × 1 region `up` (several times, interleaved with the rest, median), 10 images × 16 regions
// shared with 2 accounts, the same with Node's default young generation (no NODE_OPTIONS) and behind
// the fault proxy at 20%, `preview` of 100 entries against 1 entry (5 times each, interleaved,
// median), and `destroy` of each. Prints the ratios against the goals of issue 13, AWS calls, peak
// requests in flight, state bytes per resource and the provider's peak memory. The machine is
// shared and loaded: read the ratios, not the seconds.
import * as fs from "fs";
import * as path from "path";
import { performance } from "perf_hooks";
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { seedHvmImage, seedPvImage } from "../test/support/aws";
import { PV2HVM_FACTS } from "../test/support/facts";
import { bootByDefault } from "../test/support/hooks";
import { startEmulator } from "../test/support/emulator";
import { startFaultProxy } from "../test/support/faultProxy";
import { testStack, TestStack } from "../test/support/stack";
import { startCallMeter, watchProviders, CallMeter } from "./meter";
import { SEMI_SPACE_FLAG } from "../scripts/local/nodeOptions";

const SOURCE_REGION = "us-east-1";
const REGIONS_16 = [
  "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-west-1", "eu-west-2", "eu-west-3",
  "eu-central-1", "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-south-1", "me-south-1",
];
const ACCOUNTS = ["111122223333", "444455556666"];
const BASELINE_RUNS = 5;
const PREVIEW_RUNS = 5;
const MARKER = "AMI_FACTORY_BENCH_RUN";

interface Measure {
  label: string;
  seconds: number;
  calls: number;
  peakInFlight: number;
  peakMiB: number;
  cpuSeconds: number;
}

const measures: Measure[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(label: string, meter: CallMeter, runId: string, op: () => Promise<unknown>): Promise<Measure> {
  meter.reset();
  const providers = watchProviders(MARKER, runId);
  const started = performance.now();
  try {
    await op();
  } finally {
    const m = { label, seconds: (performance.now() - started) / 1000, ...meter.read(), ...providers.stop() };
    measures.push(m);
    console.log(`  ${label}: ${m.seconds.toFixed(1)} s, ${m.calls} AWS calls, ${m.peakInFlight} in flight at most, provider ${m.peakMiB.toFixed(0)} MiB, ${m.cpuSeconds.toFixed(1)} CPU s`);
  }
  return measures[measures.length - 1];
}

/** Bytes of each ami-factory resource in the exported state, and of the state file. */
async function stateBytes(t: TestStack): Promise<{ perResource: Record<string, number>; file: number }> {
  const state = await t.stack.exportStack();
  const perResource: Record<string, number> = {};
  for (const r of state.deployment.resources ?? []) {
    if (!String(r.type).startsWith("pulumi-nodejs:")) continue;
    const kind = String(r.type).split(":").pop()!;
    perResource[kind] = Math.max(perResource[kind] ?? 0, JSON.stringify(r).length);
  }
  const stateDir = path.join(t.workDir, "state", ".pulumi", "stacks");
  const files = fs.existsSync(stateDir) ? fs.readdirSync(stateDir, { recursive: true }).map(String).filter((f) => f.endsWith(".json")) : [];
  const file = files.reduce((n, f) => n + fs.statSync(path.join(stateDir, f)).size, 0);
  return { perResource, file };
}

/** Copies made by ami-factory per region, by build id: a count above 1 is a duplicate copy. */
async function copiesByBuild(endpoint: string, regions: string[]): Promise<{ total: number; duplicates: string[]; snapshots: number }> {
  let total = 0;
  let snapshots = 0;
  const duplicates: string[] = [];
  for (const region of regions) {
    const ec2 = new EC2Client({ region, endpoint });
    const images = ((await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "tag-key", Values: ["ami-factory:build-id"] }] }))).Images ?? []).filter((i) => i.State !== "deregistered");
    const byBuild: Record<string, number> = {};
    for (const i of images) {
      const id = i.Tags?.find((x) => x.Key === "ami-factory:build-id")?.Value ?? "?";
      byBuild[id] = (byBuild[id] ?? 0) + 1;
    }
    total += images.length;
    duplicates.push(...Object.entries(byBuild).filter(([, n]) => n > 1).map(([id, n]) => `${region}: ${n} copies of ${id}`));
    snapshots += ((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag-key", Values: ["ami-factory:build-id"] }] }))).Snapshots ?? []).length;
  }
  return { total, duplicates, snapshots };
}

async function main() {
  const runId = `${process.pid}-${Date.now().toString(36)}`;
  const emu = await startEmulator({ env: { MOTO_EC2_LOAD_DEFAULT_AMIS: "false", MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } });
  Object.assign(process.env, emu.env);
  const meter = await startCallMeter(emu.endpoint);
  const fault = await startFaultProxy(emu.endpoint, { rate: 0.2, seed: 13 });
  const faultMeter = await startCallMeter(fault.url);
  try {
    const sources: string[] = [];
    // Seeded and inspected straight on the emulator: the stacks point this process's AWS_ENDPOINT_URL at a proxy.
    for (let i = 0; i < 10; i++) sources.push(await seedHvmImage(SOURCE_REGION, `bench-source-${i}`));
    const shares = (label: string, n: number, regions: string[]) => ({
      shares: Array.from({ length: n }, (_, i) => ({ name: `${label}-${i}`, imageName: `${label}-${i}`, sourceAmiId: sources[i % sources.length], regions, accountIds: ACCOUNTS })),
    });
    const stack = async (config: Record<string, unknown>, endpoint = meter.url, env: Record<string, string> = {}) => {
      const t = await testStack({ ...emu, env: { ...emu.env, AWS_ENDPOINT_URL: endpoint, [MARKER]: runId, ...env } }, config, SOURCE_REGION);
      return t;
    };

    console.log(`emulator ${emu.endpoint}; sources ${sources.length} in ${SOURCE_REGION}; 16 regions; accounts ${ACCOUNTS.join(", ")}`);
    const one = await stack(shares("one", 1, ["eu-west-1"]));
    const baseline = async (i: number) => {
      await measure(`1×1 up #${i}`, meter, runId, () => one.stack.up({ onOutput: one.onOutput }));
      if (i === 1) stateOne = await stateBytes(one);
      await measure(`1×1 destroy #${i}`, meter, runId, () => one.stack.destroy({ onOutput: one.onOutput }));
    };
    let stateOne = { perResource: {} as Record<string, number>, file: 0 };

    await baseline(1);
    const big = await stack(shares("fleet", 10, REGIONS_16));
    const bigUp = await measure("10×16 up", meter, runId, () => big.stack.up({ onOutput: big.onOutput }));
    const bigState = await stateBytes(big);
    const bigCopies = await copiesByBuild(emu.endpoint, REGIONS_16);
    await measure("10×16 destroy", meter, runId, () => big.stack.destroy({ onOutput: big.onOutput }));
    const bigLeft = await copiesByBuild(emu.endpoint, REGIONS_16);

    // The same with Node's own young-generation sizing (no NODE_OPTIONS: a hand-run `pulumi up` without README's setting).
    const bare = await stack(shares("bare", 10, REGIONS_16), meter.url, { NODE_OPTIONS: "" });
    const bareUp = await measure("10×16 up, Node's default young generation", meter, runId, () => bare.stack.up({ onOutput: bare.onOutput }));
    await measure("10×16 destroy, Node's default young generation", meter, runId, () => bare.stack.destroy({ onOutput: bare.onOutput }));

    await baseline(2);
    const faulty = await stack(shares("faulty", 10, REGIONS_16), faultMeter.url);
    const faultUp = await measure("10×16 up, 20% faults", faultMeter, runId, () => faulty.stack.up({ onOutput: faulty.onOutput }));
    const faultCopies = await copiesByBuild(emu.endpoint, REGIONS_16);
    const injectedUp = fault.injected().total;
    await measure("10×16 destroy, 20% faults", faultMeter, runId, () => faulty.stack.destroy({ onOutput: faulty.onOutput }));
    const faultLeft = await copiesByBuild(emu.endpoint, REGIONS_16);
    const injected = fault.injected().total;

    await baseline(3);
    for (let i = 4; i <= BASELINE_RUNS; i++) await baseline(i);

    const p1 = await stack(shares("p1", 1, ["eu-west-1", "ap-northeast-1"]));
    const p100 = await stack(shares("p100", 100, ["eu-west-1", "ap-northeast-1"]));
    const previews: Record<string, Measure[]> = { one: [], hundred: [] };
    for (let i = 1; i <= PREVIEW_RUNS; i++) {
      previews.one.push(await measure(`preview 1 entry #${i}`, meter, runId, () => p1.stack.preview()));
      previews.hundred.push(await measure(`preview 100 entries #${i}`, meter, runId, () => p100.stack.preview()));
    }

    // State of the other kinds: a RecoveryAlarm and a build (ConvertedHvmAmi; the emulator answers its guest command).
    process.env.AWS_ENDPOINT_URL = emu.endpoint; // seeding goes straight to the emulator
    const instanceId = (await new EC2Client({ region: SOURCE_REGION, endpoint: emu.endpoint }).send(new RunInstancesCommand({ ImageId: "ami-00000000", MinCount: 1, MaxCount: 1 }))).Instances![0].InstanceId!;
    // Today's facts schema (the fixture's facts are the previous release's), and the launch verification boots.
    await emu.failSsmCommands({ match: "pv2hvm", status: "Success", output: `${JSON.stringify(PV2HVM_FACTS)}\n` });
    await bootByDefault(emu);
    const others = await stack({ recoveryAlarms: [{ name: "web", instanceId }], conversions: [{ name: "legacy", sourceAmiId: (await seedPvImage(SOURCE_REGION, "bench-pv")).imageId }] });
    await measure("RecoveryAlarm + ConvertedHvmAmi up", meter, runId, () => others.stack.up({ onOutput: others.onOutput }));
    const otherState = await stateBytes(others);
    await measure("RecoveryAlarm + ConvertedHvmAmi destroy", meter, runId, () => others.stack.destroy({ onOutput: others.onOutput }));

    const baselines = measures.filter((m) => /^1×1 up/.test(m.label));
    const base = median(baselines.map((m) => m.seconds));
    const baseCpu = median(baselines.map((m) => m.cpuSeconds));
    const ratioUp = bigUp.seconds / base;
    const ratioFault = faultUp.seconds / base;
    const ratioPreview = median(previews.hundred.map((m) => m.seconds)) / median(previews.one.map((m) => m.seconds));
    const previewCalls = [...previews.one, ...previews.hundred].reduce((n, m) => n + m.calls, 0);
    const peakMiB = Math.max(...measures.filter((m) => !/default young generation/.test(m.label)).map((m) => m.peakMiB));
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
    const goal = (ok: boolean) => (ok ? "ok" : "MISSED");

    console.log("\nresults");
    console.log(`  10×16 up ÷ 1×1 up (median of ${BASELINE_RUNS}: ${base.toFixed(2)} s)   ${ratioUp.toFixed(2)}   goal ≤ 3   ${goal(ratioUp <= 3)}`);
    console.log(`  the same in provider CPU seconds (${bigUp.cpuSeconds.toFixed(1)} ÷ ${baseCpu.toFixed(1)})     ${(bigUp.cpuSeconds / baseCpu).toFixed(2)}`);
    console.log(`  10×16 up with 20% faults ÷ 1×1 up                ${ratioFault.toFixed(2)}   (${injectedUp} faults injected during up, ${injected} with destroy)`);
    console.log(`  preview 100 entries ÷ 1 entry                    ${ratioPreview.toFixed(2)}   goal ≤ 2   ${goal(ratioPreview <= 2)}   (${previewCalls} AWS calls in all previews)`);
    console.log(`  state per SharedAmi, 1 region                    ${kb(stateOne.perResource.SharedAmi ?? 0)}   goal ≤ 8 KB   ${goal((stateOne.perResource.SharedAmi ?? 0) <= 8192)}`);
    console.log(`  state per SharedAmi, 16 regions                  ${kb(bigState.perResource.SharedAmi ?? 0)}   goal ≤ 8 KB   ${goal((bigState.perResource.SharedAmi ?? 0) <= 8192)}`);
    console.log(`  state per RecoveryAlarm                          ${kb(otherState.perResource.RecoveryAlarm ?? 0)}   goal ≤ 8 KB   ${goal((otherState.perResource.RecoveryAlarm ?? 0) <= 8192)}`);
    console.log(`  state per build (ConvertedHvmAmi)                ${kb(otherState.perResource.ConvertedHvmAmi ?? 0)}   goal ≤ 16 KB   ${goal((otherState.perResource.ConvertedHvmAmi ?? 0) <= 16384)}`);
    console.log(`  state file, 10×16 stack                          ${kb(bigState.file)} (1×1: ${kb(stateOne.file)})`);
    console.log(`  provider peak memory                             ${peakMiB.toFixed(0)} MiB   goal ≤ 250 MiB   ${goal(peakMiB <= 250)}   (NODE_OPTIONS=${SEMI_SPACE_FLAG}, as npm start, the workflows and README run pulumi)`);
    console.log(`  the same, 10×16 up with Node's default young generation   ${bareUp.peakMiB.toFixed(0)} MiB   ${goal(bareUp.peakMiB <= 250)}   (${bareUp.seconds.toFixed(1)} s, ${bareUp.cpuSeconds.toFixed(1)} provider CPU s against ${bigUp.seconds.toFixed(1)} s, ${bigUp.cpuSeconds.toFixed(1)})`);
    console.log(`  10×16 copies: ${bigCopies.total} (duplicates ${bigCopies.duplicates.length}); after destroy ${bigLeft.total} images, ${bigLeft.snapshots} snapshots`);
    console.log(`  20% faults: ${faultCopies.total} copies (duplicates ${faultCopies.duplicates.length}${faultCopies.duplicates.length ? `: ${faultCopies.duplicates.join("; ")}` : ""}); after destroy ${faultLeft.total} images, ${faultLeft.snapshots} snapshots   ${goal(faultCopies.total === 160 && !faultCopies.duplicates.length && !faultLeft.total && !faultLeft.snapshots)}`);
    console.log("\n  | operation | s | AWS calls | peak in flight | provider MiB | provider CPU s |\n  |---|---|---|---|---|---|");
    for (const m of measures) console.log(`  | ${m.label} | ${m.seconds.toFixed(1)} | ${m.calls} | ${m.peakInFlight} | ${m.peakMiB.toFixed(0)} | ${m.cpuSeconds.toFixed(1)} |`);
  } finally {
    await faultMeter.stop();
    await fault.stop();
    await meter.stop();
    await emu.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
