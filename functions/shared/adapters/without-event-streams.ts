/**
 * What the function bundles find in place of `@smithy/core/event-streams`. The SDK's HTTP
 * protocols import that module on demand, for operations that send or receive an event stream
 * (Transcribe, Bedrock, Kinesis SubscribeToShard...); esbuild cannot tell that the clients here
 * have none, so it bundled the whole codec into every function, and with it every export of the
 * SDK submodules the import reached: about 21 kB of each bundle. DynamoDB, SQS and
 * EventBridge Scheduler have no event-stream operation, so `infra/function-bundling.ts` aliases
 * the module to this one; the tests and the local runtime run unbundled and keep the real one.
 * Should a client that streams events ever be bundled, its first such call fails with
 * {@link EventStreamsNotBundledError}, and the alias must go.
 */

/** Thrown when an SDK call needs the event-stream codec that the function bundles leave out. */
export class EventStreamsNotBundledError extends Error {
  override name = "EventStreamsNotBundledError";

  constructor() {
    super(
      "this SDK call sends or receives an event stream, and the function bundle leaves the codec out (infra/function-bundling.ts)",
    );
  }
}

/** Stands in for the SDK's event-stream serde; the protocol constructs it only for such calls. */
export class EventStreamSerde {
  constructor() {
    throw new EventStreamsNotBundledError();
  }
}

/** Stands in for the SDK's event-stream marshaller provider. */
export function eventStreamSerdeProvider(): never {
  throw new EventStreamsNotBundledError();
}
