// Launch verification: the new image counts when an instance of it boots to userspace. One test
// instance per instance type, in the worker's subnet and security group (no inbound rules), no key
// pair, IMDSv2 only, tagged at launch as a temporary resource of the build (a later create of the
// build and `npm run sweep` terminate it if this process dies); it passes when both status checks
// are ok and the boot signal is the last thing on the serial console, and fails as bootJudge.ts
// says: at once on a boot that cannot go on (kernel panic, rescue prompt, emergency shell, a dead
// instance, an impaired check), else at the deadline.
import type { EC2Client } from "@aws-sdk/client-ec2";
import { ec2Client, ec2Sdk } from "../core/clients";
import { retag } from "../core/images";
import type { Step } from "../core/steps";
import { BOOT_LINE_TAG, EXPIRES_TAG, STACK_TAG, tagSpecifications, Tags, VERIFICATION_TAG, VERIFIED_ON_TAG } from "../core/tags";
import { errorName, isTransient, waitFor } from "../core/wait";
import { isDead, judgePoll } from "./bootJudge";
import { bootSignalRegex, classifyConsole, consoleTail, DEFAULT_BOOT_SIGNAL } from "./console";
import type { Verification, WorkerBuild } from "./context";
import type { VerifyInputs } from "./inputs";
import { cannotLaunch, ImageTraits, TypeInfo, verifyInstanceTypes, XEN_TYPE, xenTypeFor } from "./verifyPlan";

/** Tags the image and snapshot get at creation: a pending verification expires with the build. */
export function verificationTags(verify: VerifyInputs | false, temporaryTags: Tags): Tags {
  if (verify === false) return { [VERIFICATION_TAG]: "skipped" };
  // While pending, the image is found by `npm run sweep` like the build's temporary resources.
  return { [VERIFICATION_TAG]: "pending", [EXPIRES_TAG]: temporaryTags[EXPIRES_TAG], [STACK_TAG]: temporaryTags[STACK_TAG] };
}

/** The verification an image's tags record (an adopted image's output). */
export function verificationFromTags(tags: { Key?: string; Value?: string }[] | undefined): Verification | undefined {
  const tag = (k: string) => tags?.find((t) => t.Key === k)?.Value;
  if (tag(VERIFICATION_TAG) === "skipped") return { status: "skipped" };
  if (tag(VERIFICATION_TAG) !== "passed") return undefined;
  const results = (tag(VERIFIED_ON_TAG) ?? "").split(" ").filter(Boolean).map((entry, i) => {
    const [instanceType, seconds] = entry.split("=");
    return { instanceType, secondsToBootSignal: parseInt(seconds, 10) || 0, bootLine: i === 0 ? (tag(BOOT_LINE_TAG) ?? "") : "" };
  });
  return { status: "passed", results };
}

/** A tag value: printable, at most 256 characters. */
function tagValue(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 256);
}

async function describeImageTraits(ec2: EC2Client, imageId: string, fallback: "x86_64" | "arm64"): Promise<ImageTraits> {
  const { DescribeImagesCommand } = ec2Sdk();
  const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  return {
    architecture: image?.Architecture === "arm64" ? "arm64" : image?.Architecture === "x86_64" ? "x86_64" : fallback,
    enaSupport: image?.EnaSupport === true,
    bootMode: image?.BootMode === "uefi" ? "uefi" : "legacy-bios",
  };
}

function typeInfo(info: { InstanceType?: string; Hypervisor?: string; ProcessorInfo?: { SupportedArchitectures?: string[] }; NetworkInfo?: { EnaSupport?: string }; SupportedBootModes?: string[]; VCpuInfo?: { DefaultVCpus?: number }; MemoryInfo?: { SizeInMiB?: number } }): TypeInfo {
  return {
    instanceType: info.InstanceType ?? "",
    hypervisor: info.Hypervisor,
    architectures: info.ProcessorInfo?.SupportedArchitectures ?? [],
    enaSupport: info.NetworkInfo?.EnaSupport,
    bootModes: info.SupportedBootModes ?? [],
    vcpus: info.VCpuInfo?.DefaultVCpus,
    memoryMiB: info.MemoryInfo?.SizeInMiB,
  };
}

/**
 * The Xen types this region offers: DescribeInstanceTypes filtered on hypervisor xen (the types'
 * attributes hold in every region) and DescribeInstanceTypeOfferings with LocationType region (which
 * of them this region has). EC2 API reference, DescribeInstanceTypes ("hypervisor" filter) and
 * DescribeInstanceTypeOfferings.
 */
