/**
 * The local toolchain runs on Node 20.18 and later, but Lambda runs Node 24, and the AWS SDK
 * warns at every start on a Node it will stop supporting. On such a Node the local tools say so
 * once, in one line, instead of the SDK's paragraph.
 */

/** The oldest Node major that the AWS SDK keeps supporting after early 2027. */
const SDK_SUPPORTED_MAJOR = 22;
/** The Node of the Lambda functions (the stack's runtime). */
const LAMBDA_NODE_MAJOR = 24;

/** Prints one line when this Node is older than the AWS SDK supports, and quiets the SDK's own. */
export function noteOldNode(version = process.version): void {
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (!(major < SDK_SUPPORTED_MAJOR)) return;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  console.error(
    `Note: Node ${version} is past its end of life and AWS SDK releases from 2027 need Node ${SDK_SUPPORTED_MAJOR}+; Lambda runs Node ${LAMBDA_NODE_MAJOR}, and so can this (CI tests 20 and 24).`,
  );
}
