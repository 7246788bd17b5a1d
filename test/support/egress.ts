// The worker security group's egress changes as the provider sent them (recorded by the emulator).
import type { Emulator } from "./emulator";

/** The worker security group's egress changes as sent: what was revoked and what allowed. */
export async function egressOf(emu: Emulator): Promise<{ revoked: string[]; allowed: string[] }> {
  const rules = (calls: Record<string, string>[]) =>
    calls.flatMap((c) => Object.keys(c).filter((k) => /^IpPermissions\.\d+\.IpProtocol$/.test(k)).map((k) => {
      const p = k.replace(/IpProtocol$/, "");
      return [c[k], c[`${p}FromPort`], c[`${p}IpRanges.1.CidrIp`]].filter(Boolean).join(" ");
    }));
  return { revoked: rules(await emu.calls("RevokeSecurityGroupEgress")), allowed: rules(await emu.calls("AuthorizeSecurityGroupEgress")) };
}

