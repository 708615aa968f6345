import { isIP } from "node:net";
import { describe, expect, it } from "vitest";
import { ValidationError } from "#domain/errors";
import {
  classifyAddress,
  isIpLiteral,
  MAX_TARGET_URL_LENGTH,
  parseTargetUrl,
  targetUrlProblem,
  unbracket,
} from "#domain/target-url";

/** [address, the range text it must be refused with] */
const NON_PUBLIC: ReadonlyArray<readonly [string, string]> = [
  ["0.0.0.0", '"this network" (0.0.0.0/8)'],
  ["0.1.2.3", '"this network" (0.0.0.0/8)'],
  ["10.0.0.1", "private (10.0.0.0/8)"],
  ["10.255.255.255", "private (10.0.0.0/8)"],
  ["100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"],
  ["100.127.255.255", "carrier-grade NAT (100.64.0.0/10)"],
  ["127.0.0.1", "loopback (127.0.0.0/8)"],
  ["127.255.255.254", "loopback (127.0.0.0/8)"],
  ["169.254.169.254", "cloud metadata endpoint, link-local (169.254.169.254/32)"],
  ["169.254.0.1", "link-local (169.254.0.0/16)"],
  ["169.254.170.2", "link-local (169.254.0.0/16)"],
  ["172.16.0.1", "private (172.16.0.0/12)"],
  ["172.31.255.255", "private (172.16.0.0/12)"],
  ["192.0.0.8", "IETF protocol assignments (192.0.0.0/24)"],
  ["192.0.2.1", "documentation (TEST-NET-1) (192.0.2.0/24)"],
  ["192.88.99.1", "6to4 relay anycast (192.88.99.0/24)"],
  ["192.168.1.1", "private (192.168.0.0/16)"],
  ["198.18.0.1", "benchmarking (198.18.0.0/15)"],
  ["198.19.255.255", "benchmarking (198.18.0.0/15)"],
  ["198.51.100.7", "documentation (TEST-NET-2) (198.51.100.0/24)"],
  ["203.0.113.9", "documentation (TEST-NET-3) (203.0.113.0/24)"],
  ["224.0.0.1", "multicast (224.0.0.0/4)"],
  ["239.255.255.250", "multicast (224.0.0.0/4)"],
  ["240.0.0.1", "reserved (240.0.0.0/4)"],
  ["255.255.255.254", "reserved (240.0.0.0/4)"],
  ["255.255.255.255", "broadcast (255.255.255.255/32)"],
  ["::", "unspecified (::/128)"],
  ["::1", "loopback (::1/128)"],
  ["0:0:0:0:0:0:0:1", "loopback (::1/128)"],
  ["[::1]", "loopback (::1/128)"],
  ["::ffff:127.0.0.1", "IPv4-mapped (::ffff:0:0/96) of 127.0.0.1, loopback (127.0.0.0/8)"],
  ["::ffff:7f00:1", "IPv4-mapped (::ffff:0:0/96) of 127.0.0.1, loopback (127.0.0.0/8)"],
  ["::FFFF:10.0.0.1", "IPv4-mapped (::ffff:0:0/96) of 10.0.0.1, private (10.0.0.0/8)"],
  [
    "::ffff:a9fe:a9fe",
    "IPv4-mapped (::ffff:0:0/96) of 169.254.169.254, cloud metadata endpoint, link-local (169.254.169.254/32)",
  ],
  [
    "0:0:0:0:0:ffff:192.168.0.1",
    "IPv4-mapped (::ffff:0:0/96) of 192.168.0.1, private (192.168.0.0/16)",
  ],
  ["::127.0.0.1", "IPv4-compatible (deprecated) (::/96)"],
  ["::8.8.8.8", "IPv4-compatible (deprecated) (::/96)"],
  ["64:ff9b::10.0.0.1", "NAT64 (64:ff9b::/96) of 10.0.0.1, private (10.0.0.0/8)"],
  ["64:ff9b::7f00:1", "NAT64 (64:ff9b::/96) of 127.0.0.1, loopback (127.0.0.0/8)"],
  ["64:ff9b:1::8.8.8.8", "local-use NAT64 (64:ff9b:1::/48)"],
  ["100::1", "discard-only (100::/64)"],
  ["2001::1", "Teredo (2001::/32)"],
  ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo (2001::/32)"],
  ["2001:2::1", "benchmarking (2001:2::/48)"],
  ["2001:10::1", "ORCHID (deprecated) (2001:10::/28)"],
  ["2001:db8::1", "documentation (2001:db8::/32)"],
  ["2001:DB8:85A3::8A2E:370:7334", "documentation (2001:db8::/32)"],
  ["2002:7f00:1::1", "6to4 (2002::/16) of 127.0.0.1, loopback (127.0.0.0/8)"],
  [
    "2002:a9fe:a9fe::1",
    "6to4 (2002::/16) of 169.254.169.254, cloud metadata endpoint, link-local (169.254.169.254/32)",
  ],
  ["3fff::1", "documentation (3fff::/20)"],
  ["fc00::1", "unique-local (fc00::/7)"],
  ["fd00:ec2::254", "unique-local (fc00::/7)"],
  ["fe80::1", "link-local (fe80::/10)"],
  ["fe80::1%eth0", "link-local (fe80::/10)"],
  ["febf:ffff::1", "link-local (fe80::/10)"],
  ["fec0::1", "site-local (deprecated) (fec0::/10)"],
  ["ff02::1", "multicast (ff00::/8)"],
  ["ff05::1:3", "multicast (ff00::/8)"],
  ["::ffff:0:1.2.3.4", "not global unicast (outside 2000::/3)"],
  ["1::1", "not global unicast (outside 2000::/3)"],
  ["4000::1", "not global unicast (outside 2000::/3)"],
  ["e000::1", "not global unicast (outside 2000::/3)"],
];

