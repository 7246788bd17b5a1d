// Run in a child process by test/unit/resourceRegistration.test.ts (pulumi's mocks are global to a
// process): declares one resource of the kind named in argv against the SDK's mock monitor, under
// ts-node as a TypeScript program runs, and prints on its last line what the test checks.
import * as pulumi from "@pulumi/pulumi";

const KINDS: Record<string, [string, string, Record<string, unknown>]> = {
  SharedAmi: ["sharedAmi", "SharedAmi", { sourceAmiId: "ami-0123456789abcdef0", sourceRegion: "us-east-1", regions: ["eu-west-1"] }],
  RecoveryAlarm: ["recoveryAlarm", "RecoveryAlarm", { instanceId: "i-0123456789abcdef0", region: "us-east-1" }],
  ConvertedHvmAmi: ["convertedHvmAmi", "ConvertedHvmAmi", { sourceAmiId: "ami-0123456789abcdef0", region: "us-east-1" }],
  SurrogateAmi: ["surrogateAmi", "SurrogateAmi", { region: "us-east-1" }],
};

async function main() {
  const [file, className, args] = KINDS[process.argv[2]];
  const positions: string[] = [];
  await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: { ...a.inputs, declared: true } }), call: (a) => a.inputs }, "ami-factory", "unit");
  // The request the SDK sends, as the engine would get it: the resource's source position.
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: { getSourceposition(): { getUri(): string; getLine(): number } | undefined }, cb: unknown): unknown };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const p = req.getSourceposition();
    positions.push(p ? `${p.getUri().split("/").pop()}:${p.getLine()}` : "none");
    return register(req, cb);
  };
  type Declared = pulumi.CustomResource & { declared?: pulumi.Output<boolean> };
  const Resource = (await import(`../../providers/${file}`))[className] as new (name: string, args: Record<string, unknown>) => Declared;
  // Stack traces formatted while the resource is declared (ts-node maps each through source maps).
  let traces = 0;
  const format = Error.prepareStackTrace;
  Error.prepareStackTrace = (e, callSites) => {
    if (callSites.length) traces++;
    return format ? format(e, callSites) : `${e}\n${callSites.map((c) => `    at ${c}`).join("\n")}`;
  };
  const limitBefore = Error.stackTraceLimit;
  const resource = new Resource("web", args);
  const limitAfter = Error.stackTraceLimit;
  const tracesWhileDeclaring = traces;
  let thrown = "";
  let thrownFrom = "";
  try {
    new Resource("", args);
  } catch (e) {
    thrown = (e as Error).message;
    // The first frame of its stack: the resource's constructor, where the error is rethrown.
    thrownFrom = /\(([^)]*)\)/.exec(String((e as Error).stack).split("\n")[1] ?? "")?.[1]?.split("/").pop() ?? "";
  }
  const limitAfterThrow = Error.stackTraceLimit;
  const id = await new Promise((resolve) => resource.id.apply(resolve));
  console.log(JSON.stringify({ tracesWhileDeclaring, limitBefore, limitAfter, limitAfterThrow, thrown, thrownFrom, positions, id }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
