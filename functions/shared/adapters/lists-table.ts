import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { RecordWrite } from "#adapters/records-table";
import type { ContactList } from "#domain/forms-and-lists";

const LIST_SK = "LIST";
/** One counter item hands out list ids: numbers, as HubSpot's list ids are. */
const COUNTER_KEY = { pk: "list-counter", sk: "COUNTER" };

/**
 * Lists of contacts, kept in the records table beside the contacts whose memberships they
 * count: one small item per list (`list#<id>`, `LIST`) that lives as long as the list, and one
 * counter. Their sort keys keep them out of the enrollment function's stream.
 */
export class ListsTable {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Creates an empty list under the next list id. */
  async create(name: string, now: number): Promise<ContactList> {
    const { Attributes } = await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: COUNTER_KEY,
        UpdateExpression: "ADD lastListId :one",
        ExpressionAttributeValues: { ":one": 1 },
        ReturnValues: "UPDATED_NEW",
      }),
    );
    const list: ContactList = {
      listId: String(Attributes?.lastListId),
      name,
      size: 0,
      createdAt: now,
    };
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...listKey(list.listId), ...list },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return list;
  }

  async get(listId: string): Promise<ContactList | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: listKey(listId), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...list } = Item;
    return list as ContactList;
  }

  /**
   * Writes a contact together with the move of a list's size by `delta`, in one transaction, so
   * the size counts exactly the contacts whose memberships were written. Only membership changes
   * pay for a transaction: the functions that write records otherwise never bundle it.
   */
  withSizeChange(listId: string, delta: 1 | -1): RecordWrite {
    return async (put) => {
      await this.documents.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: put },
            {
              Update: {
                TableName: this.tableName,
                Key: listKey(listId),
                UpdateExpression: "ADD #size :delta",
                ConditionExpression: "attribute_exists(pk)",
                ExpressionAttributeNames: { "#size": "size" },
                ExpressionAttributeValues: { ":delta": delta },
              },
            },
          ],
        }),
      );
    };
  }
}

function listKey(listId: string) {
  return { pk: `list#${listId}`, sk: LIST_SK };
}
