import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { conditionally } from "#adapters/dynamo-errors";
import { ConflictError, StaleStateError } from "#domain/errors";
import type { PreviousSecret } from "#domain/workflow";

/** A signing app: the client secret signs its webhooks. */
export interface App {
  readonly appId: string;
  readonly name: string;
  readonly clientSecret: string;
  /** The secret before the last rotation, which signs too until it expires. */
  readonly previousClientSecret?: PreviousSecret;
  readonly createdAt: number;
}

const SK = "APP";

/** Apps, keyed by id. Client secrets rest encrypted by the table's key. */
export class AppsTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(app: App): Promise<void> {
    try {
      await conditionally(`app ${app.appId} exists`, () =>
        this.documents.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { pk: app.appId, sk: SK, ...app },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        ),
      );
    } catch (error) {
      if (error instanceof StaleStateError) throw new ConflictError(error.message);
      throw error;
    }
  }

  async get(appId: string): Promise<App | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: appId, sk: SK },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...app } = Item;
    return app as App;
  }

  /**
   * Replaces the client secret of an app that still has `expected` as its secret, keeping
   * `previous`; a StaleStateError when the app is gone or its secret changed meanwhile.
   */
  async replaceSecret(
    appId: string,
    expected: string,
    clientSecret: string,
    previous: PreviousSecret,
  ): Promise<void> {
    await conditionally(`the secret of app ${appId} changed or the app is gone`, () =>
      this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: appId, sk: SK },
          UpdateExpression: "SET clientSecret = :secret, previousClientSecret = :previous",
          ConditionExpression: "attribute_exists(pk) AND clientSecret = :expected",
          ExpressionAttributeValues: {
            ":secret": clientSecret,
            ":previous": previous,
            ":expected": expected,
          },
        }),
      ),
    );
  }
}