const PUBLIC: readonly string[] = [
  "8.8.8.8",
  "1.1.1.1",
  "9.255.255.255",
  "11.0.0.0",
  "100.63.255.255",
  "100.128.0.0",
  "126.255.255.255",
  "128.0.0.0",
  "169.253.255.255",
  "169.255.0.0",
  "172.15.255.255",
  "172.32.0.0",
  "192.0.1.1",
  "192.167.255.255",
  "192.169.0.0",
  "198.17.255.255",
  "198.20.0.0",
  "223.255.255.255",
  "2606:4700:4700::1111",
  "2001:4860:4860::8888",
  "2a00:1450:4001:82a::200e",
  "2001:db9::1",
  "3fff:1000::1",
  "::ffff:8.8.8.8",
  "64:ff9b::8.8.8.8",
  "2002:808:808::1",
];

/** Strings that are no IP address at all: they must fail closed. */
const NOT_ADDRESSES: readonly string[] = [
  "",
  "localhost",
  "receiver.test",
  "1.2.3",
  "1.2.3.4.5",
  "256.0.0.1",
  "01.2.3.4",
  "0x7f.0.0.1",
  " 8.8.8.8",
  "8.8.8.8 ",
  "1::2::3",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7:8::",
  "12345::1",
  ":1::",
  ":::",
  "::1%",
  "fe80::1%eth 0",
  "::ffff:1.2.3.4.5",
  "::ffff:01.2.3.4",
  "1.2.3.4::",
  "[::1",
];

describe("classifyAddress", () => {
  it.each(NON_PUBLIC)("refuses %s as %s", (address, range) => {
    // Act
    const verdict = classifyAddress(address);

    // Assess
    expect(verdict).toEqual({ public: false, range });
  });

  it.each(PUBLIC)("accepts %s as public", (address) => {
    // Act
    const verdict = classifyAddress(address);

    // Assess
    expect(verdict).toEqual({ public: true });
  });

  it.each(NOT_ADDRESSES)("fails closed on %j, which is no IP address", (text) => {
    // Act
    const verdict = classifyAddress(text);

    // Assess
    expect(verdict).toEqual({ public: false, range: "not an IP address" });
  });

  it("reads the same strings as addresses as node:net does", () => {
    // Prepare
    const spellings = [
      ...NON_PUBLIC.map(([address]) => address),
      ...PUBLIC,
      ...NOT_ADDRESSES,
      "1:2:3:4:5:6:7::",
      "::1:2:3:4:5:6:7",
      "1:2:3:4:5:6:1.2.3.4",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%25eth0",
    ].map(unbracket);

    // Act
    const disagreements = spellings.filter((text) => isIpLiteral(text) !== (isIP(text) !== 0));

    // Assess
    expect(disagreements).toEqual([]);
  });
});

describe("isIpLiteral", () => {
  it.each([
    ["127.0.0.1", true],
    ["[::1]", true],
    ["::ffff:7f00:1", true],
    ["receiver.test", false],
    ["2130706433", false],
    ["[receiver.test]", false],
  ] as const)("%s is an IP literal: %s", (host, expected) => {
    // Act
    const literal = isIpLiteral(host);

    // Assess
    expect(literal).toBe(expected);
  });
});

describe("IPv4 spellings in a target URL", () => {
  // The URL parser turns every IPv4 spelling into a dotted quad, so the policy sees the real address.
  it.each([
    ["https://2130706433/", "127.0.0.1"],
    ["https://0x7f.1/", "127.0.0.1"],
    ["https://0x7f000001/", "127.0.0.1"],
    ["https://017700000001/", "127.0.0.1"],
    ["https://0177.0.0.1/", "127.0.0.1"],
    ["https://127.1/", "127.0.0.1"],
    ["https://%31%32%37.0.0.1/", "127.0.0.1"],
    ["https://127.0.0.1./", "127.0.0.1"],
    ["https://2852039166/latest/meta-data/", "169.254.169.254"],
    ["https://0xa9fea9fe/", "169.254.169.254"],
    ["https://0251.0376.0251.0376/", "169.254.169.254"],
    ["https://10.1/", "10.0.0.1"],
    ["https://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"],
    ["https://[0:0:0:0:0:ffff:a9fe:a9fe]/", "[::ffff:a9fe:a9fe]"],
    ["https://[64:ff9b::10.0.0.1]/", "[64:ff9b::a00:1]"],
    ["https://[fe80::1]/", "[fe80::1]"],
  ])("%s is the non-public %s", (raw, host) => {
    // Act
    const url = parseTargetUrl(raw);
    const verdict = classifyAddress(url.hostname);

    // Assess
    expect(url.hostname).toBe(host);
    expect(isIpLiteral(url.hostname)).toBe(true);
    expect(verdict.public).toBe(false);
  });
});

