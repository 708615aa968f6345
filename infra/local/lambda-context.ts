import { randomBytes, randomUUID } from "node:crypto";
import type { Context } from "aws-lambda";
import { localAccountId, localRegion } from "./net.ts";

/** The Lambda context of one local invocation of `functionName`, which must end by `deadline`. */
export function lambdaContext(
  functionName: string,
  deadline: number,
  awsRequestId: string = randomUUID(),
): Context {
  const callbackStyle = () => {
    throw new Error("callback-style completion is not supported; return a promise");
  };
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "/");
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${localRegion}:${localAccountId}:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString("hex")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: callbackStyle,
    fail: callbackStyle,
    succeed: callbackStyle,
  };
}
