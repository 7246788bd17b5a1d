// The worker role's only permissions: what the SSM agent needs to register and to take and answer
// Run Command (and read the build's own secret parameters), as an inline policy of the build's own role (no AWS managed policy:
// AmazonSSMManagedInstanceCore also grants ssm:GetParameter(s) on every parameter, SecureStrings
// included, to anything that runs on the worker, such as a recipe's code in the chroot).
//
// The agent's calls: ssm:UpdateInstanceInformation (registration and heartbeat), the ssmmessages
// channels, and the ec2messages operations (Systems Manager User Guide, "Reference: ec2messages,
// ssmmessages, and other API operations",
// https://docs.aws.amazon.com/systems-manager/latest/userguide/systems-manager-setting-up-messageAPIs.html;
// the same set as AmazonSSMManagedInstanceCore's agent statements, without its associations,
// inventory, patching, documents and parameters).
import type { WorkerOptions } from "./context";

export const WORKER_POLICY_NAME = "ami-factory-ssm-agent";

export const SSM_AGENT_ACTIONS = [
  "ssm:UpdateInstanceInformation",
  "ssmmessages:CreateControlChannel",
  "ssmmessages:CreateDataChannel",
  "ssmmessages:OpenControlChannel",
  "ssmmessages:OpenDataChannel",
  "ec2messages:AcknowledgeMessage",
  "ec2messages:DeleteMessage",
  "ec2messages:FailMessage",
  "ec2messages:GetEndpoint",
  "ec2messages:GetMessages",
  "ec2messages:SendReply",
] as const;

/**
 * The worker role's inline policy document: the agent's calls, ssm:GetParameter on exactly the
 * build's own secret parameters (worker/buildSecret.ts; encrypted with aws/ssm, so no kms:Decrypt),
 * and s3:GetObject on exactly the objects the build downloads with the role (`aws s3 cp` of an s3://
 * image recipe; an object encrypted with a customer managed KMS key also needs kms:Decrypt, which
 * the key's policy must grant: "Protecting data with server-side encryption", S3 User Guide).
 */
export function workerPolicyDocument(secretParameterArns: string[] = [], readObjectArns: string[] = []): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Sid: "SsmAgent", Effect: "Allow", Action: [...SSM_AGENT_ACTIONS], Resource: "*" },
      ...(secretParameterArns.length ? [{ Sid: "BuildSecret", Effect: "Allow", Action: ["ssm:GetParameter"], Resource: secretParameterArns }] : []),
      ...(readObjectArns.length ? [{ Sid: "RecipeObjects", Effect: "Allow", Action: ["s3:GetObject"], Resource: readObjectArns }] : []),
    ],
  });
}

/** IAM paths: "/" or "/a/b/", printable ASCII, at most 512 characters (IAM API reference, CreateRole, Path). */
export const ROLE_PATH = /^\/([\x21-\x7E]{1,510}\/)?$/;
/** A managed policy's ARN (a permissions boundary is one). */
export const POLICY_ARN = /^arn:aws[a-z-]*:iam::(\d{12}|aws):policy\/[\w+=,.@\/-]+$/;

/** CreateRole's optional Path and PermissionsBoundary for these worker options. */
export function roleOptions(worker: WorkerOptions): { Path?: string; PermissionsBoundary?: string } {
  return { ...(worker.rolePath ? { Path: worker.rolePath } : {}), ...(worker.permissionsBoundary ? { PermissionsBoundary: worker.permissionsBoundary } : {}) };
}