describe("parseTargetUrl", () => {
  it.each([
    ["https://crm.example.com/hooks/lead", "https://crm.example.com/hooks/lead"],
    ["https://crm.example.com:8443/x", "https://crm.example.com:8443/x"],
    ["HTTPS://CRM.Example.COM/Path", "https://crm.example.com/Path"],
    ["https://[2001:4860::8888]/x", "https://[2001:4860::8888]/x"],
    ["https://8.8.8.8/x?y=1", "https://8.8.8.8/x?y=1"],
  ])("accepts %s", (raw, href) => {
    // Act
    const url = parseTargetUrl(raw);
    const problem = targetUrlProblem(raw);

    // Assess
    expect(url.href).toBe(href);
    expect(problem).toBeUndefined();
  });

  it("keeps query parameters in their order, repeats included", () => {
    // Prepare
    const raw = "https://crm.example.com/hooks?b=2&a=1&b=3&empty=&flag";

    // Act
    const url = parseTargetUrl(raw);

    // Assess
    expect(url.search).toBe("?b=2&a=1&b=3&empty=&flag");
    expect([...url.searchParams.keys()]).toEqual(["b", "a", "b", "empty", "flag"]);
  });

  it("accepts a host name as long as DNS carries, with labels of 63 and a final dot", () => {
    // Prepare: 3 labels of 63, one of 61, and the dots between them make 253
    const host = `${`${"a".repeat(63)}.`.repeat(3)}${"b".repeat(61)}`;

    // Act
    const url = parseTargetUrl(`https://${host}./hook`);

    // Assess
    expect(host).toHaveLength(253);
    expect(url.hostname).toBe(`${host}.`);
  });

  it("accepts a URL of exactly the maximum length", () => {
    // Prepare
    const prefix = "https://crm.example.com/";
    const raw = prefix + "a".repeat(MAX_TARGET_URL_LENGTH - prefix.length);

    // Act
    const url = parseTargetUrl(raw);

    // Assess
    expect(url.href).toHaveLength(MAX_TARGET_URL_LENGTH);
  });

  it.each([
    ["http://crm.example.com/", "must be an absolute https:// URL"],
    ["ftp://crm.example.com/", "must be an absolute https:// URL"],
    ["//crm.example.com/x", "must be an absolute https:// URL"],
    ["/hooks/lead", "must be an absolute https:// URL"],
    ["crm.example.com", "must be an absolute https:// URL"],
    ["https:crm.example.com", "must be an absolute https:// URL"],
    ["https:\\\\crm.example.com", "must be an absolute https:// URL"],
    [" https://crm.example.com/", "must be an absolute https:// URL"],
    ["https://crm.example.com:99999/", "must be an absolute https:// URL"],
    ["https://exa%20mple.com/", "must be an absolute https:// URL"],
    ["https://", "a host is required"],
    ["https:///hooks", "a host is required"],
    ["https://\\\\crm.example.com/", "a host is required"],
    ["https://:443/", "a host is required"],
    ["https://user:pw@crm.example.com/", "must not contain a user name or password"],
    ["https://user@crm.example.com/", "must not contain a user name or password"],
    ["https://crm.example.com/a b", "must not contain spaces or control characters"],
    ["https://crm.example.com/\n", "must not contain spaces or control characters"],
    ["https://crm.example.com/\ta", "must not contain spaces or control characters"],
    ["https://crm.example.com/a\u00a0b", "must not contain spaces or control characters"],
    ["https://crm.example.com/\u007f", "must not contain spaces or control characters"],
    ["https://crm.example.com:0/", "must use a port between 1 and 65535"],
    ["https://crm.example.com/#section", "must not contain a #fragment"],
    [`https://crm.example.com/${"a".repeat(2048)}`, "must be at most 2048 characters"],
    [
      `https://${"a".repeat(64)}.example.com/`,
      "must name a host of at most 253 characters, each label at most 63",
    ],
    [
      `https://${`${"a".repeat(63)}.`.repeat(4)}com/`,
      "must name a host of at most 253 characters, each label at most 63",
    ],
  ])("refuses %j: %s", (raw, rule) => {
    // Act
    const parse = () => parseTargetUrl(raw, "actions[0].url");
    const problem = targetUrlProblem(raw);

    // Assess
    expect(parse).toThrow(ValidationError);
    expect(parse).toThrow(`actions[0].url: ${rule}`);
    expect(problem).toBe(rule);
  });

  it("names the field it was given", () => {
    // Act
    let caught: unknown;
    try {
      parseTargetUrl("http://crm.example.com/");
    } catch (error) {
      caught = error;
    }

    // Assess
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).field).toBe("url");
    expect((caught as ValidationError).rule).toBe("must be an absolute https:// URL");
  });
});
