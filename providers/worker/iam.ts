// A temporary role and instance profile that let the worker talk to SSM, and nothing else: an
// inline policy with the SSM agent's calls (./workerPolicy.ts), optionally under a path and a
// permissions boundary.
import { iamClient, iamSdk } from "../core/clients";
import type { Step } from "../core/steps";
import { errorName, isTransient, waitFor } from "../core/wait";
import type { WorkerBuild } from "./context";
import { roleOptions, WORKER_POLICY_NAME, workerPolicyDocument } from "./workerPolicy";

const assumeRolePolicy = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

export function instanceProfileStep(): Step<WorkerBuild> {
  return {
    name: "create instance profile",
    async run(b) {
      if (b.worker.instanceProfileName) return;
      const { CreateRoleCommand, PutRolePolicyCommand, CreateInstanceProfileCommand, AddRoleToInstanceProfileCommand, GetInstanceProfileCommand } = iamSdk();
      const iam = await iamClient(b.region);
      const name = `ami-factory-${b.buildId}-${Date.now().toString(36)}`.slice(0, 64);
      const Tags = Object.entries(b.temporaryTags).map(([Key, Value]) => ({ Key, Value }));
      // The names are this run's own: "already exists" is a retry whose first answer was lost.
      const ours = (e: unknown) => {
        if (errorName(e) !== "EntityAlreadyExists" && errorName(e) !== "EntityAlreadyExistsException") throw e;
      };
      b.roleName = name;
      await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: assumeRolePolicy, Description: `ami-factory build ${b.buildId}: SSM for the worker`, MaxSessionDuration: 3600 * 4, Tags, ...roleOptions(b.worker) })).catch(ours);
      await iam.send(new PutRolePolicyCommand({ RoleName: name, PolicyName: WORKER_POLICY_NAME, PolicyDocument: workerPolicyDocument(b.secretParameterArns, b.readObjectArns) }));
      b.createdInstanceProfileName = name;
      await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: name, Tags })).catch(ours);
      // One role per profile: a retried add fails with LimitExceeded, which the SDK takes for
      // throttling and would retry ten times. So no SDK retries here: after any error, the profile
      // itself says whether the role got in.
      const once = await iamClient(b.region, { maxAttempts: 1 });
      await waitFor({ what: `role ${name} in instance profile ${name}`, maxWaitSeconds: 120, minDelaySeconds: 1, maxDelaySeconds: 5 }, async () => {
        const profile = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }));
        if (profile.InstanceProfile?.Roles?.some((r) => r.RoleName === name)) return { state: "SUCCESS", value: undefined };
        try {
          await once.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }));
          return { state: "SUCCESS", value: undefined };
        } catch (e) {
          if (isTransient(e) || /LimitExceeded/.test(errorName(e) ?? "")) return { state: "RETRY", reason: errorName(e) };
          throw e;
        }
      });
    },
    async cleanup(b) {
      const { RemoveRoleFromInstanceProfileCommand, DeleteInstanceProfileCommand, DeleteRolePolicyCommand, DeleteRoleCommand } = iamSdk();
      const iam = await iamClient(b.region);
      const gone = (e: unknown) => {
        if (errorName(e) !== "NoSuchEntity" && errorName(e) !== "NoSuchEntityException") throw e;
      };
      if (b.createdInstanceProfileName) {
        if (b.roleName) await iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: b.createdInstanceProfileName, RoleName: b.roleName })).catch(gone);
        await iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: b.createdInstanceProfileName })).catch(gone);
      }
      if (b.roleName) {
        await iam.send(new DeleteRolePolicyCommand({ RoleName: b.roleName, PolicyName: WORKER_POLICY_NAME })).catch(gone);
        await iam.send(new DeleteRoleCommand({ RoleName: b.roleName })).catch(gone);
      }
    },
  };
}
