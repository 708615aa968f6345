import { Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import {
  AccessLogField,
  AccessLogFormat,
  AuthorizationType,
  CognitoUserPoolsAuthorizer,
  EndpointType,
  type IAuthorizer,
  type JsonSchema,
  LambdaIntegration,
  LogGroupLogDestination,
  type Method,
  MethodLoggingLevel,
  type Model,
  ResponseType,
  RestApi,
  TokenAuthorizer,
} from "aws-cdk-lib/aws-apigateway";
import { UserPool } from "aws-cdk-lib/aws-cognito";
import { type IFunction, Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { z } from "zod";
import type { ApiRoute, RequestBodyName } from "#shared/contract";

/** How callers prove who they are. IAM (SigV4) unless a deployment chooses otherwise. */
export type ApiAuthorization =
  | { readonly type: "iam" }
  /** A Lambda token authorizer that already exists; it reads the `Authorization` header. */
  | { readonly type: "token"; readonly authorizerFunctionArn: string }
  /** An existing Cognito user pool; callers send an ID token in `Authorization`. */
  | { readonly type: "cognito"; readonly userPoolArn: string };

export interface ApiThrottling {
  /** Steady-state requests per second for the whole stage. */
  readonly rateLimit: number;
  /** Requests the stage absorbs in a burst above the steady rate. */
  readonly burstLimit: number;
}

export interface WorkflowApiProps {
  /** The function behind every route (Lambda proxy integration). */
  readonly handler: IFunction;
  readonly routes: readonly ApiRoute[];
  /** The schemas the handler validates request bodies with; the models are generated from them. */
  readonly requestBodies: Readonly<Record<RequestBodyName, z.ZodType>>;
  readonly authorization: ApiAuthorization;
  readonly throttling: ApiThrottling;
  readonly logRetention: RetentionDays;
}

/** The stage name, and so the first segment of every URL path. */
const STAGE_NAME = "v1";

// Gateway response templates are plain substitution, not VTL. `messageString` arrives already
// quoted; `validationErrorString` arrives escaped but unquoted.
const API_GATEWAY_MESSAGE = "$context.error.messageString";
const VALIDATION_MESSAGE = '"$context.error.validationErrorString"';

/**
 * The errors API Gateway answers itself, with the codes the handler uses for the same statuses
 * (functions/api/http.ts), so a client sees one error vocabulary.
 */
const GATEWAY_ERRORS: ReadonlyArray<readonly [ResponseType, string, string]> = [
  [ResponseType.BAD_REQUEST_BODY, "invalid_request", VALIDATION_MESSAGE],
  [ResponseType.BAD_REQUEST_PARAMETERS, "invalid_request", VALIDATION_MESSAGE],
  [ResponseType.REQUEST_TOO_LARGE, "payload_too_large", API_GATEWAY_MESSAGE],
  [ResponseType.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", API_GATEWAY_MESSAGE],
  [ResponseType.UNAUTHORIZED, "unauthorized", API_GATEWAY_MESSAGE],
  [ResponseType.MISSING_AUTHENTICATION_TOKEN, "unauthorized", API_GATEWAY_MESSAGE],
  [ResponseType.EXPIRED_TOKEN, "unauthorized", API_GATEWAY_MESSAGE],
  [ResponseType.INVALID_SIGNATURE, "unauthorized", API_GATEWAY_MESSAGE],
  [ResponseType.ACCESS_DENIED, "forbidden", API_GATEWAY_MESSAGE],
  [ResponseType.THROTTLED, "throttled", API_GATEWAY_MESSAGE],
  [ResponseType.DEFAULT_4XX, "request_rejected", API_GATEWAY_MESSAGE],
  [ResponseType.DEFAULT_5XX, "internal_error", API_GATEWAY_MESSAGE],
];

const LAMBDA_FUNCTION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(:[\w$-]+)?$/;
const USER_POOL_ARN =
  /^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool\/[\w-]+_[0-9a-zA-Z]+$/;

/**
 * The HTTP API on API Gateway (REST): one Lambda proxy method per route of `apiRoutes`,
 * authorization on every method, request bodies validated against JSON Schema models generated
 * from the handler's own zod schemas, JSON access logs with request ids, execution logs (no
 * request or response bodies: they carry secrets), X-Ray, stage throttling, and API Gateway's
 * own errors in the project's `{"error": {"code", "message"}}` shape.
 */
export class WorkflowApi extends Construct {
  readonly restApi: RestApi;
  readonly accessLogs: LogGroup;
  /** The log group API Gateway writes execution logs to, created first so it has a retention. */
  readonly executionLogs: LogGroup;
  /** One per route, in the order of `routes`. */
  readonly methods: readonly Method[];

  constructor(scope: Construct, id: string, props: WorkflowApiProps) {
    validateApi(id, props);
    super(scope, id);

    this.accessLogs = new LogGroup(this, "AccessLogs", {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const authorizer = this.authorizerFor(props.authorization);
    this.restApi = new RestApi(this, "RestApi", {
      restApiName: Stack.of(this).stackName,
      description: "Workflows over CRM records, and their webhook deliveries",
      // Callers are servers, mostly in-region: no CloudFront distribution in front.
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      // Execution logging needs the account-level CloudWatch role of API Gateway.
      cloudWatchRole: true,
      defaultMethodOptions: authorizer
        ? { authorizationType: authorizer.authorizationType, authorizer }
        : { authorizationType: AuthorizationType.IAM },
      deployOptions: {
        stageName: STAGE_NAME,
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        accessLogFormat: accessLogFormat(),
        loggingLevel: MethodLoggingLevel.INFO,
        // Full request and response logging would copy client secrets and API keys into logs.
        dataTraceEnabled: false,
        tracingEnabled: true,
        throttlingRateLimit: props.throttling.rateLimit,
        throttlingBurstLimit: props.throttling.burstLimit,
      },
    });
    this.executionLogs = new LogGroup(this, "ExecutionLogs", {
      logGroupName: `API-Gateway-Execution-Logs_${this.restApi.restApiId}/${STAGE_NAME}`,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.restApi.deploymentStage.node.addDependency(this.executionLogs);

    this.addErrorResponses();
    this.methods = this.addRoutes(props);
    this.acknowledgeFindings(props.authorization);
  }

  /** The invoke URL of the stage, ending in `/`. */
  get url(): string {
    return this.restApi.url;
  }

  private authorizerFor(authorization: ApiAuthorization): IAuthorizer | undefined {
    switch (authorization.type) {
      case "iam":
        return undefined;
      case "token":
        return new TokenAuthorizer(this, "TokenAuthorizer", {
          // The authorizer lives in the stack's account and region, so the stack can let API
          // Gateway invoke it.
          handler: LambdaFunction.fromFunctionAttributes(this, "AuthorizerFunction", {
            functionArn: authorization.authorizerFunctionArn,
            sameEnvironment: true,
          }),
          resultsCacheTtl: Duration.minutes(5),
        });
      case "cognito":
        return new CognitoUserPoolsAuthorizer(this, "CognitoAuthorizer", {
          cognitoUserPools: [UserPool.fromUserPoolArn(this, "UserPool", authorization.userPoolArn)],
        });
    }
  }

  private addRoutes(props: WorkflowApiProps): Method[] {
    const integration = new LambdaIntegration(props.handler, {
      proxy: true,
      // One invoke permission for the whole API instead of one per method and path.
      scopePermissionToMethod: false,
    });
    const models = new Map<RequestBodyName, Model>();
    const modelFor = (body: RequestBodyName): Model => {
      let model = models.get(body);
      if (model === undefined) {
        const modelName = `${body.charAt(0).toUpperCase()}${body.slice(1)}Body`;
        model = this.restApi.addModel(modelName, {
          modelName,
          contentType: "application/json",
          schema: requestBodySchema(props.requestBodies[body], `${body} request body`),
        });
        models.set(body, model);
      }
      return model;
    };

    // Path parameters are declared required and checked along with bodies, so a method never
    // runs without the values its route promises.
    const validator = this.restApi.addRequestValidator("Validator", {
      requestValidatorName: "body-and-parameters",
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    return props.routes.map((route) => {
      const requestParameters = Object.fromEntries(
        pathParameters(route.path).map((name) => [`method.request.path.${name}`, true]),
      );
      return this.restApi.root.resourceForPath(route.path).addMethod(route.method, integration, {
        requestValidator: validator,
        requestParameters,
        requestModels:
          route.body === undefined ? undefined : { "application/json": modelFor(route.body) },
      });
    });
  }

  /** API Gateway's own refusals (bad body, auth, throttling, its faults) in the project's shape. */
  private addErrorResponses(): void {
    for (const [type, code, message] of GATEWAY_ERRORS) {
      this.restApi.addGatewayResponse(pascal(type.responseType), {
        type,
        templates: { "application/json": `{"error":{"code":"${code}","message":${message}}}` },
      });
    }
  }

  private acknowledgeFindings(authorization: ApiAuthorization): void {
    const cloudWatchRole = this.restApi.node.tryFindChild("CloudWatchRole");
    if (cloudWatchRole !== undefined) {
      Validations.of(cloudWatchRole).acknowledge({
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        reason:
          "API Gateway's account-wide logging role; AWS maintains this policy for exactly this use, and it covers the execution log groups API Gateway names itself.",
      });
    }
    Validations.of(this.restApi.deploymentStage).acknowledge({
      id: "AwsSolutions-APIG3",
      reason:
        "Every method requires SigV4 (or token/Cognito) authorization and the stage is throttled; a WAFv2 web ACL can be associated when the API faces untrusted networks, at its own cost.",
    });
    if (authorization.type !== "cognito") {
      Validations.of(this.restApi).acknowledge({
        id: "AwsSolutions-COG4",
        reason: `Methods use ${authorization.type === "iam" ? "IAM (SigV4)" : "a Lambda token"} authorization, chosen by the apiAuthorization context option; Cognito is one of its choices.`,
      });
    }
  }
}

/**
 * The JSON Schema (draft 4, as API Gateway requires) of a request body, in CDK's `JsonSchema`
 * spelling: `$schema` becomes `schema`, `$ref` becomes `ref`, `$defs` becomes `definitions`.
 * Refinements have no JSON Schema form, so the model is a looser superset of the zod schema and
 * the handler stays the authority.
 */
export function requestBodySchema(schema: z.ZodType, title: string): JsonSchema {
  const generated = z.toJSONSchema(schema, { target: "draft-04", io: "input" });
  return { ...(toCdkKeywords(generated) as JsonSchema), title };
}

/** `BAD_REQUEST_BODY` → `BadRequestBody`. */
function pascal(upperSnake: string): string {
  return upperSnake
    .toLowerCase()
    .replace(/(^|_)([a-z0-9])/g, (_match, _sep, letter: string) => letter.toUpperCase());
}

/** `/workflows/{workflowId}/actions/{actionId}/test` → `["workflowId", "actionId"]`. */
function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? "");
}

/** Keywords whose value is an object keyed by names the schema's author chose. */
const NAMED_CHILDREN = new Set([
  "properties",
  "patternProperties",
  "definitions",
  "$defs",
  "dependencies",
]);
const RENAMED_KEYWORDS: Readonly<Record<string, string>> = {
  $schema: "schema",
  $ref: "ref",
  $id: "id",
  $defs: "definitions",
};

function toCdkKeywords(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toCdkKeywords);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) => {
      if (key === "$ref" && typeof child === "string") {
        return ["ref", child.replace("#/$defs/", "#/definitions/")];
      }
      const renamed = RENAMED_KEYWORDS[key] ?? key;
      if (NAMED_CHILDREN.has(key) && typeof child === "object" && child !== null) {
        const named = Object.entries(child).map(([name, sub]) => [name, toCdkKeywords(sub)]);
        return [renamed, Object.fromEntries(named)];
      }
      return [renamed, toCdkKeywords(child)];
    }),
  );
}

/** One JSON object per request: who called what, the outcome, and the ids to follow it by. */
function accessLogFormat(): AccessLogFormat {
  const fields = JSON.stringify({
    requestId: AccessLogField.contextRequestId(),
    extendedRequestId: AccessLogField.contextExtendedRequestId(),
    lambdaRequestId: AccessLogField.contextAwsEndpointRequestId(),
    xrayTraceId: AccessLogField.contextXrayTraceId(),
    requestTime: AccessLogField.contextRequestTime(),
    httpMethod: AccessLogField.contextHttpMethod(),
    resourcePath: AccessLogField.contextResourcePath(),
    path: AccessLogField.contextPath(),
    status: AccessLogField.contextStatus(),
    protocol: AccessLogField.contextProtocol(),
    responseLength: AccessLogField.contextResponseLength(),
    responseLatency: AccessLogField.contextResponseLatency(),
    integrationLatency: AccessLogField.contextIntegrationLatency(),
    integrationStatus: AccessLogField.contextIntegrationStatus(),
    sourceIp: AccessLogField.contextIdentitySourceIp(),
    caller: AccessLogField.contextIdentityCaller(),
    userArn: AccessLogField.contextIdentityUserArn(),
    userAgent: AccessLogField.contextIdentityUserAgent(),
    errorType: AccessLogField.contextErrorResponseType(),
    validationError: AccessLogField.contextErrorValidationErrorString(),
  });
  // messageString is already a quoted JSON string, so it goes in unquoted.
  return AccessLogFormat.custom(
    `${fields.slice(0, -1)},"errorMessage":${AccessLogField.contextErrorMessageString()}}`,
  );
}

function validateApi(id: string, props: WorkflowApiProps): void {
  const seen = new Set<string>();
  for (const route of props.routes) {
    const key = `${route.method} ${route.path}`;
    if (seen.has(key)) throw new Error(`${id}: route ${key} is declared twice`);
    seen.add(key);
    if (route.body !== undefined && props.requestBodies[route.body] === undefined) {
      throw new Error(
        `${id}: route ${key} names request body "${route.body}", which has no schema`,
      );
    }
  }
  const { rateLimit, burstLimit } = props.throttling;
  if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) {
    throw new Error(
      `${id}: throttling needs a positive rateLimit and a whole, positive burstLimit (got ${rateLimit} and ${burstLimit})`,
    );
  }
  const { authorization } = props;
  if (
    authorization.type === "token" &&
    !LAMBDA_FUNCTION_ARN.test(authorization.authorizerFunctionArn)
  ) {
    throw new Error(
      `${id}: token authorization needs the ARN of a Lambda function, got "${authorization.authorizerFunctionArn}"`,
    );
  }
  if (authorization.type === "cognito" && !USER_POOL_ARN.test(authorization.userPoolArn)) {
    throw new Error(
      `${id}: Cognito authorization needs the ARN of a user pool, got "${authorization.userPoolArn}"`,
    );
  }
}
