/**
 * The URL policy for webhook targets: what a target URL may look like, and which IP addresses a
 * delivery may connect to. Pure: resolving names and dialling addresses belong to the delivery
 * client, which asks this module about every address before it connects. The API's request schema
 * reports this module's verdict on a URL rather than keeping rules of its own.
 */
import { ValidationError } from "#domain/errors";

/** Longest target URL accepted: far beyond real webhook URLs, small enough to store and log. */
export const MAX_TARGET_URL_LENGTH = 2048;

const ABSOLUTE_HTTPS_RULE = "must be an absolute https:// URL";
const HOST_RULE = "a host is required";

/** Either publicly routable, or not, with the name and CIDR of the range that makes it so. */
export type AddressClass =
  | { readonly public: true }
  | { readonly public: false; readonly range: string };

/** Parses a webhook target URL: an absolute `https://` URL without credentials or fragment. */
export function parseTargetUrl(raw: string, field = "url"): URL {
  const verdict = judgeTargetUrl(raw);
  if ("problem" in verdict) throw new ValidationError(field, verdict.problem);
  return verdict.url;
}

/** The rule a target URL breaks, in the words a 400 shows after the field name, or undefined. */
export function targetUrlProblem(raw: string): string | undefined {
  const verdict = judgeTargetUrl(raw);
  return "problem" in verdict ? verdict.problem : undefined;
}

/** The longest host name DNS carries, without its final dot (RFC 1035, section 2.3.4). */
const MAX_HOST_NAME_LENGTH = 253;

function judgeTargetUrl(raw: string): { readonly url: URL } | { readonly problem: string } {
  if (typeof raw !== "string" || !/^https:\/\//i.test(raw)) {
    return { problem: ABSOLUTE_HTTPS_RULE };
  }
  if (raw.length > MAX_TARGET_URL_LENGTH) {
    return { problem: `must be at most ${MAX_TARGET_URL_LENGTH} characters` };
  }
  // The URL parser silently drops tabs and newlines and trims spaces, so the URL it returns would
  // differ from the one the user wrote (and signed); other whitespace, such as a no-break space
  // pasted along with a URL, is just as invisible to the user.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we look for
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) {
    return { problem: "must not contain spaces or control characters" };
  }
  // `https:///x` and `https://\\x` name no host in the generic URL syntax; the WHATWG parser would
  // guess one.
  const authority = /^https:\/\/([^/?#\\]*)/i.exec(raw)?.[1] ?? "";
  if (authority === "" || authority.endsWith("@") || authority.startsWith(":")) {
    return { problem: HOST_RULE };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: ABSOLUTE_HTTPS_RULE };
  }
  if (url.protocol !== "https:") return { problem: ABSOLUTE_HTTPS_RULE };
  if (url.hostname === "") return { problem: HOST_RULE };
  if (url.username !== "" || url.password !== "" || authority.includes("@")) {
    return { problem: "must not contain a user name or password" };
  }
  if (url.port === "0") return { problem: "must use a port between 1 and 65535" };
  if (!url.hostname.startsWith("[")) {
    // No resolver takes a longer name (RFC 1035): its every attempt would fail for three days.
    const name = url.hostname.replace(/\.$/, "");
    if (name.length > MAX_HOST_NAME_LENGTH || name.split(".").some((label) => label.length > 63)) {
      return {
        problem: `must name a host of at most ${MAX_HOST_NAME_LENGTH} characters, each label at most 63`,
      };
    }
  }
  // A fragment is never sent, yet it would be part of the signed URI: receivers could not verify.
  if (raw.includes("#")) return { problem: "must not contain a #fragment" };
  return { url };
}

/**
 * The receiver a target URL names, as the webhook lane tells receivers apart for fairness: the
 * host and, when it is not 443, the port (`URL.host`). A URL that does not parse is its own
 * receiver, so it shares nothing with the others.
 */