async function xenTypesOffered(ec2: EC2Client): Promise<TypeInfo[]> {
  const { DescribeInstanceTypesCommand, DescribeInstanceTypeOfferingsCommand } = ec2Sdk();
  const xen: TypeInfo[] = [];
  let token: string | undefined;
  do {
    const out: { InstanceTypes?: Parameters<typeof typeInfo>[0][]; NextToken?: string } = await ec2.send(new DescribeInstanceTypesCommand({ Filters: [{ Name: "hypervisor", Values: ["xen"] }], NextToken: token }));
    xen.push(...(out.InstanceTypes ?? []).map(typeInfo));
    token = out.NextToken;
  } while (token);
  const offered = new Set<string>();
  token = undefined;
  do {
    const out: { InstanceTypeOfferings?: { InstanceType?: string }[]; NextToken?: string } = await ec2.send(new DescribeInstanceTypeOfferingsCommand({ LocationType: "region", Filters: [{ Name: "instance-type", Values: xen.map((t) => t.instanceType) }], NextToken: token }));
    for (const o of out.InstanceTypeOfferings ?? []) if (o.InstanceType) offered.add(o.InstanceType);
    token = out.NextToken;
  } while (token);
  return xen.filter((t) => offered.has(t.instanceType));
}

async function describeTypes(ec2: EC2Client, types: string[]): Promise<TypeInfo[]> {
  const { DescribeInstanceTypesCommand } = ec2Sdk();
  const out = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as never[] })).catch((e) => {
    if (errorName(e) === "InvalidInstanceType") throw new Error(`verify.instanceType: ${(e as Error).message}: use instance types offered in this region`);
    throw e;
  });
  return types.map((t) => typeInfo({ ...out.InstanceTypes?.find((i) => i.InstanceType === t), InstanceType: t }));
}

interface Verified {
  instanceType: string;
  secondsToBootSignal: number;
  bootLine: string;
}

/**
 * The image's EBS mappings with DeleteOnTermination forced on: a converted image keeps the source's
 * data disks as they were (some DeleteOnTermination false), and a test instance must not leave their
 * volumes behind. RunInstances may change DeleteOnTermination of an AMI's mapping (EC2 User Guide,
 * "Block device mappings": update the block device mapping when you launch an instance).
 */
async function deletedOnTermination(ec2: EC2Client, imageId: string): Promise<{ DeviceName: string; Ebs: { DeleteOnTermination: true } }[] | undefined> {
  const { DescribeImagesCommand } = ec2Sdk();
  const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
  const kept = (image?.BlockDeviceMappings ?? []).filter((m) => m.DeviceName && m.Ebs && m.Ebs.DeleteOnTermination !== true);
  return kept.length ? kept.map((m) => ({ DeviceName: m.DeviceName!, Ebs: { DeleteOnTermination: true } })) : undefined;
}

