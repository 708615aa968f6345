import { App, type CfnElement, Stack } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { requestBodies } from "#domain/request-schemas";
import { requestBodySchema, WorkflowApi, type WorkflowApiProps } from "#infra/constructs/api";
import { type ApiRoute, apiRoutes } from "#shared/contract";
import { synthesize } from "#test/synth";

const AUTHORIZER_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:bearer-tokens";
const USER_POOL_ARN = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123";

const { stack, template } = synthesize();

type Resource = { Properties: Record<string, unknown> };

function methods(of: Template = template): Resource[] {
  return Object.values(of.findResources("AWS::ApiGateway::Method")) as Resource[];
}

/** The template's method for `apiRoutes[index]`. */
function methodOfRoute(index: number): Resource | undefined {
  const method = stack.api.methods[index];
  if (method === undefined) return undefined;
  const id = stack.getLogicalId(method.node.defaultChild as CfnElement);
  return template.findResources("AWS::ApiGateway::Method")[id] as Resource | undefined;
}

/** A gateway response or log format with its variables replaced by values API Gateway could give. */
function rendered(templateText: string): unknown {
  return JSON.parse(
    templateText
      .replaceAll("$context.error.messageString", '"Missing Authentication Token"')
      .replaceAll(
        "$context.error.validationErrorString",
        '[object has missing required properties ([\\"name\\"])]',
      )
      .replaceAll("$context.error.responseType", "MISSING_AUTHENTICATION_TOKEN"),
  );
}

describe("authorization", () => {
  it("has one method per route, each requiring IAM (SigV4) by default", () => {
    // Act
    const found = methods();
    const routes = stack.api.methods.map(
      (method) => `${method.httpMethod} ${method.resource.path}`,
    );

    // Assess
    expect(routes).toEqual(apiRoutes.map((route) => `${route.method} ${route.path}`));
    expect(found).toHaveLength(apiRoutes.length);
    expect(found.map((method) => method.Properties.AuthorizationType)).toEqual(
      apiRoutes.map(() => "AWS_IAM"),
    );
  });

  it("switches every method to a Lambda token authorizer with apiAuthorization=token", () => {
    // Act
    const token = synthesize({ apiAuthorization: "token", apiTokenAuthorizerArn: AUTHORIZER_ARN });
    const authorizers = Object.entries(token.template.findResources("AWS::ApiGateway::Authorizer"));

    // Assess
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] as [string, Resource];
    expect(authorizer.Properties.Type).toBe("TOKEN");
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(AUTHORIZER_ARN);
    token.template.hasResourceProperties("AWS::Lambda::Permission", {
      FunctionName: AUTHORIZER_ARN,
      Principal: "apigateway.amazonaws.com",
    });
    for (const method of methods(token.template)) {
      expect(method.Properties).toMatchObject({
        AuthorizationType: "CUSTOM",
        AuthorizerId: { Ref: authorizerId },
      });
    }
  });

  it("switches every method to a Cognito user pool with apiAuthorization=cognito", () => {
    // Act
    const cognito = synthesize({ apiAuthorization: "cognito", apiUserPoolArn: USER_POOL_ARN });
    const authorizers = Object.entries(
      cognito.template.findResources("AWS::ApiGateway::Authorizer"),
    );

    // Assess
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] as [string, Resource];
    expect(authorizer.Properties).toMatchObject({
      Type: "COGNITO_USER_POOLS",
      ProviderARNs: [USER_POOL_ARN],
    });
    for (const method of methods(cognito.template)) {
      expect(method.Properties).toMatchObject({
        AuthorizationType: "COGNITO_USER_POOLS",
        AuthorizerId: { Ref: authorizerId },
      });
    }
  });
});