export function receiverOf(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/** True when the host (as in `URL.hostname`, IPv6 in brackets or not) is an IP address. */
export function isIpLiteral(host: string): boolean {
  const address = unbracket(host);
  return parseIpv4(address) !== undefined || parseIpv6(address) !== undefined;
}

/** The address inside a `URL.hostname`: IPv6 literals lose their brackets, names are unchanged. */
export function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Whether a delivery may connect to this IP address. Anything that is not a well-formed address
 * is non-public, so a surprise from a resolver fails closed.
 */
export function classifyAddress(ip: string): AddressClass {
  const address = unbracket(ip);
  const v4 = parseIpv4(address);
  if (v4 !== undefined) return classifyIpv4(v4);
  const v6 = parseIpv6(address);
  if (v6 !== undefined) return classifyIpv6(v6);
  return { public: false, range: "not an IP address" };
}

interface Ipv4Range {
  readonly base: number;
  readonly prefix: number;
  readonly name: string;
  readonly cidr: string;
}

function ipv4Range(cidr: string, name: string): Ipv4Range {
  const [base, prefix] = cidr.split("/");
  const parsed = parseIpv4(base ?? "");
  if (parsed === undefined) throw new Error(`bad range ${cidr}`);
  return { base: parsed, prefix: Number(prefix), name, cidr };
}

/** Most specific first: the first match names the range. */
const NON_PUBLIC_IPV4: readonly Ipv4Range[] = [
  ipv4Range("169.254.169.254/32", "cloud metadata endpoint, link-local"),
  ipv4Range("255.255.255.255/32", "broadcast"),
  ipv4Range("0.0.0.0/8", '"this network"'),
  ipv4Range("10.0.0.0/8", "private"),
  ipv4Range("100.64.0.0/10", "carrier-grade NAT"),
  ipv4Range("127.0.0.0/8", "loopback"),
  ipv4Range("169.254.0.0/16", "link-local"),
  ipv4Range("172.16.0.0/12", "private"),
  ipv4Range("192.0.0.0/24", "IETF protocol assignments"),
  ipv4Range("192.0.2.0/24", "documentation (TEST-NET-1)"),
  ipv4Range("192.88.99.0/24", "6to4 relay anycast"),
  ipv4Range("192.168.0.0/16", "private"),
  ipv4Range("198.18.0.0/15", "benchmarking"),
  ipv4Range("198.51.100.0/24", "documentation (TEST-NET-2)"),
  ipv4Range("203.0.113.0/24", "documentation (TEST-NET-3)"),
  ipv4Range("224.0.0.0/4", "multicast"),
  ipv4Range("240.0.0.0/4", "reserved"),
];

function classifyIpv4(address: number): AddressClass {
  for (const range of NON_PUBLIC_IPV4) {
    const shift = 32 - range.prefix;
    // Division instead of >>> keeps /0../32 prefixes exact without 32-bit shift wrap-around.
    if (Math.floor(address / 2 ** shift) === Math.floor(range.base / 2 ** shift)) {
      return { public: false, range: `${range.name} (${range.cidr})` };
    }
  }
  return { public: true };
}

type Ipv6Rule =
  | { readonly base: bigint; readonly prefix: number; readonly cidr: string; readonly name: string }
  | {
      readonly base: bigint;
      readonly prefix: number;
      readonly cidr: string;
      readonly embedded: string;
      readonly ipv4At: number;
    };

function ipv6Base(cidr: string): { base: bigint; prefix: number } {
  const [base, prefix] = cidr.split("/");
  const parsed = parseIpv6(base ?? "");
  if (parsed === undefined) throw new Error(`bad range ${cidr}`);
  return { base: parsed, prefix: Number(prefix) };
}

function ipv6Range(cidr: string, name: string): Ipv6Rule {
  return { ...ipv6Base(cidr), cidr, name };
}

/** A range that carries an IPv4 address at bit offset `ipv4At`: it is as public as that address. */
function ipv6Embedding(cidr: string, embedded: string, ipv4At: number): Ipv6Rule {
  return { ...ipv6Base(cidr), cidr, embedded, ipv4At };
}

/** Most specific first: the first match decides. */
const IPV6_RULES: readonly Ipv6Rule[] = [
  ipv6Range("::/128", "unspecified"),
  ipv6Range("::1/128", "loopback"),
  ipv6Embedding("::ffff:0:0/96", "IPv4-mapped", 96),
  ipv6Range("::/96", "IPv4-compatible (deprecated)"),
  ipv6Embedding("64:ff9b::/96", "NAT64", 96),
  // Local-use NAT64 may embed the IPv4 address at any of several offsets, and is never globally
  // reachable anyway.
  ipv6Range("64:ff9b:1::/48", "local-use NAT64"),
  ipv6Range("100::/64", "discard-only"),
  ipv6Range("2001::/32", "Teredo"),
  ipv6Range("2001:2::/48", "benchmarking"),
  ipv6Range("2001:10::/28", "ORCHID (deprecated)"),
  ipv6Range("2001:db8::/32", "documentation"),
  ipv6Embedding("2002::/16", "6to4", 16),
  ipv6Range("3fff::/20", "documentation"),
  ipv6Range("fc00::/7", "unique-local"),
  ipv6Range("fe80::/10", "link-local"),
  ipv6Range("fec0::/10", "site-local (deprecated)"),
  ipv6Range("ff00::/8", "multicast"),
];

const GLOBAL_UNICAST = ipv6Base("2000::/3");

function inIpv6Prefix(address: bigint, base: bigint, prefix: number): boolean {
  const shift = BigInt(128 - prefix);
  return address >> shift === base >> shift;
}

function classifyIpv6(address: bigint): AddressClass {
  for (const rule of IPV6_RULES) {
    if (!inIpv6Prefix(address, rule.base, rule.prefix)) continue;
    if ("name" in rule) return { public: false, range: `${rule.name} (${rule.cidr})` };
    const ipv4 = Number((address >> BigInt(128 - rule.ipv4At - 32)) & 0xffffffffn);
    const inner = classifyIpv4(ipv4);
    if (inner.public) return inner;
    return {
      public: false,
      range: `${rule.embedded} (${rule.cidr}) of ${formatIpv4(ipv4)}, ${inner.range}`,
    };
  }
  if (!inIpv6Prefix(address, GLOBAL_UNICAST.base, GLOBAL_UNICAST.prefix)) {
    return { public: false, range: "not global unicast (outside 2000::/3)" };
  }
  return { public: true };
}

/** Strict dotted quad; leading zeros are refused because some parsers read them as octal. */
function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** IPv6 in its text forms: compressed `::`, a dotted IPv4 tail, and an optional `%zone`. */
function parseIpv6(text: string): bigint | undefined {
  const zoneAt = text.indexOf("%");
  const body = zoneAt === -1 ? text : text.slice(0, zoneAt);
  if (zoneAt !== -1 && !/^[0-9a-zA-Z.:-]+$/.test(text.slice(zoneAt + 1))) return undefined;
  if (!body.includes(":")) return undefined;

  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0] ?? "", halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "", true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const words = [...head, ...tail].flat();
  if (halves.length === 1 ? words.length !== 8 : words.length > 7) return undefined;

  const filled = [...head.flat(), ...Array(8 - words.length).fill(0), ...tail.flat()];
  return filled.reduce((acc: bigint, word: number) => (acc << 16n) | BigInt(word), 0n);
}

/** Colon-separated groups as 16-bit words; a dotted IPv4 group becomes two words. */
function groupsOf(text: string, mayEndWithIpv4: boolean): number[][] | undefined {
  if (text === "") return [];
  const groups: number[][] = [];
  const parts = text.split(":");
  for (const [index, part] of parts.entries()) {
    if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push([Number.parseInt(part, 16)]);
      continue;
    }
    const ipv4 = mayEndWithIpv4 && index === parts.length - 1 ? parseIpv4(part) : undefined;
    if (ipv4 === undefined) return undefined;
    groups.push([Math.floor(ipv4 / 65536), ipv4 % 65536]);
  }
  return groups;
}
