import { describe, expect, it } from "vitest";
import {
  EventStreamSerde,
  EventStreamsNotBundledError,
  eventStreamSerdeProvider,
} from "#adapters/without-event-streams";

describe("the event-stream codec the function bundles leave out", () => {
  it("refuses to build a serde, naming why", () => {
    // Act
    const build = () => new EventStreamSerde();

    // Assess
    expect(build).toThrow(EventStreamsNotBundledError);
    expect(build).toThrow(/leaves the codec out \(infra\/function-bundling\.ts\)/);
  });

  it("refuses to provide a marshaller", () => {
    // Act
    const provide = () => eventStreamSerdeProvider();

    // Assess
    expect(provide).toThrow(EventStreamsNotBundledError);
  });
});
