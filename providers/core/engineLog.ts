// Messages a provider sends the engine as diagnostics of a resource (LogRequest over the engine's
// gRPC address, which the plugin protocol gives every provider as an argument). Unlike the
// provider's stdout, these are shown during preview too: which field forces a replacement, and
// warnings such as a gap in service.
type Client = { log(req: unknown, cb: (e?: unknown) => void): void };
const clients: Record<string, Client> = {};

/** The engine's address: the provider process's argument of the form host:port. */
export function engineAddress(argv = process.argv): string | undefined {
  return argv.slice(2).find((a) => /^(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(a));
}

export async function engineLog(urn: string, severity: "info" | "warning", message: string): Promise<void> {
  const addr = engineAddress();
  if (!addr) {
    console.log(message);
    return;
  }
  /* eslint-disable @typescript-eslint/no-var-requires */
  const engproto = require("@pulumi/pulumi/proto/engine_pb");
  if (!clients[addr]) {
    const grpc = require("@grpc/grpc-js");
    const engrpc = require("@pulumi/pulumi/proto/engine_grpc_pb");
    clients[addr] = new engrpc.EngineClient(addr, grpc.credentials.createInsecure());
  }
  const req = new engproto.LogRequest();
  req.setSeverity(severity === "warning" ? engproto.LogSeverity.WARNING : engproto.LogSeverity.INFO);
  req.setMessage(message);
  req.setUrn(urn);
  await new Promise<void>((resolve) => clients[addr].log(req, () => resolve()));
}
