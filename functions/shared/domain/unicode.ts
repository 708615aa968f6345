/**
 * Text that UTF-8 cannot carry. JSON can spell a UTF-16 surrogate without its pair (`"\ud800"`),
 * and JavaScript strings hold one, but no UTF-8 text does: DynamoDB, which stores strings as
 * UTF-8, and every receiver would have to refuse it or change it.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `text` holds a surrogate without its pair. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}
