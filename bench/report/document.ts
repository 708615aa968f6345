/** docs/performance.md and its charts, written from the measured results only. */
import { LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION, prices, quote } from "../prices.ts";
import type { Machine, ScenarioCounts, SectionName, SectionResults, Stamp } from "../results.ts";
import { EMPTY_RECEIVE } from "../system/counters.ts";
import { WARM_UP_REQUESTS } from "../system/warm-up.ts";
import { barChart } from "./svg.ts";

export interface RenderedDocument {
  readonly markdown: string;
  /** SVG files by name, to sit next to the document. */
  readonly charts: Record<string, string>;
}

const RUNTIME_ERRORS_NOTE =
  "Runtime errors are the local runtime's own reports of an API call or a batch timing out: any at all means the machine could not keep up, and that row describes an overloaded system.";

/** Above this load average per core, the document warns that times are noisy. */
const BUSY_LOAD_PER_CORE = 0.5;

const integer = (value: number) => Math.round(value).toLocaleString("en-US");
const decimal = (value: number, digits = 1) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      })
    : "–";
const ms = (value: number) => (Number.isFinite(value) ? `${integer(value)} ms` : "–");
const kib = (bytes: number) => `${decimal(bytes / 1024)} KiB`;
const dollars = (value: number) => `$${value < 10 ? value.toFixed(3) : value.toFixed(2)}`;
/** Per-delivery figures: whole numbers as such, fractions with two decimals. */
const perDelivery = (value: number) =>
  Number.isInteger(Math.round(value * 100) / 100) ? String(Math.round(value)) : decimal(value, 2);

function stampLine(stamp: Stamp): string {
  const load = stamp.machine.loadAverage[0] ?? 0;
  return `_Measured ${stamp.measuredAt.slice(0, 16).replace("T", " ")} UTC${stamp.quick ? " in the shortened run (`--quick`): few samples" : ""}, in ${decimal(stamp.seconds, 0)} s; load average ${decimal(load, 2)} on ${stamp.machine.cores} cores when it started._`;
}

/**
 * A Markdown table. `align` has one letter per column, `l` or `r`; by default the first column
 * (names) is left-aligned and the rest (figures) right-aligned.
 */
function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align = `l${"r".repeat(header.length - 1)}`,
): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(header),
    line(header.map((_, index) => (align[index] === "r" ? "---:" : "---"))),
    ...rows.map(line),
  ].join("\n");
}

function missing(name: SectionName): string {
  return `_Not measured yet: \`npm run bench -- ${name}\`._`;
}

function machineLines(machine: Machine, results: SectionResults): string[] {
  const stamps = Object.values(results) as Stamp[];
  const dates = stamps.map((stamp) => stamp.measuredAt).sort();
  const busiest = Math.max(...stamps.map((stamp) => stamp.machine.loadAverage[0] ?? 0));
  const lines = [
    `- **Machine**: ${machine.cpuModel}, ${machine.cores} cores, ${decimal(machine.memoryGiB)} GiB of memory, ${machine.os}.`,
    `- **Node**: ${machine.node} (Lambda runs the functions on Node.js 24).`,
    `- **Date**: ${dates[0]?.slice(0, 10)}${dates.length > 1 && dates[dates.length - 1]?.slice(0, 10) !== dates[0]?.slice(0, 10) ? ` to ${dates[dates.length - 1]?.slice(0, 10)}` : ""}; each section says when it ran.`,
  ];
  if (busiest / machine.cores > BUSY_LOAD_PER_CORE) {
    lines.push(
      `- **Shared machine**: other work ran at the same time (load averages up to ${decimal(busiest, 1)} on ${machine.cores} cores), so times and rates below are noisy and lower than the same code reaches on an idle machine; counts, units, bytes and sizes are not affected.`,
    );
  }
  return lines;
}

