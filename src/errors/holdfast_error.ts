/**
 * The base of every error holdfast throws.
 *
 * @module
 */

/** Fields every {@linkcode HoldfastError} is built from. */
export interface HoldfastErrorInit {
  /** What went wrong, in one sentence, naming the paths and holder involved. */
  message: string;
  /** One line telling the reader what to do next. */
  tip: string;
  /** The detailed troubleshooting text returned by `help()`. */
  help?: string;
  /** The underlying error (usually the OS error). */
  cause?: unknown;
}

/**
 * Base class of all holdfast errors.
 *
 * Guarantees: `code` is a stable string callers may switch on; the message ends with a line
 * `Tip: ...` saying what to do next; `help()` returns the longer troubleshooting text; `cause`
 * keeps the underlying error. Subclasses add the paths and the holder involved.
 */
export abstract class HoldfastError extends Error {
  /** Stable machine-readable code, e.g. `"LOCK_TIMEOUT"`. */
  abstract readonly code: string;
  /** The one-line advice also printed at the end of the message. */
  readonly tip: string;
  readonly #help: string;

  /** Builds the message from `init.message` and `init.tip`; keeps `cause`. */
  constructor(init: HoldfastErrorInit) {
    super(
      `${init.message}\nTip: ${init.tip}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = new.target.name;
    this.tip = init.tip;
    this.#help = init.help ?? init.tip;
  }

  /** Detailed troubleshooting text: causes, commands to run, and how to recover. */
  help(): string {
    return this.#help;
  }
}
