// Runs a guest script on the worker through SSM (AWS-RunShellScript) and reads the machine-
// readable facts from the last line of its output, checked against the schema the script declares.
import { ssmClient, ssmSdk } from "../core/clients";
import type { Step } from "../core/steps";
import { errorName, isTransient, waitFor } from "../core/wait";
import { SECRET_PARAMETERS_ARG } from "./buildSecret";
import { secondsLeft, WorkerBuild } from "./context";
import { checkFacts, declaredFactsSchema } from "./facts";

export interface GuestCommand {
  /** For messages: "pv2hvm". */
  name: string;
  /** The whole (bundled) script. */
  script: string;
  /** Its arguments; volume roles are written as {volume:role} and replaced by the volume id, {secret-parameters} by the build's secret parameters (worker/buildSecret.ts). */
  args: string[];
  /**
   * The exit status with which the script declines, having changed nothing (pv2hvm --in-place: 3):
   * its last stdout line is then recorded as `refusal` for the next steps, and the step succeeds.
   * SSM reports a non-zero exit as Status "Failed" with the exit status as ResponseCode
   * (https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-handle-exit-status.html,
   * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html).
   */
  refusedExitCode?: number;
}

/**
 * The most an SSM command's parameters may weigh. Run Command renders them into the command
 * document the agent runs, and an SSM document holds at most 64 KB ("The size limit of a document is
 * 64 KB", MaxDocumentSizeExceeded, SSM API reference); a SendCommand-specific figure was not found
 * in AWS's documentation, so the document limit is the ceiling. The emulator refuses more
 * (scripts/emulator/moto_server.py, "ssm-send-command-size").
 */
export const SEND_COMMAND_PARAMETERS_MAX_BYTES = 64 * 1024;
/** What ami-factory lets a command weigh: the limit less a margin of one eighth. */
export const SEND_COMMAND_BUDGET_BYTES = SEND_COMMAND_PARAMETERS_MAX_BYTES - 8 * 1024;

/**
 * The shell lines SSM runs: the script, gzip-compressed and base64-encoded (the 92 KB surrogate
 * bundle would not fit a command otherwise), written to a file and run with its arguments.
 */
export function commandLines(cmd: GuestCommand, volumes: Record<string, string>, secretParameters: string[] = []): string[] {
  const args = cmd.args.map((a) => a.replace(/\{volume:([a-z]+)\}/g, (_m, role: string) => {
    if (!volumes[role]) throw new Error(`no ${role} volume for the guest script ${cmd.name}`);
    return volumes[role];
  }).replace(SECRET_PARAMETERS_ARG, () => {
    if (!secretParameters.length) throw new Error(`no secret parameters for the guest script ${cmd.name}`);
    return secretParameters.join(",");
  }));
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const file = `/root/ami-factory-${cmd.name}.sh`;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const packed = (require("zlib") as typeof import("zlib")).gzipSync(Buffer.from(cmd.script, "utf8"), { level: 9 }).toString("base64");
  return [
    // Plain text for SSM's command history (and people reading it): which script this is.
    `# ami-factory guest script ${cmd.name}`,
    `base64 -d <<'AMI_FACTORY_GUEST_SCRIPT' | gunzip > ${file}`,
    ...(packed.match(/.{1,1024}/g) ?? []),
    "AMI_FACTORY_GUEST_SCRIPT",
    `exec bash ${file} ${quoted}`,
  ];
}

/** The size of SendCommand's Parameters as sent (JSON), to hold against the budget. */
export function parametersBytes(parameters: Record<string, string[]>): number {
  return Buffer.byteLength(JSON.stringify(parameters), "utf8");
}

