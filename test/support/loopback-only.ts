import net from "node:net";
import { vi } from "vitest";

const LOOPBACK = new Set(["127.0.0.1", "::1"]);

/** Every TCP connect this process makes, by host, while the guard is on. */
export interface LoopbackGuard {
  /** How many connects were asked for so far, refused ones included. */
  count(): number;
  /** The hosts asked for since `count()` was `from`, in order. */
  hostsSince(from: number): string[];
  restore(): void;
}

/**
 * Refuses, by throwing, every TCP connect in this process that does not go to 127.0.0.1 or ::1,
 * so a test cannot reach another machine even if the code under test had a bug; it also records
 * where each connect went.
 */
export function allowLoopbackOnly(): LoopbackGuard {
  const original = net.Socket.prototype.connect;
  const hosts: string[] = [];
  const spy = vi.spyOn(net.Socket.prototype, "connect").mockImplementation(function (
    this: net.Socket,
    ...args: unknown[]
  ) {
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    const host =
      typeof first === "object" && first !== null
        ? (first as { host?: string }).host
        : (args[1] as string | undefined);
    hosts.push(String(host));
    if (host === undefined || !LOOPBACK.has(host)) {
      throw new Error(`test guard: refusing to connect to ${String(host)}`);
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  });
  return {
    count: () => hosts.length,
    hostsSince: (from) => hosts.slice(from),
    restore: () => spy.mockRestore(),
  };
}
