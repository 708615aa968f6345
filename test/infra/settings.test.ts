import { readFileSync } from "node:fs";
import { App } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, InvalidContextError, settingsFromContext } from "#infra/stack";

const cdkJson = JSON.parse(readFileSync(new URL("../../cdk.json", import.meta.url), "utf8"));

function settingsWith(context: Record<string, unknown>) {
  return settingsFromContext(new App({ context }).node);
}

describe("the stack's context options", () => {
  it("default to the values cdk.json writes out", () => {
    // Act
    const fromCdkJson = settingsWith(cdkJson.context);
    const fromNothing = settingsWith({});

    // Assess
    expect(fromCdkJson).toEqual(DEFAULT_SETTINGS);
    expect(fromNothing).toEqual(DEFAULT_SETTINGS);
  });

  it("accept the strings `cdk -c key=value` passes", () => {
    // Act
    const settings = settingsWith({
      tableDeletionProtection: "false",
      webhookLaneMaxConcurrency: "40",
      logRetentionDays: "7",
      logLevel: "DEBUG",
      alarmEmail: "oncall@example.com",
    });

    // Assess
    expect(settings).toMatchObject({
      tableDeletionProtection: false,
      webhookLaneMaxConcurrency: 40,
      logRetentionDays: 7,
      logLevel: "DEBUG",
      alarmEmail: "oncall@example.com",
    });
  });

  it("choose a token authorizer or a Cognito user pool, each with its ARN, the pool with its clients", () => {
    // Act
    const token = settingsWith({
      apiAuthorization: "token",
      apiTokenAuthorizerArn: "arn:aws:lambda:eu-west-1:123456789012:function:tokens",
    });
    const cognito = settingsWith({
      apiAuthorization: "cognito",
      apiUserPoolArn: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
      apiUserPoolClientIds: "client1, client2",
    });
    const cognitoFromCdkJson = settingsWith({
      apiAuthorization: "cognito",
      apiUserPoolArn: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
      apiUserPoolClientIds: ["client3"],
    });

    // Assess
    expect(token.apiAuthorization).toEqual({
      type: "token",
      authorizerFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:tokens",
    });
    expect(cognito.apiAuthorization).toEqual({
      type: "cognito",
      userPoolArn: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
      userPoolClientIds: ["client1", "client2"],
    });
    expect(cognitoFromCdkJson.apiAuthorization).toMatchObject({ userPoolClientIds: ["client3"] });
  });

  it.each([
    [{ apiAuthorization: "basic" }, /apiAuthorization must be one of iam, token, cognito/],
    [{ apiAuthorization: "token" }, /apiAuthorization=token needs apiTokenAuthorizerArn/],
    [
      { apiAuthorization: "cognito", apiUserPoolArn: "" },
      /apiAuthorization=cognito needs apiUserPoolArn/,
    ],
    [
      {
        apiAuthorization: "cognito",
        apiUserPoolArn: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
        apiUserPoolClientIds: " , ",
      },
      /apiAuthorization=cognito needs apiUserPoolClientIds/,
    ],
    [
      {
        apiAuthorization: "cognito",
        apiUserPoolArn: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123",
        apiUserPoolClientIds: ["client1", 2],
      },
      /apiUserPoolClientIds must be a list of strings/,
    ],
    [
      { webhookLaneMaxConcurrency: "1" },
      /webhookLaneMaxConcurrency must be a whole number from 2 to 1000/,
    ],
    [
      { workflowStepsMaxConcurrency: 1001 },
      /workflowStepsMaxConcurrency must be a whole number from 2 to 1000/,
    ],
    [{ webhookLaneMaxConcurrency: "ten" }, /webhookLaneMaxConcurrency must be a whole number/],
    [{ logRetentionDays: 31 }, /logRetentionDays must be one of CloudWatch's retention periods/],
    [{ logLevel: "TRACE" }, /logLevel must be one of DEBUG, INFO, WARN, ERROR/],
    [{ tableDeletionProtection: "maybe" }, /tableDeletionProtection must be true or false/],
    [{ alarmEmail: "oncall" }, /alarmEmail must be an email address/],
    [
      { failedDeliveriesAlarmThreshold: -1 },
      /failedDeliveriesAlarmThreshold must be a whole number 0 or more/,
    ],
    [{ laneAgeAlarmSeconds: 30 }, /laneAgeAlarmSeconds must be a whole number 60 or more/],
    [{ apiThrottlingRateLimit: 2.5 }, /apiThrottlingRateLimit must be a whole number 1 or more/],
  ])("refuse %o, naming the option", (context, message) => {
    // Act
    const read = () => settingsWith(context);

    // Assess
    expect(read).toThrow(InvalidContextError);
    expect(read).toThrow(message);
  });
});
