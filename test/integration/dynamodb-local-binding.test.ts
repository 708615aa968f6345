import { existsSync, readFileSync } from "node:fs";
import { expect, inject, it } from "vitest";

/** Linux lists every TCP socket of the machine here, listening ones in state 0A. */
const SOCKET_TABLES = ["/proc/net/tcp", "/proc/net/tcp6"];
const LISTEN = "0A";
/** 127.0.0.0/8 as /proc writes it (little-endian hex), and ::1 and ::ffff:127.x.x.x. */
const LOOPBACK_ADDRESS = /^(?:[0-9A-F]{6}7F|0{31}1|0{16}FFFF0000[0-9A-F]{6}7F)$/;

/** The local addresses of the sockets listening on `port`, as /proc shows them. */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return SOCKET_TABLES.filter(existsSync).flatMap((table) =>
    readFileSync(table, "utf8")
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[3] === LISTEN && fields[1]?.endsWith(`:${hexPort}`))
      .map((fields) => (fields[1] ?? "").split(":")[0] ?? ""),
  );
}

it("runs DynamoDB Local on 127.0.0.1 only, never on every interface", () => {
  // Prepare
  const port = Number(new URL(inject("dynamoEndpoint")).port);

  // Act
  const addresses = listeningAddresses(port);

  // Assess
  expect(inject("dynamoListensOn")).toBe("127.0.0.1");
  if (SOCKET_TABLES.some(existsSync)) {
    expect(addresses.length).toBeGreaterThan(0);
    expect(addresses.filter((address) => !LOOPBACK_ADDRESS.test(address))).toEqual([]);
  }
});
