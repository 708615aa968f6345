import { App, type CfnElement, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { HttpMethod } from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import { Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { WorkflowApi, type WorkflowApiProps } from "#infra/constructs/api";
import { type ApiRoute, apiRoutes } from "#shared/contract";
import { synthesize, synthesizeDefault } from "#test/synth";

const AUTHORIZER_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:bearer-tokens";
const USER_POOL_ARN = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123";
const USER_POOL_CLIENT_IDS = ["4tq8r1ambh3n0s8lpv1h2v3m4n", "7f0a9dd1c2b3e4f5a6b7c8d9e0"];

const { stack, template } = synthesizeDefault();

type Resource = { Properties: Record<string, unknown> };

function logicalId(construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

function routes(of: Template = template): Resource[] {
  return Object.values(of.findResources("AWS::ApiGatewayV2::Route")) as Resource[];
}

/** `RouteKey` of every route whose authorization is not `type`, or is missing its authorizer. */
function routesNotAuthorizedBy(of: Template, type: string, authorizerId?: string): string[] {
  return routes(of)
    .filter(
      (route) =>
        route.Properties.AuthorizationType !== type ||
        (authorizerId !== undefined &&
          JSON.stringify(route.Properties.AuthorizerId) !== JSON.stringify({ Ref: authorizerId })),
    )
    .map((route) => String(route.Properties.RouteKey));
}

/** The access log format with its one unquoted variable replaced by a value API Gateway could give. */
function rendered(format: string): Record<string, unknown> {
  return JSON.parse(format.replaceAll("$context.error.messageString", '"Forbidden"'));
}

function onlyStage(of: Template = template): Resource {
  const stages = Object.values(of.findResources("AWS::ApiGatewayV2::Stage")) as Resource[];
  expect(stages).toHaveLength(1);
  return stages[0] as Resource;
}

/** The API's props in a scratch stack of its own, with `overrides` on top. */
function apiProps(overrides: Partial<WorkflowApiProps> = {}): {
  scope: Stack;
  props: WorkflowApiProps;
} {
  // CloudFormation's own template checks are slow and are the business of the nag tests.
  const scope = new Stack(new App({ builtinCloudFormationValidation: false }), "Scratch");
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
      authorization: { type: "iam" },
      throttling: { rateLimit: 10, burstLimit: 20 },
      logRetention: RetentionDays.ONE_WEEK,
      ...overrides,
    },
  };
}

describe("the routes", () => {
  it("are the contract's routes, plus a catch-all that lets the handler answer unknown paths", () => {
    // Act
    const keys = routes().map((route) => route.Properties.RouteKey);

    // Assess
    expect(keys).toHaveLength(apiRoutes.length + 1);
    expect(keys).toEqual(
      expect.arrayContaining([
        ...apiRoutes.map((route) => `${route.method} ${route.path}`),
        "$default",
      ]),
    );
  });

  it("all require IAM (SigV4) by default", () => {
    // Act
    const unsigned = routesNotAuthorizedBy(template, "AWS_IAM");

    // Assess
    expect(routes().length).toBeGreaterThan(apiRoutes.length);
    expect(unsigned).toEqual([]);
  });

  it("are all found out when one of them loses its authorization", () => {
    // Prepare
    const { scope, props: iam } = apiProps();
    const api = new WorkflowApi(scope, "Api", iam);
    api.httpApi.addRoutes({
      path: "/open",
      methods: [HttpMethod.GET],
      integration: new HttpLambdaIntegration("Open", iam.handler),
    });

    // Act
    const unsigned = routesNotAuthorizedBy(Template.fromStack(scope), "AWS_IAM");

    // Assess
    expect(unsigned).toEqual(["GET /open"]);
  });

  it("switch to a Lambda token authorizer, with the REST API's input and IAM policy answers", () => {
    // Act
    const token = synthesize({ apiAuthorization: "token", apiTokenAuthorizerArn: AUTHORIZER_ARN });
    const authorizers = Object.entries(
      token.template.findResources("AWS::ApiGatewayV2::Authorizer"),
    );

    // Assess
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] as [string, Resource];
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: "REQUEST",
      AuthorizerPayloadFormatVersion: "1.0",
      IdentitySource: ["$request.header.Authorization"],
      AuthorizerResultTtlInSeconds: 300,
    });
    expect(authorizer.Properties.EnableSimpleResponses).toBeUndefined();
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(AUTHORIZER_ARN);
    token.template.hasResourceProperties("AWS::Lambda::Permission", {
      FunctionName: AUTHORIZER_ARN,
      Principal: "apigateway.amazonaws.com",
    });
    expect(routesNotAuthorizedBy(token.template, "CUSTOM", authorizerId)).toEqual([]);
  });

  it("switch to the Cognito user pool's tokens for the given app clients", () => {
    // Act
    const cognito = synthesize({
      apiAuthorization: "cognito",
      apiUserPoolArn: USER_POOL_ARN,
      apiUserPoolClientIds: USER_POOL_CLIENT_IDS.join(","),
    });
    const authorizers = Object.entries(
      cognito.template.findResources("AWS::ApiGatewayV2::Authorizer"),
    );

    // Assess
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0] as [string, Resource];
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: "JWT",
      IdentitySource: ["$request.header.Authorization"],
      JwtConfiguration: {
        Audience: USER_POOL_CLIENT_IDS,
        Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
      },
    });
    expect(routesNotAuthorizedBy(cognito.template, "JWT", authorizerId)).toEqual([]);
  });
});

