import { randomUUID } from "node:crypto";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Context, DynamoDBStreamEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { EnrollmentsTable } from "#adapters/enrollments-table";
import { ListsTable } from "#adapters/lists-table";
import { RecordsTable } from "#adapters/records-table";
import { WorkflowEnrollments } from "#adapters/workflow-enrollments";
import { WorkflowsTable } from "#adapters/workflows-table";
import { addListMember, createList } from "#app/forms-and-lists";
import type { Enrollment } from "#domain/enrollment";
import type { EnrollmentTriggers } from "#domain/enrollment-triggers";
import { applyPropertyChanges } from "#domain/record";
import type { Workflow } from "#domain/workflow";
import { localCredentials, localRegion } from "#infra/local/net";
import {
  type StreamHandler,
  type StreamPoller,
  startStreamPoller,
} from "#infra/local/stream-poller";
import { enrollmentStream, RECORD_SORT_KEY } from "#shared/contract";
import { eventually } from "#test/eventually";
import { type LocalAws, startLocalAws } from "#test/local-aws";

let aws: LocalAws;
let streams: DynamoDBStreamsClient;
let poller: StreamPoller;
let workflows: WorkflowsTable;
let records: RecordsTable;
let lists: ListsTable;
let listing: WorkflowEnrollments;
let enrollments: EnrollmentsTable;
/** The real enroll handler, imported once its environment is set. */
let enrollHandler: StreamHandler;
/** What the poller hands over; each test may wrap the real handler. */
let handle: StreamHandler;
/** AWS requests the enroll handler's clients made, by command, since the last reset. */
const requests = new Map<string, number>();

beforeAll(async () => {
  aws = await startLocalAws();
  Object.assign(process.env, aws.env, {
    POWERTOOLS_LOG_LEVEL: "SILENT",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_TRACE_ENABLED: "false",
  });
  enrollHandler = (await import("../../functions/enroll/handler.ts")).handler;
  // Count every request the function's own clients send, as they leave the SDK.
  const { dynamoDocuments } = await import("#adapters/dynamodb-client");
  const { sqs } = await import("#adapters/sqs-client");
  type Next = (args: unknown) => Promise<unknown>;
  const countRequests =
    (next: Next, context: { commandName?: string }): Next =>
    async (args) => {
      const name = String(context.commandName).replace(/Command$/, "");
      requests.set(name, (requests.get(name) ?? 0) + 1);
      return next(args);
    };
  for (const client of [dynamoDocuments, sqs]) {
    (client.middlewareStack as unknown as { add(m: unknown, o: object): void }).add(countRequests, {
      step: "initialize",
      name: "countRequests",
    });
  }
  const names = aws.resources.tables;
  workflows = new WorkflowsTable(aws.documents, names.workflows);
  records = new RecordsTable(aws.documents, names.records);
  lists = new ListsTable(aws.documents, names.records);
  listing = new WorkflowEnrollments(aws.documents, names.enrollments);
  enrollments = new EnrollmentsTable(aws.documents, names.enrollments);
  streams = new DynamoDBStreamsClient({
    endpoint: inject("dynamoEndpoint"),
    region: localRegion,
    credentials: localCredentials,
  });
  poller = startStreamPoller({
    streams,
    sqs: aws.sqs,
    streamArn: aws.resources.enrollmentStream.streamArn,
    handler: (event, context) => handle(event, context),
    functionName: "enroll",
    batchSize: enrollmentStream.batchSize,
    retryAttempts: enrollmentStream.retryAttempts,
    maxRecordAgeSeconds: enrollmentStream.maxRecordAgeSeconds,
    sortKeys: enrollmentStream.sortKeys,
    onFailureQueueUrl: aws.resources.enrollmentStream.onFailureQueueUrl,
    timeoutSeconds: 30,
    retryDelayMs: 1,
  });
});

afterAll(async () => {
  await poller?.stop();
  streams?.destroy();
  await aws?.stop();
});

beforeEach(async () => {
  handle = enrollHandler;
  await aws.drain("workflowSteps");
});

async function workflowWith(enrollmentTriggers: EnrollmentTriggers): Promise<Workflow> {
  const now = new Date(Date.now() - 1_000).toISOString();
  const workflow: Workflow = {
    id: randomUUID(),
    name: "triggered",
    objectType: "contacts",
    actions: [{ id: randomUUID(), type: "delay", seconds: 3_600 }],
    enrollmentTriggers,
    createdAt: now,
    updatedAt: now,
  };
  await workflows.create(workflow);
  return workflow;
}

const stageIs = (value: string, reenroll = false): EnrollmentTriggers => ({
  filterGroups: [{ filters: [{ type: "property", property: "stage", operator: "EQ", value }] }],
  reenroll,
});

