/** Where the local runtime's own components report failures that no caller can catch. */
export type ErrorReporter = (message: string, error: unknown) => void;

const levels = ["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL", "SILENT"];

/**
 * Writes failures as one JSON line on stderr, like the functions' Powertools logs, unless
 * `logLevel` is above ERROR (SILENT).
 */
export function errorReporter(logLevel = "INFO"): ErrorReporter {
  const silent = levels.indexOf(logLevel.toUpperCase()) > levels.indexOf("ERROR");
  return (message, error) => {
    if (silent) return;
    process.stderr.write(
      `${JSON.stringify({
        level: "ERROR",
        message,
        service: "local-runtime",
        timestamp: new Date().toISOString(),
        error:
          error instanceof Error
            ? { name: error.name, message: error.message, stack: error.stack }
            : error,
      })}\n`,
    );
  };
}
