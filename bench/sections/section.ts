/** What every section is given. */
export interface SectionContext {
  /** The shortened run: seconds instead of minutes, to prove the harness works. */
  readonly quick: boolean;
  /** Prints a progress or result line. */
  log(line: string): void;
}
