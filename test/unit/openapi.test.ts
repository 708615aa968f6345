import SwaggerParser from "@apidevtools/swagger-parser";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { pathParameterSchema, requestBodies } from "#domain/request-schemas";
import { apiRoutes } from "#shared/contract";
import {
  buildOpenApiDocument,
  OPENAPI_VERSION,
  openApiDocument,
  UndocumentedRouteError,
} from "../../functions/api/openapi.ts";
import { routeDocs } from "../../functions/api/route-docs.ts";

interface Operation {
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: { content: Record<string, { schema: { $ref: string } }> };
  responses: Record<string, unknown>;
}
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1 by an independent validator", async () => {
    // Prepare
    const document = openApiDocument("https://api.example.com/v1");

    // Act
    // The validator dereferences the document it is given in place: it gets a copy.
    const validated = (await SwaggerParser.validate(structuredClone(document) as never)) as {
      openapi?: string;
      servers?: unknown;
    };

    // Assess
    expect(validated.openapi).toBe(OPENAPI_VERSION);
    expect(validated.servers).toEqual([{ url: "https://api.example.com/v1" }]);
  });

  it.each(apiRoutes.map((route) => [`${route.method} ${route.path}`, route] as const))(
    "has %s, with its path parameters and request body",
    (_key, route) => {
      // Act
      const document = openApiDocument() as unknown as Document;

      // Assess
      const operation = document.paths[route.path]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${route.path} is missing`).toBeDefined();
      const pathNames = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      expect(
        (operation?.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name),
      ).toEqual(pathNames);
      const body = "body" in route ? route.body : undefined;
      if (body === undefined) {
        expect(operation?.requestBody).toBeUndefined();
      } else {
        const ref = operation?.requestBody?.content["application/json"]?.schema.$ref ?? "";
        const schema = document.components.schemas[ref.replace("#/components/schemas/", "")];
        const { $schema: _, ...expected } = z.toJSONSchema(requestBodies[body], { io: "input" });
        expect(schema).toEqual(expected);
        expect(Object.keys(operation?.responses ?? {})).toEqual(
          expect.arrayContaining(["400", "413", "415"]),
        );
      }
    },
  );

  it("lists exactly the routes of the contract", () => {
    // Act
    const document = openApiDocument() as unknown as Document;

    // Assess
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(
      apiRoutes.map((route) => `${route.method} ${route.path}`).sort(),
    );
  });

  it("is refused by the validator when a parameter is not where OpenAPI allows", async () => {
    // Prepare: the check above can fail.
    const document = structuredClone(openApiDocument()) as unknown as Document;
    const [parameter] = document.paths["/apps/{appId}"]?.get?.parameters ?? [];
    if (parameter) parameter.in = "body";

    // Act
    const validation = SwaggerParser.validate(document as never);

    // Assess
    await expect(validation).rejects.toThrow();
  });

  it("refuses to build without the description of a route", () => {
    // Prepare
    const routes = [...apiRoutes, { method: "GET", path: "/reports/{reportId}" } as const];

    // Act
    const build = () =>
      buildOpenApiDocument({
        routes,
        docs: routeDocs,
        requestBodies,
        pathParameterSchema,
        version: "0.0.0",
      });

    // Assess
    expect(build).toThrow(UndocumentedRouteError);
    expect(build).toThrow("route GET /reports/{reportId} has no description");
  });
});
