import { App } from "aws-cdk-lib";
import { addWorkflowWebhooks } from "#infra/stack";

/** The CDK app that cdk.json runs. */
addWorkflowWebhooks(new App());