/** Renders the whole document from whatever sections have results. */
export function renderDocument(results: SectionResults): RenderedDocument {
  const charts: Record<string, string> = {};
  const latest = (Object.values(results) as Stamp[]).sort((a, b) =>
    b.measuredAt.localeCompare(a.measuredAt),
  )[0];
  const out: string[] = [
    "# Performance of the webhook lane",
    "",
    "Written by `npm run bench` from what it measured; do not edit it by hand. `npm run bench -- <section>` measures one section (latency, throughput, fairness, cpu, requests, cost, bundles, scale) and keeps the others' last figures; `npm run bench -- --quick` runs every section briefly. The raw figures are in [performance-results.json](performance-results.json).",
    "",
    ...(latest ? machineLines(latest.machine, results) : []),
    "",
    "**What runs.** The local runtime (`startLocalRuntime`): the real `api`, `engine` and `deliver` handlers, the API Gateway stand-in, the lanes' pollers, the SQS emulator and the scheduler stand-in share one Node process; DynamoDB Local is a Java process. The HTTPS receivers (127.0.0.1, self-signed certificate trusted through `NODE_EXTRA_CA_CERTS`) run in a second process and the load generator in a third, so neither competes with the system for its event loop. Settings are the deployed ones from `cdk.json`: log level, the webhook lane's maximum concurrency, 10 messages a batch; metrics are on, tracing off (no X-Ray daemon).",
    `Before a section measures speed, DynamoDB Local is brought up to speed with ${integer(WARM_UP_REQUESTS)} requests of its own (\`bench/system/warm-up.ts\`): the JVM runs its code several times slower until it has compiled it, and DynamoDB has no such warm-up.`,
    "",
    "**What carries over to AWS.** Request counts, capacity units, log bytes, bundle sizes and the shape of the curves. Latencies and rates do not: here one event loop carries the API, both lanes' consumers and the SQS emulator, where Lambda runs many instances side by side, and DynamoDB Local is not DynamoDB.",
    "",
  ];

  out.push("## 1. Latency", "");
  const latency = results.latency;
  if (!latency) out.push(missing("latency"));
  else {
    out.push(
      stampLine(latency),
      "",
      `End to end: from the enrollment call being answered (202) to the signed webhook reaching the receiver. Each rate is offered open loop (enrollments sent on schedule whether or not earlier ones were answered) for ${latency.warmupSeconds} s of warm-up, not counted, then ${latency.measureSeconds} s measured; one signed webhook action per workflow, a contact whose webhook body is ${integer(latency.bodyBytes)} bytes.`,
      "",
      table(
        [
          "offered /s",
          "sent /s",
          "enrollments",
          "refused",
          "delivered",
          "p50",
          "p95",
          "p99",
          "API answer p50",
          "API answer p95",
          "runtime errors",
        ],
        latency.rates.map((rate) => [
          String(rate.offeredPerSecond),
          decimal(rate.sentPerSecond),
          integer(rate.enrollments),
          integer(rate.refused),
          integer(rate.delivered),
          ms(rate.latencyMs.p50),
          ms(rate.latencyMs.p95),
          ms(rate.latencyMs.p99),
          ms(rate.apiAnswerMs.p50),
          ms(rate.apiAnswerMs.p95),
          integer(rate.runtimeErrors),
        ]),
      ),
      "",
      "![Latency percentiles by offered rate](performance-latency.svg)",
      "",
      `When the p50 grows with the offered rate, the system was behind: enrollments and lane messages queued in the one process (the API answer times show the API's share of the wait). ${RUNTIME_ERRORS_NOTE}`,
      "",
    );
    charts["performance-latency.svg"] = barChart({
      title: "Enrollment answered to webhook received",
      yLabel: "milliseconds",
      categories: latency.rates.map((rate) => `${rate.offeredPerSecond}/s offered`),
      series: [
        { name: "p50", values: latency.rates.map((rate) => rate.latencyMs.p50) },
        { name: "p95", values: latency.rates.map((rate) => rate.latencyMs.p95) },
        { name: "p99", values: latency.rates.map((rate) => rate.latencyMs.p99) },
      ],
    });
  }

  out.push("## 2. Throughput", "");
  const throughput = results.throughput;
  if (!throughput) out.push(missing("throughput"));
  else {
    const ceiling = throughput.receiverCeiling;
    out.push(
      stampLine(throughput),
      "",
      `${throughput.offeredPerSecond} enrollments a second offered for ${throughput.offerSeconds} s, open loop. The sustained rate is read over the middle of the deliveries, from the ${decimal(throughput.steadyShare[0] * 100, 0)}th to the ${decimal(throughput.steadyShare[1] * 100, 0)}th percentile of arrivals (${decimal(throughput.steadySeconds[0])} s to ${decimal(throughput.steadySeconds[1])} s after the first enrollment), leaving out the pipeline filling and draining; a system that cannot keep up delivers those at its own pace, however late. The receiver's ceiling is measured in the same run, on the same receiver process, by a plain undici POST loop (keep-alive, ${ceiling.concurrency} requests in flight, ${integer(ceiling.bodyBytes)}-byte JSON bodies like the webhooks').`,
      "",
      table(
        ["measure", "value"],
        [
          [
            "enrollments offered (refused)",
            `${integer(throughput.enrollments)} (${integer(throughput.refused)})`,
          ],
          ["sustained deliveries per second", decimal(throughput.sustainedPerSecond)],
          ["delivered in the end", integer(throughput.delivered)],
          ["last delivery after", `${decimal(throughput.drainedAfterSeconds)} s`],
          ["runtime errors", integer(throughput.runtimeErrors)],
          ["receiver ceiling (requests per second)", decimal(ceiling.perSecond, 0)],
          ["sustained / ceiling", `${decimal(throughput.ratio * 100, 1)}%`],
        ],
      ),
      "",
    );
  }

  out.push("## 3. Fairness", "");
  const fairness = results.fairness;
  if (!fairness) out.push(missing("fairness"));
  else {
    const runs = [
      ["healthy receiver alone", fairness.alone],
      [
        `beside a receiver that never answers, ${fairness.hungQueued} deliveries queued ahead`,
        fairness.withHungReceiver,
      ],
    ] as const;
    out.push(
      stampLine(fairness),
      "",
      `A healthy receiver gets ${fairness.alone.enrollments} deliveries at ${fairness.healthyPerSecond} a second, first alone, then right after ${fairness.hungQueued} deliveries to another receiver that accepts the connection and the request and never responds (the healthy ones start once the engine has put all ${fairness.hungQueued} on the lane; the silent receiver then held ${integer(fairness.hungHeldAtStart)} requests open). The lane runs at most ${fairness.laneConcurrency} batches of ${fairness.batchSize} at once, and a batch ends when its slowest attempt does, so each batch with a hung attempt holds its slot until the delivery client's response timeout. Each delivery is given ${fairness.alone.windowSeconds} s from its enrollment being answered; percentiles are over those that arrived.`,
      "",
      table(
        ["run", "arrived within the window", "p50", "p95"],
        runs.map(([name, run]) => [
          name,
          `${run.arrivedWithinWindow} of ${run.enrollments}`,
          ms(run.latencyMs.p50),
          ms(run.latencyMs.p95),
        ]),
      ),
      "",
      "![Healthy deliveries within the window](performance-fairness.svg)",
      "",
    );
    charts["performance-fairness.svg"] = barChart({
      title: `Healthy deliveries arriving within ${fairness.alone.windowSeconds} s`,
      yLabel: "deliveries",
      categories: ["alone", "beside a silent receiver"],
      series: [
        { name: "enrolled", values: runs.map(([, run]) => run.enrollments) },
        { name: "arrived in time", values: runs.map(([, run]) => run.arrivedWithinWindow) },
      ],
    });
  }

  out.push("## 4. CPU per delivery", "");
  const cpu = results.cpu;
  if (!cpu) out.push(missing("cpu"));
  else {
    out.push(
      stampLine(cpu),
      "",
      table(
        ["what", "CPU", "how"],
        [
          [
            "deliver handler, per delivery",
            `${integer(cpu.direct.microsPerDelivery)} µs (p95 ${integer(cpu.direct.p95MicrosPerDelivery)} µs)`,
            `process.cpuUsage() around each of ${cpu.direct.invocations} invocations of ${cpu.direct.batchSize} messages, run one at a time (median; warm-up left out). Includes the in-process SQS emulator's and the client's share of the requests it makes, not DynamoDB Local's.`,
          ],
          [
            "bare undici POST, per request",
            `${integer(cpu.bareUndici.microsPerRequest)} µs`,
            `process.cpuUsage() around ${cpu.bareUndici.rounds.length} rounds of ${integer(cpu.bareUndici.requests / cpu.bareUndici.rounds.length)} POSTs of ${integer(cpu.bareUndici.bodyBytes)} bytes, ${cpu.bareUndici.concurrency} in flight, to the same receiver (median round)`,
          ],
          [
            "whole system process, per delivery",
            `${integer(cpu.loaded.systemMicrosPerDelivery)} µs`,
            `total CPU of the process (API, engine, deliver, pollers, SQS emulator, scheduler) from the first of ${integer(cpu.loaded.deliveries)} enrollments at ${cpu.loaded.offeredPerSecond}/s to the last delivery, divided by deliveries`,
          ],
          [
            "DynamoDB Local, per delivery",
            cpu.loaded.dynamoDbLocalMicrosPerDelivery === undefined
              ? "–"
              : `${integer(cpu.loaded.dynamoDbLocalMicrosPerDelivery)} µs`,
            "the Java process's CPU over the same run, from /proc",
          ],
        ],
        "lrl",
      ),
      "",
      `The deliver handler spends ${decimal(cpu.direct.microsPerDelivery / cpu.bareUndici.microsPerRequest, 1)} times the CPU of a bare POST on each delivery: reading the delivery and its app, taking the lease, signing, recording the attempt, finishing the webhook action, logging and metrics.`,
      "",
    );
  }

  out.push("## 5. AWS requests per delivery", "");
  const requests = results.requests;
  if (!requests) out.push(missing("requests"));
  else out.push(...renderRequests(requests));

  out.push("## 6. Cost per million deliveries", "");
  const cost = results.cost;
  if (!cost) out.push(missing("cost"));
  else {
    const columns = cost.columns;
    out.push(
      stampLine(cost),
      "",
      `From the per-delivery counts of section 5 as measured ${cost.pricedFrom.measuredAt.slice(0, 16).replace("T", " ")} UTC${cost.pricedFrom.quick ? " in the shortened run" : ""} (first-try success; a failing first attempt costs what the one-retry scenario costs), at us-east-1 list prices, free tiers left out. Columns are record size and the share of first attempts that fail. Functions: arm64, ${Object.entries(
        cost.memoryMb,
      )
        .map(([name, mb]) => `${name} ${mb} MB`)
        .join(
          ", ",
        )} (from the synthesized stack). Lambda duration is the billed duration measured here (each invocation rounded up to the millisecond), one enrollment at a time; it holds the receiver's response time, which a loopback receiver makes nearly nothing: on AWS each 100 ms a receiver takes to answer adds ${dollars(cost.per100msReceiverLatency)} per million deliveries.`,
      "",
      table(
        ["$ per million deliveries", ...columns],
        [
          ...cost.lines.map((line) => [
            line.item,
            ...columns.map((column) => dollars(line.dollars[column] ?? 0)),
          ]),
          [
            "**total, HTTP API (as deployed)**",
            ...columns.map((c) => `**${dollars(cost.totalHttpApi[c] ?? 0)}**`),
          ],
          ["total with a REST API instead", ...columns.map((c) => dollars(cost.totalRest[c] ?? 0))],
          [
            "EventBridge API destinations, for comparison",
            ...columns.map((c) => dollars(cost.apiDestinations[c] ?? 0)),
          ],
        ],
      ),
      "",
      "![Cost per million deliveries by item](performance-cost.svg)",
      "",
      "Assumptions:",
      "",
      "- One API request per delivery (the enrollment call); the workflow, app and record exist already.",
      "- SQS: every request the functions make, the pollers' receives that brought messages and their deletes (Lambda's event source mapping makes the same requests, and they are billed), and the scheduler's send of each fired retry; each 64 KiB of payload counts as one request. The pollers' empty receives are left out: on AWS they depend on the event source mapping's long polling, not on traffic (a few hundred thousand a month per queue, about $0.10 to $0.30).",
      `- CloudWatch Logs: the bytes the functions wrote (JSON logs at the deployed level and EMF metric lines) plus ${LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION} bytes an invocation for Lambda's START, END and REPORT lines (assumed), at 2^30 bytes a GB. X-Ray traces are not counted.`,
      "- DynamoDB: the consumed capacity DynamoDB Local reports for each request (`ReturnConsumedCapacity: TOTAL`), with transactional items billed at least 2 units each (DynamoDB Local under-reported one small-item case); a write refused by its condition counts 1 unit.",
      "- EventBridge Scheduler: one scheduled invocation per retry (schedules delete themselves after firing).",
      "- API destinations: one custom event per delivery (each 64 KiB of body one event) plus one API destination invocation per attempt; no state, logs or API of its own, so it is the floor of a managed alternative rather than a like-for-like one: it signs with API keys, basic or OAuth only (no HubSpot v2/v3 signatures) and retries for at most 24 hours.",
      "",
      "Price sources:",
      "",
      ...Object.values(prices).map((price) => `- ${price.source}: ${quote(price)}.`),
      "",
    );
    charts["performance-cost.svg"] = barChart({
      title: "Cost per million deliveries, HTTP API",
      yLabel: "US dollars",
      categories: columns,
      stacked: true,
      series: cost.lines.map((line) => ({
        name: line.item,
        values: columns.map((column) => line.dollars[column]),
      })),
    });
  }

  out.push("## 7. Bundles and init", "");
  const bundles = results.bundles;
  if (!bundles) out.push(missing("bundles"));
  else {
    out.push(
      stampLine(bundles),
      "",
      `Each \`functions/*/handler.ts\` bundled with esbuild ${bundles.esbuild} as infra/constructs/team-function.ts has aws-lambda-nodejs bundle it: \`${bundles.options}\`. Init is a fresh \`node\` process importing the bundle (which builds its SDK clients at import) with the variables the stack gives the function (names and ARNs as placeholders), median of ${bundles.runs}; "as deployed" keeps the stack's \`NODE_OPTIONS=--enable-source-maps\`. Node ${latest?.machine.node} here; Lambda's init adds its own runtime start.`,
      "",
      table(
        [
          "function",
          "minified",
          "source map",
          "import, as deployed",
          "import, no source maps",
          "process start to exit",
        ],
        bundles.functions.map((fn) => [
          fn.name,
          kib(fn.bytes),
          kib(fn.mapBytes),
          ms(fn.importMs),
          ms(fn.importMsWithoutSourceMaps),
          ms(fn.processMs),
        ]),
      ),
      "",
      "Biggest packages in each bundle (bytes of minified output):",
      "",
      table(
        ["function", "packages"],
        bundles.functions.map((fn) => [
          fn.name,
          fn.topPackages.map((item) => `${item.name} ${kib(item.bytes)}`).join(", "),
        ]),
        "ll",
      ),
      "",
      "Biggest single inputs:",
      "",
      table(
        ["function", "inputs"],
        bundles.functions.map((fn) => [
          fn.name,
          fn.topInputs.map((item) => `\`${item.path}\` ${kib(item.bytes)}`).join(", "),
        ]),
        "ll",
      ),
      "",
    );
  }

  out.push("## 8. Scale", "");
  const scale = results.scale;
  if (!scale) out.push(missing("scale"));
  else {
    const share = (largest: number, total: number) =>
      total === 0 ? "–" : `${decimal((largest / total) * 100, 2)}%`;
    out.push(
      stampLine(scale),
      "",
      "The end-to-end runs enroll as fast as 32 callers can and end at the last webhook. The largest run is too slow end to end on this machine, so it drives the lane alone: copies of a delivery the engine really built (new delivery and enrollment ids, stored outside the counters) are put on the webhook lane, and its poller and the deliver function work through them against a receiver that answers at once; the engine then skips the unknown enrollments' ends, which the total includes. Requests are every AWS request of the functions and pollers (idle receives aside).",
      "",
      table(
        [
          "deliveries",
          "mode",
          "wall time",
          "per second",
          "requests",
          "per delivery",
          "deliver and lane per delivery",
          "partition keys written",
          "busiest key's share of writes",
          "busiest key's share of reads",
          "runtime errors",
        ],
        scale.runs.map((run) => [
          integer(run.deliveries),
          run.mode,
          `${decimal(run.wallSeconds)} s`,
          decimal(run.perSecond),
          integer(run.requests),
          decimal(run.requestsPerDelivery, 2),
          decimal(run.deliverRequestsPerDelivery, 2),
          integer(run.writeKeys.distinct),
          `${share(run.writeKeys.largest, run.writeKeys.total)} (${run.writeKeys.largestTable})`,
          `${share(run.readKeys.largest, run.readKeys.total)} (${run.readKeys.largestTable})`,
          integer(run.runtimeErrors),
        ]),
        `rl${"r".repeat(9)}`,
      ),
      "",
      "![Requests per delivery as deliveries grow](performance-scale.svg)",
      "",
      `${RUNTIME_ERRORS_NOTE} Requests grow linearly when the requests per delivery stay flat from run to run. Writes spread over a few partition keys per delivery (delivery, enrollment, its lock), none busier than a handful of writes. The last columns name the table of the busiest key; when reads name the apps table, the key is the one signing app every delivery here uses, read once per attempt.`,
      "",
    );
    charts["performance-scale.svg"] = barChart({
      title: "AWS requests per delivery as deliveries grow",
      yLabel: "requests per delivery",
      categories: scale.runs.map(
        (run) =>
          `${integer(run.deliveries)} (${run.mode === "end to end" ? "end to end" : "lane only"})`,
      ),
      series: [
        { name: "all", values: scale.runs.map((run) => run.requestsPerDelivery) },
        {
          name: "deliver and lane",
          values: scale.runs.map((run) => run.deliverRequestsPerDelivery),
        },
      ],
    });
  }

  return { markdown: `${out.join("\n")}\n`, charts };
}

