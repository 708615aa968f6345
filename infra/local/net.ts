import type { Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";

/** Credentials for local emulators, which accept any. */
export const localCredentials = { accessKeyId: "local", secretAccessKey: "local" } as const;

/** Region and account of every local resource; ARNs and queue URLs carry them. */
export const localRegion = "us-east-1";
export const localAccountId = "123456789012";

/** Every local server listens on loopback only: nothing on the machine is reachable from outside. */
export const loopback = "127.0.0.1";

/** A TCP port on 127.0.0.1 that is free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, loopback, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts `server` on `host:port` (0 picks a free port) and returns the port it got. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      if (typeof address === "object" && address) resolve(address.port);
      else reject(new Error("the server has no TCP address"));
    });
  });
}

/** Stops accepting connections and drops idle keep-alive ones, so the close does not hang. */
export function close(server: HttpServer): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

/** The URL of a server bound to `host:port`, with IPv6 hosts in brackets. */
export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