async function setProperties(objectId: string, properties: Record<string, string>) {
  const key = { objectType: "contacts" as const, objectId };
  await records.update(
    key,
    (current) =>
      applyPropertyChanges(current, key, properties, {
        sourceType: "API",
        sourceId: null,
        sourceLabel: null,
        timestamp: Date.now(),
      }).record,
  );
}

async function enrollmentsOf(workflowId: string) {
  return (await listing.page({ workflowId, limit: 100 })).enrollments;
}

async function onFailureDescriptions(): Promise<any[]> {
  const { Messages } = await aws.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: aws.resources.enrollmentStream.onFailureQueueUrl,
      MaxNumberOfMessages: 10,
    }),
  );
  return (Messages ?? []).map((message) => JSON.parse(message.Body ?? "null"));
}

describe("the enroll function on DynamoDB Local's stream", () => {
  it("starts one enrollment for a change delivered twice", async () => {
    // Prepare
    const workflow = await workflowWith(stageIs("hot", true));
    const delivered: DynamoDBStreamEvent[] = [];
    handle = async (event, context) => {
      delivered.push(event);
      // The same records again, as a retried batch or a second delivery would bring them.
      await enrollHandler(event, context);
      return enrollHandler(event, context);
    };
    const contactId = randomUUID();

    // Act
    await setProperties(contactId, { stage: "hot" });
    const enrollments = await eventually("an enrollment", async () => {
      const found = await enrollmentsOf(workflow.id);
      expect(found).not.toEqual([]);
      return found;
    });
    await setProperties(contactId, { note: "a later change, to know the first was handled" });
    await eventually("the later change", () =>
      expect(
        delivered.some((event) =>
          event.Records.some((record) => record.dynamodb?.NewImage?.properties?.M?.note),
        ),
      ).toBe(true),
    );

    // Assess
    expect(enrollments).toHaveLength(1);
    expect(await enrollmentsOf(workflow.id)).toHaveLength(1);
    const advances = (await aws.drain("workflowSteps")).filter(
      (message: any) => message.enrollmentId === enrollments[0]?.enrollmentId,
    );
    expect(advances).toHaveLength(1);
  });

  it("starts nothing for a change delivered again after the enrollment it started completed", async () => {
    // Prepare
    const stage = `done-${randomUUID()}`;
    const workflow = await workflowWith(stageIs(stage));
    const contactId = randomUUID();
    let first: DynamoDBStreamEvent | undefined;
    handle = async (event, context) => {
      first ??= event.Records.some(
        (record) => record.dynamodb?.Keys?.pk?.S === `contacts#${contactId}`,
      )
        ? event
        : undefined;
      return enrollHandler(event, context);
    };
    await setProperties(contactId, { stage });
    const [started] = await eventually("an enrollment", async () => {
      const found = await enrollmentsOf(workflow.id);
      expect(found).toHaveLength(1);
      return found;
    });
    const enrollment = started as Enrollment;
    // Its one action ends: the enrollment completes and gives up the record's place.
    await enrollments.finishAction(enrollment, 0, { now: Date.now(), status: "succeeded" });
    await aws.drain("workflowSteps");

    // Act
    const response = await enrollHandler(
      first as DynamoDBStreamEvent,
      {
        functionName: "enroll",
        awsRequestId: randomUUID(),
        getRemainingTimeInMillis: () => 30_000,
      } as Context,
    );

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(await enrollmentsOf(workflow.id)).toEqual([
      expect.objectContaining({ enrollmentId: enrollment.enrollmentId, status: "completed" }),
    ]);
    expect(await aws.drain("workflowSteps")).toEqual([]);
    // The record is free for an enrollment of another kind, such as one through the API.
    await expect(
      enrollments.create({ ...enrollment, enrollmentId: randomUUID(), status: "active" }),
    ).resolves.toBeUndefined();
  });

  it("gives up on a poison record alone, reports it, and goes on with the records after it", async () => {
    // Prepare
    const workflow = await workflowWith(stageIs("warm"));
    const poisonId = `poison-${randomUUID()}`;
    const healthyId = randomUUID();
    const seen: string[] = [];
    handle = async (event, context) => {
      for (const record of event.Records) seen.push(String(record.dynamodb?.SequenceNumber));
      return enrollHandler(event, context);
    };

    // Act
    await setProperties(randomUUID(), { stage: "warm" });
    // A record item without the revision every write of the records table gives it.
    await aws.documents.send(
      new PutCommand({
        TableName: aws.resources.tables.records,
        Item: {
          pk: `contacts#${poisonId}`,
          sk: RECORD_SORT_KEY,
          objectType: "contacts",
          objectId: poisonId,
          properties: {},
          createdAt: Date.now(),
          updatedAt: Date.now(),
        },
      }),
    );
    await setProperties(healthyId, { stage: "warm" });
    const described = await eventually("the on-failure description", async () => {
      const found = await onFailureDescriptions();
      expect(found).not.toEqual([]);
      return found;
    });
    const enrolled = await eventually("the record after the poison enrolled", async () => {
      const found = await enrollmentsOf(workflow.id);
      expect(found.map((enrollment) => enrollment.objectId)).toContain(healthyId);
      return found;
    });

    // Assess
    expect(described).toHaveLength(1);
    const info = described[0].DDBStreamBatchInfo;
    expect(described[0].requestContext.condition).toBe("RetryAttemptsExhausted");
    expect(info.batchSize).toBe(1);
    expect(info.startSequenceNumber).toBe(info.endSequenceNumber);
    expect(info.streamArn).toBe(aws.resources.enrollmentStream.streamArn);
    const poisonAttempts = seen.filter((sequence) => sequence === info.startSequenceNumber);
    expect(poisonAttempts).toHaveLength(enrollmentStream.retryAttempts + 1);
    expect(enrolled.map((enrollment) => enrollment.objectId)).toContain(healthyId);
    expect(enrolled).toHaveLength(2);
  });

  it("enrolls a contact that joins a list, and ignores the list's own items", async () => {
    // Prepare
    const deps = { records, lists, now: Date.now, newId: randomUUID };
    const { listId } = await createList(deps, { name: "VIP" });
    const workflow = await workflowWith({
      filterGroups: [{ filters: [{ type: "listMembership", listId }] }],
      reenroll: false,
    });
    const contactId = randomUUID();
    await setProperties(contactId, { email: "vip@example.com" });
    const handed: string[] = [];
    handle = async (event, context) => {
      for (const record of event.Records) handed.push(String(record.dynamodb?.Keys?.sk?.S));
      return enrollHandler(event, context);
    };

    // Act
    await addListMember(deps, listId, contactId);
    const enrollments = await eventually("the member enrolled", async () => {
      const found = await enrollmentsOf(workflow.id);
      expect(found).not.toEqual([]);
      return found;
    });

    // Assess
    expect(enrollments.map((enrollment) => enrollment.objectId)).toEqual([contactId]);
    expect(new Set(handed)).toEqual(new Set([RECORD_SORT_KEY]));
  });

  it.each([
    [
      "a delay",
      [{ id: randomUUID(), type: "delay", seconds: 3_600 }],
      // The trigger index; the workflow and the record; the lock and the enrollment; the first
      // step on the workflow-steps lane.
      { Query: 1, GetItem: 2, PutItem: 2, SendMessage: 1 },
    ],
    [
      "a webhook",
      [
        {
          id: randomUUID(),
          type: "webhook",
          url: "https://crm.example.com/hooks/lead",
          method: "POST",
          body: { type: "all" },
        },
      ],
      // As above, the enrollment stored with its webhook running, then the delivery started at
      // once, as the API starts it: its body and its state, and the attempt on the webhook lane.
      { Query: 1, GetItem: 2, PutItem: 4, SendMessage: 1 },
    ],
  ] as const)(
    "adds, for a triggered enrollment whose first action is %s, the requests of the API's enroll and one index query per batch",
    async (_, actions, expected) => {
      // Prepare
      // Another workflow over contacts, which the change does not concern: still one query.
      await workflowWith(stageIs("never"));
      const stage = `ready-${randomUUID()}`;
      const workflow = await workflowWith(stageIs(stage));
      await workflows.replace({ ...workflow, actions: [...actions] as Workflow["actions"] });
      const contactId = randomUUID();
      await setProperties(contactId, { stage: "draft" });
      const contactsTriggered = (await workflows.withTriggers("contacts")).length;
      let counted: Record<string, number> | undefined;
      handle = async (event, context) => {
        requests.clear();
        const response = await enrollHandler(event, context);
        const counts = event.Records.some(
          (record) =>
            record.dynamodb?.Keys?.pk?.S === `contacts#${contactId}` &&
            record.dynamodb?.NewImage?.properties?.M?.stage?.L?.[0]?.M?.value?.S === stage,
        );
        if (counts) counted = Object.fromEntries(requests);
        return response;
      };

      // Act
      await setProperties(contactId, { stage });
      const made = await eventually("the change handled", () => {
        expect(counted).toBeDefined();
        return counted;
      });

      // Assess
      expect(contactsTriggered).toBeGreaterThan(1);
      expect(await enrollmentsOf(workflow.id)).toHaveLength(1);
      expect(made).toEqual(expected);
    },
  );
});