async function verifyOn(b: WorkerBuild, ec2: EC2Client, t: TypeInfo, bootSignal: RegExp, deadline: number): Promise<Verified> {
  const { RunInstancesCommand, DescribeInstanceStatusCommand, DescribeInstancesCommand, GetConsoleOutputCommand } = ec2Sdk();
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: b.imageId,
      InstanceType: t.instanceType as never,
      MinCount: 1,
      MaxCount: 1,
      SubnetId: b.subnetId,
      SecurityGroupIds: b.securityGroupId ? [b.securityGroupId] : undefined,
      BlockDeviceMappings: await deletedOnTermination(ec2, b.imageId!),
      MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1 },
      InstanceInitiatedShutdownBehavior: "terminate",
      ClientToken: `${b.buildId}-verify-${t.instanceType}-${b.deadline}`.slice(0, 64),
      TagSpecifications: tagSpecifications(["instance", "volume", "network-interface"] as const, { ...b.temporaryTags, Name: `ami-factory ${b.buildId} verify ${t.instanceType}` }),
    }),
  );
  const id = out.Instances?.[0]?.InstanceId;
  if (!id) throw new Error(`RunInstances returned no instance id for ${t.instanceType}`);
  b.testInstances![t.instanceType] = id;
  const launched = Date.now();
  b.log(`verify: ${b.imageId} launched on ${t.instanceType} as ${id}`);
  // The latest console is for Nitro types only (GetConsoleOutput API reference); Xen types give
  // the buffered console.
  const latest = t.hypervisor === "nitro" ? true : undefined;
  let text = "";
  let signalAt: number | undefined;
  const what = `${id} (${t.instanceType}) to boot ${b.imageId} to userspace`;
  try {
    return await waitFor({ what, maxWaitSeconds: Math.max(1, Math.floor((deadline - Date.now()) / 1000)), minDelaySeconds: 2, maxDelaySeconds: 15 }, async () => {
      // The checks first, then the console: a failed check is reported with the console after it.
      // A new instance may not be visible to these calls yet (EC2 is eventually consistent).
      let status, output;
      try {
        status = (await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id], IncludeAllInstances: true }))).InstanceStatuses?.[0];
        output = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: latest }));
      } catch (e) {
        if (errorName(e) === "InvalidInstanceID.NotFound" || isTransient(e)) return { state: "RETRY", reason: `${errorName(e)}` };
        throw e;
      }
      text = output.Output ? Buffer.from(output.Output, "base64").toString("utf8") : text;
      const verdict = classifyConsole(text, bootSignal);
      if (verdict.state === "booted" && signalAt === undefined) signalAt = Date.now();
      const state = status?.InstanceState?.Name;
      const stateReason = isDead(state) ? (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0]?.StateReason?.Message : undefined;
      const judged = judgePoll({ console: verdict, state, stateReason, system: status?.SystemStatus?.Status ?? "unknown", instance: status?.InstanceStatus?.Status ?? "unknown" });
      if (judged.state === "failed") return { state: "FAILURE", reason: judged.reason };
      if (judged.state === "waiting") return { state: "RETRY", reason: judged.reason };
      return { state: "SUCCESS", value: { instanceType: t.instanceType, secondsToBootSignal: Math.round(((signalAt ?? Date.now()) - launched) / 1000), bootLine: judged.line } };
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\nconsole tail of ${id}:\n${consoleTail(text)}`);
  }
}

export function verifyStep(verifyOf: (b: WorkerBuild) => VerifyInputs | false): Step<WorkerBuild> {
  return {
    name: "verify the image boots",
    async run(b) {
      const verify = verifyOf(b);
      if (verify === false) {
        b.log(`verify: skipped (verify: false): ${b.imageId} was not test-launched`);
        b.verification = { status: "skipped" };
        return;
      }
      const ec2 = await ec2Client(b.region);
      const image = await describeImageTraits(ec2, b.imageId!, b.architecture);
      let { types, why } = verifyInstanceTypes(verify.instanceTypes, b.facts, image);
      if (!verify.instanceTypes?.length && types.length === 1 && types[0] === XEN_TYPE) {
        const xen = xenTypeFor(image, await xenTypesOffered(ec2), b.region);
        if ("error" in xen) throw new Error(xen.error);
        types = [xen.type];
        why = `${why}; ${xen.why}`;
      }
      b.log(`verify: on ${types.join(", ")}: ${why}`);
      const infos = await describeTypes(ec2, types);
      const impossible = infos.map((t) => cannotLaunch(image, t)).filter(Boolean);
      if (impossible.length) throw new Error(`cannot verify on ${impossible.join("; ")}: set verify.instanceType to a type that can run this image`);
      const bootSignal = verify.bootSignal ? (bootSignalRegex(verify.bootSignal) as RegExp) : DEFAULT_BOOT_SIGNAL;
      const deadline = Math.min(Date.now() + verify.timeoutMinutes * 60_000, b.deadline);
      b.testInstances = {};
      const settled = await Promise.allSettled(infos.map((t) => verifyOn(b, ec2, t, bootSignal, deadline)));
      const failures = settled.flatMap((s, i) => (s.status === "rejected" ? [`${infos[i].instanceType}: ${(s.reason as Error).message}`] : []));
      if (failures.length) throw new Error(`${b.imageId} did not boot: ${failures.join("\n")}`);
      const results = settled.map((s) => (s as PromiseFulfilledResult<Verified>).value);
      for (const r of results) b.log(`verify: ${r.instanceType} reached userspace in ${r.secondsToBootSignal}s: ${r.bootLine}`);
      b.verification = { status: "passed", results };
      await retag(
        ec2,
        [b.imageId!, b.snapshotId].filter((x): x is string => !!x),
        {
          [VERIFICATION_TAG]: "passed",
          [VERIFIED_ON_TAG]: tagValue(results.map((r) => `${r.instanceType}=${r.secondsToBootSignal}s`).join(" ")),
          [BOOT_LINE_TAG]: tagValue(results[0].bootLine),
        },
        [EXPIRES_TAG],
      );
    },
    async cleanup(b) {
      const ids = Object.values(b.testInstances ?? {});
      if (!ids.length) return;
      const { TerminateInstancesCommand, waitUntilInstanceTerminated } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      // Every instance is asked to go before any error is reported: one failed call must not keep
      // the others running.
      const terminated = await Promise.allSettled(
        ids.map((id) =>
          ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })).catch((e) => {
            if (errorName(e) !== "InvalidInstanceID.NotFound") throw e;
          }),
        ),
      );
      const going = ids.filter((_, i) => terminated[i].status === "fulfilled");
      // Wait, so that the security group can go next.
      const waited = going.length ? await Promise.allSettled([waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 600, minDelay: 2, maxDelay: 15 }, { InstanceIds: going })]) : [];
      const errors = [
        ...terminated.flatMap((r, i) => (r.status === "rejected" ? [`TerminateInstances ${ids[i]}: ${(r.reason as Error).message}`] : [])),
        ...waited.flatMap((r) => (r.status === "rejected" ? [`waiting for ${going.join(", ")} to terminate: ${(r.reason as Error).message}`] : [])),
      ];
      if (errors.length) throw new Error(`test instances not terminated (a later create of build ${b.buildId} or \`npm run sweep\` terminates them): ${errors.join("; ")}`);
      b.log(`verify: test instance${ids.length > 1 ? "s" : ""} ${ids.join(", ")} terminated`);
    },
  };
}