describe("request validation", () => {
  it("validates bodies and parameters on every method", () => {
    // Act
    const validators = Object.entries(template.findResources("AWS::ApiGateway::RequestValidator"));

    // Assess
    expect(validators).toHaveLength(1);
    const [validatorId, validator] = validators[0] as [string, Resource];
    expect(validator.Properties).toMatchObject({
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    for (const method of methods()) {
      expect(method.Properties.RequestValidatorId).toEqual({ Ref: validatorId });
    }
  });

  it("declares every path parameter of a route as required", () => {
    for (const [index, route] of apiRoutes.entries()) {
      // Prepare
      const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);

      // Act
      const method = methodOfRoute(index);

      // Assess
      expect(method?.Properties.RequestParameters, `${route.method} ${route.path}`).toEqual(
        Object.fromEntries(names.map((name) => [`method.request.path.${name}`, true])),
      );
    }
  });

  it("checks each body against a model generated from the handler's own zod schema", () => {
    // Prepare
    const models = template.findResources("AWS::ApiGateway::Model");
    const routes: readonly ApiRoute[] = apiRoutes;

    for (const [index, route] of routes.entries()) {
      // Act
      const method = methodOfRoute(index);
      const modelRef = (
        method?.Properties.RequestModels as Record<string, { Ref: string }> | undefined
      )?.["application/json"];

      // Assess
      if (route.body === undefined) {
        expect(modelRef, `${route.method} ${route.path}`).toBeUndefined();
        continue;
      }
      const model = models[modelRef?.Ref ?? ""];
      const generated = z.toJSONSchema(requestBodies[route.body], {
        target: "draft-04",
        io: "input",
      });
      expect(model?.Properties.ContentType).toBe("application/json");
      expect(model?.Properties.Schema).toEqual({
        ...generated,
        title: `${route.body} request body`,
      });
    }
  });

  it("writes draft-4 JSON Schema in CDK's spelling, keeping property names that look like keywords", () => {
    // Prepare
    const schema = z.strictObject({ $ref: z.string(), nested: z.object({ $schema: z.number() }) });

    // Act
    const converted = requestBodySchema(schema, "odd names") as Record<string, unknown>;

    // Assess
    expect(converted.schema).toBe("http://json-schema.org/draft-04/schema#");
    expect(converted).not.toHaveProperty("$schema");
    expect(converted.properties).toEqual({
      $ref: { type: "string" },
      nested: {
        type: "object",
        properties: { $schema: { type: "number" } },
        required: ["$schema"],
      },
    });
  });
});

describe("API Gateway's own errors", () => {
  it("answer in the project's error shape, with the validator's message for a bad body", () => {
    // Act
    const responses = Object.values(
      template.findResources("AWS::ApiGateway::GatewayResponse"),
    ) as Resource[];
    const byType = Object.fromEntries(
      responses.map((response) => [
        response.Properties.ResponseType,
        rendered(
          (response.Properties.ResponseTemplates as Record<string, string>)["application/json"] ??
            "",
        ),
      ]),
    );

    // Assess
    expect(byType.BAD_REQUEST_BODY).toEqual({
      error: {
        code: "invalid_request",
        message: '[object has missing required properties (["name"])]',
      },
    });
    expect(byType.MISSING_AUTHENTICATION_TOKEN).toEqual({
      error: { code: "unauthorized", message: "Missing Authentication Token" },
    });
    for (const type of [
      "DEFAULT_4XX",
      "DEFAULT_5XX",
      "ACCESS_DENIED",
      "THROTTLED",
      "REQUEST_TOO_LARGE",
    ]) {
      expect(byType[type], type).toEqual({
        error: {
          code: expect.stringMatching(/^[a-z_]+$/),
          message: "Missing Authentication Token",
        },
      });
    }
  });
});

describe("the stage", () => {
  it("logs every request as JSON with its request ids", () => {
    // Act
    const stage = Object.values(template.findResources("AWS::ApiGateway::Stage"))[0] as Resource;
    const setting = stage.Properties.AccessLogSetting as {
      Format: string;
      DestinationArn: unknown;
    };

    // Assess
    expect(rendered(setting.Format)).toMatchObject({
      requestId: "$context.requestId",
      extendedRequestId: "$context.extendedRequestId",
      lambdaRequestId: "$context.awsEndpointRequestId",
      status: "$context.status",
    });
    expect(JSON.stringify(setting.DestinationArn)).toContain(
      stack.getLogicalId(stack.api.accessLogs.node.defaultChild as CfnElement),
    );
  });

  it("logs execution at INFO without request or response bodies, traces, and throttles", () => {
    // Act
    const stage = Object.values(template.findResources("AWS::ApiGateway::Stage"))[0] as Resource;

    // Assess
    expect(stage.Properties).toMatchObject({
      StageName: "v1",
      TracingEnabled: true,
      MethodSettings: [
        {
          HttpMethod: "*",
          ResourcePath: "/*",
          LoggingLevel: "INFO",
          DataTraceEnabled: false,
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
        },
      ],
    });
  });

  it("keeps execution logs for the configured retention", () => {
    // Act
    const group =
      template.findResources("AWS::Logs::LogGroup")[
        stack.getLogicalId(stack.api.executionLogs.node.defaultChild as CfnElement)
      ];

    // Assess
    expect(JSON.stringify(group?.Properties.LogGroupName)).toContain("API-Gateway-Execution-Logs_");
    expect(group?.Properties.RetentionInDays).toBe(30);
  });

  it("takes its throttling from the context options", () => {
    // Act
    const throttled = synthesize({ apiThrottlingRateLimit: 5, apiThrottlingBurstLimit: "7" });

    // Assess
    throttled.template.hasResourceProperties("AWS::ApiGateway::Stage", {
      MethodSettings: [{ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 7 }],
    });
  });
});

describe("the API's constructor", () => {
  function props(overrides: Partial<WorkflowApiProps> = {}): {
    scope: Stack;
    props: WorkflowApiProps;
  } {
    const scope = new Stack(new App(), "Scratch");
    const handler = LambdaFunction.fromFunctionArn(
      scope,
      "Handler",
      "arn:aws:lambda:eu-west-1:123456789012:function:api",
    );
    return {
      scope,
      props: {
        handler,
        routes: apiRoutes,
        requestBodies,
        authorization: { type: "iam" },
        throttling: { rateLimit: 10, burstLimit: 20 },
        logRetention: RetentionDays.ONE_WEEK,
        ...overrides,
      },
    };
  }

  it("refuses a route declared twice", () => {
    // Prepare
    const route: ApiRoute = { method: "GET", path: "/health" };
    const { scope, props: duplicated } = props({ routes: [route, route] });

    // Act
    const create = () => new WorkflowApi(scope, "Api", duplicated);

    // Assess
    expect(create).toThrow(/route GET \/health is declared twice/);
  });

  it("refuses a route whose body has no schema", () => {
    // Prepare
    const { workflow: _omitted, ...fewer } = requestBodies;
    const { scope, props: missing } = props({
      requestBodies: fewer as unknown as WorkflowApiProps["requestBodies"],
    });

    // Act
    const create = () => new WorkflowApi(scope, "Api", missing);

    // Assess
    expect(create).toThrow(/names request body "workflow", which has no schema/);
  });

  it("refuses a token authorizer that is not a Lambda function ARN", () => {
    // Prepare
    const { scope, props: token } = props({
      authorization: { type: "token", authorizerFunctionArn: USER_POOL_ARN },
    });

    // Act
    const create = () => new WorkflowApi(scope, "Api", token);

    // Assess
    expect(create).toThrow(/token authorization needs the ARN of a Lambda function/);
  });

  it("refuses throttling without a positive rate", () => {
    // Prepare
    const { scope, props: unthrottled } = props({ throttling: { rateLimit: 0, burstLimit: 10 } });

    // Act
    const create = () => new WorkflowApi(scope, "Api", unthrottled);

    // Assess
    expect(create).toThrow(/throttling needs a positive rateLimit/);
  });
});
