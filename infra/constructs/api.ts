import { Arn, ArnFormat, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import {
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
  PayloadFormatVersion,
} from "aws-cdk-lib/aws-apigatewayv2";
import {
  HttpIamAuthorizer,
  HttpLambdaAuthorizer,
  HttpLambdaResponseType,
  HttpUserPoolAuthorizer,
} from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import { UserPool, UserPoolClient } from "aws-cdk-lib/aws-cognito";
import { type IFunction, Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { ApiRoute } from "#shared/contract";

/** How callers prove who they are. IAM (SigV4) unless a deployment chooses otherwise. */
export type ApiAuthorization =
  | { readonly type: "iam" }
  /**
   * A Lambda authorizer that already exists; it receives the `Authorization` header as
   * `authorizationToken` with the route's `methodArn`, and answers with an IAM policy.
   */
  | { readonly type: "token"; readonly authorizerFunctionArn: string }
  /**
   * An existing Cognito user pool; callers send a token the pool issued to one of these app
   * clients in `Authorization`. The clients are the tokens' audience, which API Gateway checks.
   */
  | {
      readonly type: "cognito";
      readonly userPoolArn: string;
      readonly userPoolClientIds: readonly string[];
    };

export interface ApiThrottling {
  /** Steady-state requests per second the stage allows each route. */
  readonly rateLimit: number;
  /** Requests each route absorbs in a burst above the steady rate. */
  readonly burstLimit: number;
}

export interface WorkflowApiProps {
  /** The function behind every route (Lambda proxy integration). */
  readonly handler: IFunction;
  readonly routes: readonly ApiRoute[];
  readonly authorization: ApiAuthorization;
  readonly throttling: ApiThrottling;
  readonly logRetention: RetentionDays;
}

/** The stage name, and so the first segment of every URL path. */
const STAGE_NAME = "v1";

/**
 * The event the handler reads: payload format 1.0 is the REST API's proxy event
 * (`APIGatewayProxyEvent`), so the handler, its route table and the local gateway stand-in stay
 * as they are. Format 2.0 would save nothing and change every field the handler reads.
 */
const PAYLOAD_FORMAT = PayloadFormatVersion.VERSION_1_0;

/** How long a token authorizer's decision is reused for the same `Authorization` header. */
const TOKEN_AUTHORIZER_CACHE = Duration.minutes(5);

const LAMBDA_FUNCTION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(:[\w$-]+)?$/;
const USER_POOL_ARN =
  /^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool\/[\w-]+_[0-9a-zA-Z]+$/;
/** Cognito's own pattern for app client ids. */
const USER_POOL_CLIENT_ID = /^[\w+]{1,128}$/;

/** A construct prop combination the API cannot be built from. */
export class InvalidApiPropsError extends Error {
  override name = "InvalidApiPropsError";
}

/**
 * The API on API Gateway (an HTTP API): one Lambda proxy route per route of `apiRoutes`, plus a
 * catch-all route so that any other method or path reaches the handler and gets its 404 in the
 * project's error shape; authorization on every route; JSON access logs with request ids; and
 * per-route throttling on the stage. The handler validates every request itself.
 */
export class WorkflowApi extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;
  /** One per route, in the order of `routes`. */
  readonly routes: readonly HttpRoute[];
  /** The `$default` route: requests no route matches, answered by the handler with a 404. */
  readonly unmatchedRoute: HttpRoute;

  constructor(scope: Construct, id: string, props: WorkflowApiProps) {
    validateApi(id, props);
    super(scope, id);

    this.httpApi = new HttpApi(this, "HttpApi", {
      apiName: Stack.of(this).stackName,
      description: "Workflows over CRM records, and their webhook deliveries",
      // The stage below is `v1`, so that URLs carry the version.
      createDefaultStage: false,
    });
    this.accessLogs = new LogGroup(this, "AccessLogs", {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, "Stage", {
      httpApi: this.httpApi,
      stageName: STAGE_NAME,
      autoDeploy: true,
      throttle: { rateLimit: props.throttling.rateLimit, burstLimit: props.throttling.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: accessLogFormat(),
      },
    });

    const authorizer = this.authorizerFor(props.authorization);
    // The integration's timeout stays at the service's maximum (30 s), above the function's own
    // 29 s, so a slow request ends with the function's timeout: logged, and counted as an error.
    const integration = new HttpLambdaIntegration("Handler", props.handler, {
      payloadFormatVersion: PAYLOAD_FORMAT,
      // One invoke permission for the whole API instead of one per route.
      scopePermissionToRoute: false,
    });
    // First, because the integration is created under the first route that uses it: this way
    // its logical id does not depend on the route list.
    this.unmatchedRoute = new HttpRoute(this, "Unmatched", {
      httpApi: this.httpApi,
      routeKey: HttpRouteKey.DEFAULT,
      integration,
      authorizer,
    });
    this.routes = props.routes.map(
      (route) =>
        new HttpRoute(this, `${route.method}${route.path}`, {
          httpApi: this.httpApi,
          routeKey: HttpRouteKey.with(route.path, HttpMethod[route.method]),
          integration,
          authorizer,
        }),
    );
  }

  /** The invoke URL of the stage, ending in `/` so that route paths resolve against it. */
  get url(): string {
    return `${this.httpApi.apiEndpoint}/${this.stage.stageName}/`;
  }

  private authorizerFor(authorization: ApiAuthorization): IHttpRouteAuthorizer {
    switch (authorization.type) {
      case "iam":
        return new HttpIamAuthorizer();
      case "token":
        return new HttpLambdaAuthorizer(
          "TokenAuthorizer",
          // The authorizer lives in the stack's account and region, so the stack can let API
          // Gateway invoke it.
          LambdaFunction.fromFunctionAttributes(this, "AuthorizerFunction", {
            functionArn: authorization.authorizerFunctionArn,
            sameEnvironment: true,
          }),
          {
            // IAM policy answers use payload format 1.0, the REST API's authorizer input, so a
            // REST token authorizer keeps working.
            responseTypes: [HttpLambdaResponseType.IAM],
            identitySource: ["$request.header.Authorization"],
            resultsCacheTtl: TOKEN_AUTHORIZER_CACHE,
          },
        );
      case "cognito": {
        const { region } = Arn.split(authorization.userPoolArn, ArnFormat.SLASH_RESOURCE_NAME);
        return new HttpUserPoolAuthorizer(
          "CognitoAuthorizer",
          UserPool.fromUserPoolArn(this, "UserPool", authorization.userPoolArn),
          {
            userPoolClients: authorization.userPoolClientIds.map((clientId, index) =>
              UserPoolClient.fromUserPoolClientId(this, `UserPoolClient${index + 1}`, clientId),
            ),
            userPoolRegion: region,
          },
        );
      }
    }
  }
}

/**
 * One JSON object per request: who called what, the outcome, the ids to follow it by (the Lambda
 * request id leads to the function's log lines and X-Ray trace), and why the gateway refused it.
 */
function accessLogFormat(): AccessLogFormat {
  const fields = JSON.stringify({
    requestId: "$context.requestId",
    extendedRequestId: "$context.extendedRequestId",
    lambdaRequestId: "$context.integration.requestId",
    requestTime: "$context.requestTime",
    httpMethod: "$context.httpMethod",
    routeKey: "$context.routeKey",
    path: "$context.path",
    status: "$context.status",
    protocol: "$context.protocol",
    responseLength: "$context.responseLength",
    responseLatency: "$context.responseLatency",
    integrationLatency: "$context.integration.latency",
    functionStatus: "$context.integration.status",
    integrationStatus: "$context.integration.integrationStatus",
    integrationError: "$context.integration.error",
    authorizerError: "$context.authorizer.error",
    sourceIp: "$context.identity.sourceIp",
    caller: "$context.identity.caller",
    userArn: "$context.identity.userArn",
    userAgent: "$context.identity.userAgent",
    errorType: "$context.error.responseType",
  });
  // messageString is already a quoted JSON string, so it goes in unquoted.
  return AccessLogFormat.custom(
    `${fields.slice(0, -1)},"errorMessage":$context.error.messageString}`,
  );
}

function validateApi(id: string, props: WorkflowApiProps): void {
  const seen = new Set<string>();
  for (const route of props.routes) {
    const key = `${route.method} ${route.path}`;
    if (seen.has(key)) throw new InvalidApiPropsError(`${id}: route ${key} is declared twice`);
    seen.add(key);
  }
  const { rateLimit, burstLimit } = props.throttling;
  if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) {
    throw new InvalidApiPropsError(
      `${id}: throttling needs a positive rateLimit and a whole, positive burstLimit (got ${rateLimit} and ${burstLimit})`,
    );
  }
  const { authorization } = props;
  if (
    authorization.type === "token" &&
    !LAMBDA_FUNCTION_ARN.test(authorization.authorizerFunctionArn)
  ) {
    throw new InvalidApiPropsError(
      `${id}: token authorization needs the ARN of a Lambda function, got "${authorization.authorizerFunctionArn}"`,
    );
  }
  if (authorization.type === "cognito") {
    if (!USER_POOL_ARN.test(authorization.userPoolArn)) {
      throw new InvalidApiPropsError(
        `${id}: Cognito authorization needs the ARN of a user pool, got "${authorization.userPoolArn}"`,
      );
    }
    if (authorization.userPoolClientIds.length === 0) {
      throw new InvalidApiPropsError(
        `${id}: Cognito authorization needs at least one app client id: API Gateway accepts only tokens issued to the clients it is given`,
      );
    }
    const invalid = authorization.userPoolClientIds.find((c) => !USER_POOL_CLIENT_ID.test(c));
    if (invalid !== undefined) {
      throw new InvalidApiPropsError(
        `${id}: "${invalid}" is not a Cognito app client id (letters, digits, _ and +, at most 128)`,
      );
    }
  }
}
