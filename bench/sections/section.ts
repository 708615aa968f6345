/** What every section is given. */
export interface SectionContext {
  /** The shortened run: seconds instead of minutes, to prove the harness works. */
  readonly quick: boolean;
  /** Prints a progress or result line. */
  log(line: string): void;
}

/** A section's sizes for the full run and for the shortened one. */
export interface RunSizes<T> {
  readonly full: T;
  readonly quick: T;
}

/** The sizes for this run. */
export function sizesFor<T>(context: SectionContext, sizes: RunSizes<T>): T {
  return context.quick ? sizes.quick : sizes.full;
}