/** The facts: the last non-empty stdout line, which must be a JSON object. */
export function parseFacts(stdout: string): Record<string, unknown> {
  const last = stdout.trimEnd().split("\n").pop() ?? "";
  try {
    const facts = JSON.parse(last);
    if (facts && typeof facts === "object" && !Array.isArray(facts)) return facts as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new Error(`the guest script's last output line is not a JSON object: ${JSON.stringify(last.slice(0, 200))}`);
}

export function lastLines(text: string | undefined, n = 15): string {
  return (text ?? "").trimEnd().split("\n").slice(-n).join("\n");
}

/** A guest script that did not succeed, in plain words, with its stderr and stdout labelled. */
export function guestFailure(
  name: string,
  instanceId: string,
  out: { Status?: string; ResponseCode?: number; StatusDetails?: string; StandardOutputContent?: string; StandardErrorContent?: string },
): string {
  const how =
    out.Status === "Failed" ? `exited with code ${out.ResponseCode}`
    : out.Status === "TimedOut" ? "ran out of time (SSM TimedOut)"
    : out.Status === "Cancelled" ? "was cancelled"
    : `ended as ${out.Status}${out.StatusDetails ? ` (${out.StatusDetails})` : ""}${out.ResponseCode !== undefined && out.ResponseCode >= 0 ? `, exit code ${out.ResponseCode}` : ""}`;
  const block = (label: string, text: string | undefined) => {
    const lines = lastLines(text);
    return lines ? `\n  ${label} (last lines):\n${lines.split("\n").map((l) => `    ${l}`).join("\n")}` : `\n  ${label}: (empty)`;
  };
  // The summary the script prints on stdout when it fails (scripts/guest/lib/common.sh): first, as
  // SSM keeps only the first 8,000 characters of stderr, which may end before the error.
  const stdout = out.StandardOutputContent ?? "";
  const at = stdout.search(/^\S+ failed \(exit \d+\)$/m);
  if (at >= 0) {
    const summary = stdout.slice(at).trimEnd().split("\n").slice(0, 20).map((l) => `    ${l}`).join("\n");
    return `the guest script ${name} on worker ${instanceId} ${how}\n  summary:\n${summary}${block("stderr as SSM kept it (its first 8,000 characters)", out.StandardErrorContent)}`;
  }
  return `the guest script ${name} on worker ${instanceId} ${how}${block("stderr", out.StandardErrorContent)}${block("stdout", out.StandardOutputContent)}`;
}

/** How a guest script's command ended when it did not succeed, on the error the step throws. */
export interface GuestScriptEnd {
  /** SSM's Status: Failed (the script exited non-zero), TimedOut, Cancelled, ... */
  status?: string;
  exitCode?: number;
}

/** The end of a guest script that failed, when `e` is the error of a guest command step that saw it end. */
export function guestScriptEnd(e: unknown): GuestScriptEnd | undefined {
  return e instanceof Error && e.name === "GuestScriptFailed" ? (e as Error & { end: GuestScriptEnd }).end : undefined;
}

export function guestCommandStep(cmd: GuestCommand): Step<WorkerBuild> {
  return {
    name: `run ${cmd.name} on the worker`,
    async run(b) {
      const { SendCommandCommand, GetCommandInvocationCommand, ListCommandsCommand } = ssmSdk();
      const ssm = await ssmClient(b.region);
      // SendCommand has no client token: it is never retried blindly. After an error whose answer
      // may have been lost, the worker's command list says whether the script started anyway.
      const sender = await ssmClient(b.region, { maxAttempts: 1 });
      const parameters = { commands: commandLines(cmd, b.volumes, b.secretParameters), executionTimeout: [String(secondsLeft(b))] };
      const bytes = parametersBytes(parameters);
      if (bytes > SEND_COMMAND_BUDGET_BYTES) {
        throw new Error(`the ${cmd.name} command is ${bytes} bytes, over the ${SEND_COMMAND_BUDGET_BYTES} ami-factory allows an SSM command (AWS: ${SEND_COMMAND_PARAMETERS_MAX_BYTES}): the guest script has outgrown it (the recipe's own script travels in the build's secret parameters)`);
      }
      // The first argument tells two commands of one script apart (pv2hvm --in-place, then --source).
      const comment = `ami-factory ${b.buildId} ${cmd.name} ${cmd.args[0] ?? ""}`.trim().slice(0, 100);
      let sentBefore = false;
      // The SSM agent registers a little after the instance runs: until then SendCommand says InvalidInstanceId.
      b.commandId = await waitFor({ what: `the SSM agent on ${b.instanceId}`, maxWaitSeconds: Math.min(900, secondsLeft(b)), minDelaySeconds: 2, maxDelaySeconds: 15 }, async () => {
        if (sentBefore) {
          const listed = await ssm.send(new ListCommandsCommand({ InstanceId: b.instanceId }));
          const started = listed.Commands?.find((c) => c.Comment === comment);
          if (started?.CommandId) return { state: "SUCCESS", value: started.CommandId };
        }
        try {
          sentBefore = true;
          const out = await sender.send(
            new SendCommandCommand({
              InstanceIds: [b.instanceId!],
              DocumentName: "AWS-RunShellScript",
              Comment: comment,
              TimeoutSeconds: secondsLeft(b),
              Parameters: parameters,
            }),
          );
          return { state: "SUCCESS", value: out.Command?.CommandId };
        } catch (e) {
          if (errorName(e) === "InvalidInstanceId") return { state: "RETRY", reason: "agent not registered yet" };
          if (isTransient(e)) return { state: "RETRY", reason: `SendCommand: ${errorName(e)}` };
          throw e;
        }
      });
      const started = Date.now();
      let lastProgress = "";
      const invocation = await waitFor({ what: `${cmd.name} on ${b.instanceId}`, maxWaitSeconds: secondsLeft(b), minDelaySeconds: 2, maxDelaySeconds: 10 }, async () => {
        let out;
        try {
          out = await ssm.send(new GetCommandInvocationCommand({ CommandId: b.commandId, InstanceId: b.instanceId }));
        } catch (e) {
          if (errorName(e) === "InvocationDoesNotExist") return { state: "RETRY", reason: "invocation not visible yet" };
          throw e;
        }
        // AWS gives the output only once the command has ended (GetCommandInvocation: "If the
        // command hasn't finished running, then this string is empty"): this is the last line of
        // stderr as SSM kept it, not live progress; a failure's own summary is on stdout.
        const progress = lastLines(out.StandardErrorContent, 1);
        if (progress && progress !== lastProgress) {
          lastProgress = progress;
          b.log(`${cmd.name} (${Math.round((Date.now() - started) / 1000)}s): ${progress}`);
        }
        if (out.Status === "Pending" || out.Status === "InProgress" || out.Status === "Delayed") return { state: "RETRY", reason: out.Status };
        return { state: "SUCCESS", value: out };
      });
      if (cmd.refusedExitCode !== undefined && invocation.Status === "Failed" && invocation.ResponseCode === cmd.refusedExitCode) {
        b.refusal = parseFacts(invocation.StandardOutputContent ?? "");
        b.log(`${cmd.name} declined (exit ${cmd.refusedExitCode}): ${JSON.stringify(b.refusal)}`);
        return;
      }
      if (invocation.Status !== "Success") {
        // A plain Error with fields (a subclass would not survive the provider's serialisation).
        const error = Object.assign(new Error(guestFailure(cmd.name, b.instanceId!, invocation)), { end: { status: invocation.Status, exitCode: invocation.ResponseCode } });
        error.name = "GuestScriptFailed";
        throw error;
      }
      b.facts = checkFacts(parseFacts(invocation.StandardOutputContent ?? ""), declaredFactsSchema(cmd.script, cmd.name));
      b.log(`${cmd.name} facts: ${JSON.stringify(b.facts)}`);
    },
    async cleanup(b, failed) {
      if (!failed || !b.commandId) return;
      const { CancelCommandCommand } = ssmSdk();
      try {
        await (await ssmClient(b.region)).send(new CancelCommandCommand({ CommandId: b.commandId, InstanceIds: b.instanceId ? [b.instanceId] : undefined }));
      } catch (e) {
        // Finished commands cannot be cancelled; the worker is terminated next anyway.
        if (errorName(e) !== "InvalidCommandId" && errorName(e) !== "InvalidInstanceId") throw e;
      }
    },
  };
}
