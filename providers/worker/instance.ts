// The worker instance: IMDSv2 only, no key pair, no inbound rules, terminated on every path.
import { ec2Client, ssmClient, ec2Sdk, ssmSdk } from "../core/clients";
import { describeImage } from "../core/images";
import { tagSpecifications } from "../core/tags";
import type { Step } from "../core/steps";
import { errorName, waitFor } from "../core/wait";
import { secondsLeft, WorkerBuild } from "./context";

const WORKER_IMAGE_PARAMETER = {
  x86_64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
  arm64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
};
const DEFAULT_INSTANCE_TYPE = { x86_64: "m6i.large", arm64: "m6g.large" };

export function workerImageStep(): Step<WorkerBuild> {
  return {
    name: "find worker image",
    async run(b) {
      if (b.worker.imageId) {
        b.workerImageId = b.worker.imageId;
      } else {
        const { GetParameterCommand } = ssmSdk();
        const name = WORKER_IMAGE_PARAMETER[b.architecture];
        const out = await (await ssmClient(b.region)).send(new GetParameterCommand({ Name: name }));
        if (!out.Parameter?.Value) throw new Error(`the public SSM parameter ${name} has no value in ${b.region}: set worker.imageId`);
        b.workerImageId = out.Parameter.Value;
      }
      // The root device, to encrypt the worker's own root volume when the image is encrypted: a
      // mapping of that device name that says only Encrypted (and the key) keeps the image's size,
      // type and snapshot (RunInstances, BlockDeviceMapping: a mapping given at launch overrides
      // only what it sets of the AMI's mapping of the same device; EC2 User Guide, "Block device
      // mappings", "Update the block device mapping when launching an instance").
      if (b.workerRootEncryption) {
        const image = await describeImage(await ec2Client(b.region), b.workerImageId);
        if (!image?.RootDeviceName || image.RootDeviceType !== "ebs") {
          throw new Error(`cannot read the root device of the worker image ${b.workerImageId} in ${b.region}, which encrypted: true needs to encrypt the worker too: set worker.imageId to an EBS-backed image this account can describe`);
        }
        b.workerRoot = { device: image.RootDeviceName };
      }
    },
  };
}

export function launchWorkerStep(): Step<WorkerBuild> {
  return {
    name: "launch worker",
    async run(b) {
      const { RunInstancesCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      const profile = b.worker.instanceProfileName ?? b.createdInstanceProfileName;
      // A new instance profile takes a few seconds to be usable by EC2: retry just that error.
      const instanceId = await waitFor({ what: "the worker to launch", maxWaitSeconds: Math.min(300, secondsLeft(b)), minDelaySeconds: 2 }, async () => {
        try {
          const out = await ec2.send(
            new RunInstancesCommand({
              ImageId: b.workerImageId,
              InstanceType: (b.worker.instanceType ?? DEFAULT_INSTANCE_TYPE[b.architecture]) as never,
              MinCount: 1,
              MaxCount: 1,
              SubnetId: b.subnetId,
              SecurityGroupIds: b.securityGroupId ? [b.securityGroupId] : undefined,
              IamInstanceProfile: profile ? { Name: profile } : undefined,
              MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1 },
              InstanceInitiatedShutdownBehavior: "terminate",
              EbsOptimized: true,
              // With encrypted: true nothing of the build is written unencrypted, the worker's own root included.
              BlockDeviceMappings: b.workerRootEncryption
                ? [{ DeviceName: b.workerRoot!.device, Ebs: { Encrypted: true, KmsKeyId: b.workerRootEncryption.kmsKeyId, DeleteOnTermination: true } }]
                : undefined,
              ClientToken: `${b.buildId}-worker-${b.deadline}`.slice(0, 64),
              TagSpecifications: tagSpecifications(["instance", "volume", "network-interface"] as const, b.temporaryTags),
            }),
          );
          return { state: "SUCCESS", value: out.Instances?.[0]?.InstanceId };
        } catch (e) {
          if (errorName(e) === "InvalidParameterValue" && /iam instance profile/i.test(String((e as Error).message))) return { state: "RETRY", reason: "instance profile not usable yet" };
          throw e;
        }
      });
      if (!instanceId) throw new Error("RunInstances returned no instance id");
      b.instanceId = instanceId;
      b.log(`worker ${instanceId} launched in ${b.availabilityZone}`);
      const { waitUntilInstanceRunning } = ec2Sdk();
      await waitUntilInstanceRunning({ client: ec2, maxWaitTime: Math.min(600, secondsLeft(b)), minDelay: 2, maxDelay: 15 }, { InstanceIds: [instanceId] });
    },
    async cleanup(b) {
      if (!b.instanceId) return;
      const { TerminateInstancesCommand, waitUntilInstanceTerminated } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      try {
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [b.instanceId] }));
      } catch (e) {
        if (errorName(e) === "InvalidInstanceID.NotFound") return;
        throw e;
      }
      // Wait, so that the security group and instance profile can go next.
      await waitUntilInstanceTerminated({ client: ec2, maxWaitTime: 600, minDelay: 2, maxDelay: 15 }, { InstanceIds: [b.instanceId] });
      b.log(`worker ${b.instanceId} terminated`);
    },
  };
}