describe("the integration", () => {
  it("sends every route to the api function as a payload format 1.0 proxy event", () => {
    // Act
    const integrations = Object.entries(
      template.findResources("AWS::ApiGatewayV2::Integration"),
    ) as Array<[string, Resource]>;

    // Assess
    expect(integrations).toHaveLength(1);
    const [integrationId, integration] = integrations[0] as [string, Resource];
    expect(integration.Properties).toMatchObject({
      IntegrationType: "AWS_PROXY",
      IntegrationUri: { "Fn::GetAtt": [logicalId(stack.apiFunction), "Arn"] },
      PayloadFormatVersion: "1.0",
    });
    for (const route of routes()) {
      expect(JSON.stringify(route.Properties.Target), String(route.Properties.RouteKey)).toContain(
        integrationId,
      );
    }
  });

  it("waits longer than the function may run, so a slow request ends with the function's timeout", () => {
    // Act
    const integration = Object.values(
      template.findResources("AWS::ApiGatewayV2::Integration"),
    )[0] as Resource;
    const fn = template.findResources("AWS::Lambda::Function")[logicalId(stack.apiFunction)];

    // Assess
    // Without TimeoutInMillis, HTTP APIs wait 30 s, their maximum.
    expect(integration.Properties.TimeoutInMillis).toBeUndefined();
    expect(fn?.Properties.Timeout).toBe(29);
  });

  it("lets API Gateway invoke the function with one permission for the whole API", () => {
    // Act
    const permissions = Object.values(template.findResources("AWS::Lambda::Permission")).filter(
      (permission) =>
        permission.Properties.Principal === "apigateway.amazonaws.com" &&
        JSON.stringify(permission.Properties.FunctionName).includes(logicalId(stack.apiFunction)),
    );

    // Assess
    expect(permissions).toHaveLength(1);
    const sourceArn = JSON.stringify(permissions[0]?.Properties.SourceArn);
    expect(sourceArn).toContain(logicalId(stack.api.httpApi));
    expect(sourceArn).toContain("/*/*/*");
  });
});

