// Where the worker runs (subnet, VPC, AZ) and its security group: no inbound rules at all (the
// worker is driven through SSM), and outbound only HTTPS (SSM, package repositories), plus HTTP
// when a recipe's mirror is given as http:// (b.egressPorts).
import { ec2Client, ec2Sdk } from "../core/clients";
import { tagSpecifications } from "../core/tags";
import type { Step } from "../core/steps";
import { errorName, waitFor } from "../core/wait";
import type { WorkerBuild } from "./context";

export function networkStep(): Step<WorkerBuild> {
  return {
    name: "find subnet",
    async run(b) {
      const { DescribeSubnetsCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      const out = await ec2
        .send(b.worker.subnetId ? new DescribeSubnetsCommand({ SubnetIds: [b.worker.subnetId] }) : new DescribeSubnetsCommand({ Filters: [{ Name: "default-for-az", Values: ["true"] }] }))
        .catch((e) => {
          if (errorName(e) === "InvalidSubnetID.NotFound" || errorName(e) === "InvalidSubnetID.Malformed") return { Subnets: [] };
          throw e;
        });
      const subnet = (out.Subnets ?? []).sort((a, c) => (a.AvailabilityZone ?? "").localeCompare(c.AvailabilityZone ?? ""))[0];
      if (!subnet?.SubnetId) {
        throw new Error(
          b.worker.subnetId
            ? `worker.subnetId ${b.worker.subnetId} was not found in ${b.region}: check the id and region`
            : `no default VPC subnet in ${b.region}: set worker.subnetId to a subnet with outbound HTTPS (for SSM)`,
        );
      }
      b.subnetId = subnet.SubnetId;
      b.vpcId = subnet.VpcId;
      b.availabilityZone = subnet.AvailabilityZone;
    },
  };
}

export function securityGroupStep(): Step<WorkerBuild> {
  return {
    name: "create security group",
    async run(b) {
      const { CreateSecurityGroupCommand, DescribeSecurityGroupsCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      const GroupName = `ami-factory-${b.buildId}-${Date.now().toString(36)}`;
      try {
        const out = await ec2.send(
          new CreateSecurityGroupCommand({
            GroupName,
            Description: `ami-factory build ${b.buildId} worker: no inbound rules`,
            VpcId: b.vpcId,
            TagSpecifications: tagSpecifications(["security-group"] as const, b.temporaryTags),
          }),
        );
        b.securityGroupId = out.GroupId;
      } catch (e) {
        // A retry after a lost response: the group of this very name is ours.
        if (errorName(e) !== "InvalidGroup.Duplicate") throw e;
        const found = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: "group-name", Values: [GroupName] }, { Name: "vpc-id", Values: [b.vpcId!] }] }));
        b.securityGroupId = found.SecurityGroups?.[0]?.GroupId;
        if (!b.securityGroupId) throw e;
      }
      await restrictEgress(b);
    },
    async cleanup(b) {
      if (!b.securityGroupId) return;
      const { DeleteSecurityGroupCommand } = ec2Sdk();
      const ec2 = await ec2Client(b.region);
      const id = b.securityGroupId;
      // A just-terminated worker's network interface can hold the group for a short while.
      await waitFor({ what: `deletion of security group ${id}`, maxWaitSeconds: 300, minDelaySeconds: 2 }, async () => {
        try {
          await ec2.send(new DeleteSecurityGroupCommand({ GroupId: id }));
          return { state: "SUCCESS", value: undefined };
        } catch (e) {
          if (errorName(e) === "InvalidGroup.NotFound") return { state: "SUCCESS", value: undefined };
          if (errorName(e) === "DependencyViolation") return { state: "RETRY", reason: "still in use" };
          throw e;
        }
      });
    },
  };
}

/** A new group allows all outbound traffic: replace that with TCP to the ports the build needs. */
async function restrictEgress(b: WorkerBuild): Promise<void> {
  const { RevokeSecurityGroupEgressCommand, AuthorizeSecurityGroupEgressCommand } = ec2Sdk();
  const ec2 = await ec2Client(b.region);
  // Retries after a lost answer find the rule gone or there already: both are done.
  const done = (names: string[]) => (e: unknown) => {
    if (!names.includes(errorName(e) ?? "")) throw e;
  };
  await ec2
    .send(new RevokeSecurityGroupEgressCommand({ GroupId: b.securityGroupId, IpPermissions: [{ IpProtocol: "-1", IpRanges: [{ CidrIp: "0.0.0.0/0" }] }] }))
    .catch(done(["InvalidPermission.NotFound"]));
  const ports = [...new Set(b.egressPorts)].sort((x, y) => y - x);
  await ec2
    .send(
      new AuthorizeSecurityGroupEgressCommand({
        GroupId: b.securityGroupId,
        IpPermissions: ports.map((p) => ({ IpProtocol: "tcp", FromPort: p, ToPort: p, IpRanges: [{ CidrIp: "0.0.0.0/0", Description: p === 443 ? "HTTPS: SSM, package repositories" : "HTTP: the recipe's http mirror" }] })),
      }),
    )
    .catch(done(["InvalidPermission.Duplicate"]));
}
