import { expect, it } from "vitest";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "#adapters/webhook-client";
import { TEST_ACTION_RESPONSE_TIMEOUT_MS } from "#app/test-action";
import { API_TIME_LIMIT_SECONDS } from "#shared/contract";

/** The webhook client ends a send at the latest a second after its connect and response timeouts. */
const CLIENT_BACKSTOP_MS = 1_000;

it("ends the test action's longest wait for a receiver seconds before the API's time limit", () => {
  // Act
  const longestSendMs =
    DEFAULT_CONNECT_TIMEOUT_MS + TEST_ACTION_RESPONSE_TIMEOUT_MS + CLIENT_BACKSTOP_MS;

  // Assess: what is left covers reading the workflow, the record and the app before sending
  expect(API_TIME_LIMIT_SECONDS * 1000 - longestSendMs).toBeGreaterThanOrEqual(4_000);
  expect(TEST_ACTION_RESPONSE_TIMEOUT_MS).toBeGreaterThanOrEqual(15_000);
});