describe("the stage", () => {
  it("logs every request as JSON with its request ids and the gateway's reasons", () => {
    // Act
    const setting = onlyStage().Properties.AccessLogSettings as {
      Format: string;
      DestinationArn: unknown;
    };

    // Assess
    expect(rendered(setting.Format)).toMatchObject({
      requestId: "$context.requestId",
      extendedRequestId: "$context.extendedRequestId",
      lambdaRequestId: "$context.integration.requestId",
      routeKey: "$context.routeKey",
      status: "$context.status",
      functionStatus: "$context.integration.status",
      integrationError: "$context.integration.error",
      authorizerError: "$context.authorizer.error",
      errorMessage: "Forbidden",
    });
    expect(JSON.stringify(setting.DestinationArn)).toContain(logicalId(stack.api.accessLogs));
  });

  it("is v1, deployed on every change, and throttles each route", () => {
    // Act
    const stage = onlyStage();

    // Assess
    expect(stage.Properties).toMatchObject({
      ApiId: { Ref: logicalId(stack.api.httpApi) },
      StageName: "v1",
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it("takes its throttling from the context options", () => {
    // Act
    const throttled = synthesize({ apiThrottlingRateLimit: 5, apiThrottlingBurstLimit: "7" });

    // Assess
    expect(onlyStage(throttled.template).Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: 5,
      ThrottlingBurstLimit: 7,
    });
  });

  it("keeps access logs for the configured retention", () => {
    // Act
    const group = template.findResources("AWS::Logs::LogGroup")[logicalId(stack.api.accessLogs)];

    // Assess
    expect(group?.Properties.RetentionInDays).toBe(30);
  });

  it("gives the URL of the stage, ending in /v1/, as the ApiUrl output", () => {
    // Act
    const output = template.findOutputs("ApiUrl").ApiUrl as { Value: unknown };

    // Assess
    expect(output.Value).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [logicalId(stack.api.httpApi), "ApiEndpoint"] }, "/v1/"]],
    });
  });
});

describe("the API's constructor", () => {
  it("refuses a route declared twice", () => {
    // Prepare
    const route: ApiRoute = { method: "GET", path: "/health" };
    const { scope, props: duplicated } = apiProps({ routes: [route, route] });

    // Act
    const create = () => new WorkflowApi(scope, "Api", duplicated);

    // Assess
    expect(create).toThrow(/route GET \/health is declared twice/);
  });

  it("refuses a token authorizer that is not a Lambda function ARN", () => {
    // Prepare
    const { scope, props: token } = apiProps({
      authorization: { type: "token", authorizerFunctionArn: USER_POOL_ARN },
    });

    // Act
    const create = () => new WorkflowApi(scope, "Api", token);

    // Assess
    expect(create).toThrow(/token authorization needs the ARN of a Lambda function/);
  });

  it("refuses Cognito authorization without an app client, since no token could pass", () => {
    // Prepare
    const { scope, props: cognito } = apiProps({
      authorization: { type: "cognito", userPoolArn: USER_POOL_ARN, userPoolClientIds: [] },
    });

    // Act
    const create = () => new WorkflowApi(scope, "Api", cognito);

    // Assess
    expect(create).toThrow(/Cognito authorization needs at least one app client id/);
  });

  it("refuses an app client id Cognito could not have issued", () => {
    // Prepare
    const { scope, props: cognito } = apiProps({
      authorization: {
        type: "cognito",
        userPoolArn: USER_POOL_ARN,
        userPoolClientIds: ["client/one"],
      },
    });

    // Act
    const create = () => new WorkflowApi(scope, "Api", cognito);

    // Assess
    expect(create).toThrow(/"client\/one" is not a Cognito app client id/);
  });

  it("refuses throttling without a positive rate", () => {
    // Prepare
    const { scope, props: unthrottled } = apiProps({
      throttling: { rateLimit: 0, burstLimit: 10 },
    });

    // Act
    const create = () => new WorkflowApi(scope, "Api", unthrottled);

    // Assess
    expect(create).toThrow(/throttling needs a positive rateLimit/);
  });
});
