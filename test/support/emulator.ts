// The AWS emulator the tests use: the same starter as the local demo (scripts/emulator/start.ts).
export * from "../../scripts/emulator/start";