/** Which requests take the capacity units, for one scenario, biggest first. */
function capacityByOperation(scenario: ScenarioCounts | undefined): string[] {
  if (!scenario) return [];
  const rows = Object.entries(scenario.operations)
    .filter(([, count]) => count.readUnits + count.writeUnits > 0)
    .sort(([, a], [, b]) => b.writeUnits + b.readUnits - (a.writeUnits + a.readUnits));
  return [
    `Where the capacity units go, ${scenario.recordKiB} KiB record, first-try success, per delivery (a write is billed by the size of the whole item it changes, and each index entry it adds, moves or removes is one more write; the body is an item of its own, written once, so the updates that move a delivery stay at one unit):`,
    "",
    table(
      ["requester, service, operation", "requests", "read units", "write units"],
      rows.map(([key, count]) => [
        `\`${key}\``,
        perDelivery(count.count),
        perDelivery(count.readUnits),
        perDelivery(count.writeUnits),
      ]),
    ),
    "",
  ];
}

function renderRequests(requests: NonNullable<SectionResults["requests"]>): string[] {
  const scenarios = requests.scenarios;
  const sizes = [...new Set(scenarios.map((s) => s.recordKiB))];
  const names = ["success", "retry", "permanent"] as const;
  const smallest = sizes[0] ?? 1;
  const at = (kibSize: number, name: ScenarioCounts["scenario"]) =>
    scenarios.find((s) => s.recordKiB === kibSize && s.scenario === name);
  const operationKeys = [
    ...new Set(
      scenarios
        .filter((s) => s.recordKiB === smallest)
        .flatMap((s) => Object.keys(s.operations))
        .filter((key) => !key.endsWith(EMPTY_RECEIVE) && !key.startsWith("runtime")),
    ),
  ].sort();
  const out = [
    stampLine(requests),
    "",
    `Every request the handlers make through their SDK clients (an SDK middleware on the clients of \`functions/shared/adapters/\`), and the lanes' pollers' receives and deletes (Lambda's event source mapping makes and bills the same), from the enrollment call to the enrollment ending, one enrollment at a time, averaged over ${requests.deliveriesPerScenario} deliveries after a warm-up. Three receivers: one that answers 200 (success), one that answers 503 to the first attempt and 200 to the retry (retry), one that answers 410 (permanent failure, no retry). Requester \`lanePoller\` and \`stepsPoller\` are the event source mappings.`,
    "",
    `Requests per delivery, ${smallest} KiB record:`,
    "",
    table(
      ["requester, service, operation", ...names],
      operationKeys.map((key) => [
        `\`${key}\``,
        ...names.map((name) => perDelivery(at(smallest, name)?.operations[key]?.count ?? 0)),
      ]),
    ),
    "",
    "Per delivery, by record size and receiver:",
    "",
    table(
      [
        "record",
        "receiver",
        "webhook body",
        "DynamoDB requests",
        "read units",
        "write units",
        "SQS requests",
        "Scheduler requests",
        "Lambda invocations (api, engine, deliver)",
        "log bytes",
      ],
      sizes.flatMap((size) =>
        names.flatMap((name) => {
          const s = at(size, name);
          if (!s) return [];
          let dynamo = 0;
          let reads = 0;
          let writes = 0;
          let sqs = 0;
          let scheduler = 0;
          for (const [key, count] of Object.entries(s.operations)) {
            if (key.endsWith(EMPTY_RECEIVE) || key.startsWith("runtime")) continue;
            const service = key.split(" ")[1];
            if (service === "DynamoDB") dynamo += count.count;
            if (service === "SQS") sqs += count.count;
            if (service === "Scheduler") scheduler += count.count;
            reads += count.readUnits;
            writes += count.writeUnits;
          }
          const invocation = (fn: string) => perDelivery(s.invocations[fn]?.count ?? 0);
          const invocations = ["api", "engine", "deliver"].reduce(
            (total, fn) => total + (s.invocations[fn]?.count ?? 0),
            0,
          );
          const logBytes = Object.values(s.logBytes).reduce((total, bytes) => total + bytes, 0);
          return [
            [
              `${size} KiB`,
              name,
              `${integer(s.bodyBytes)} B`,
              perDelivery(dynamo),
              perDelivery(reads),
              perDelivery(writes),
              `${perDelivery(sqs + s.retriesFired)}${s.retriesFired > 0 ? ` (${perDelivery(s.retriesFired)} by the scheduler)` : ""}`,
              perDelivery(scheduler),
              `${perDelivery(invocations)} (${invocation("api")}, ${invocation("engine")}, ${invocation("deliver")})`,
              integer(logBytes),
            ],
          ];
        }),
      ),
      `ll${"r".repeat(8)}`,
    ),
    "",
    ...capacityByOperation(at(sizes[sizes.length - 1] ?? smallest, "success")),
    "An SQS batch is one Lambda invocation; one enrollment at a time, every batch holds one message, so these are the most invocations a delivery can take. Under load batches fill up (up to 10 messages) and invocations per delivery fall.",
    "",
  ];
  return out;
}
