/**
 * The error for bad input to holdfast's API.
 *
 * @module
 */
import { HoldfastError } from "./holdfast_error.ts";

/** An argument or option was invalid; nothing was touched. Code `INVALID_ARGUMENT`. */
export class InvalidArgumentError extends HoldfastError {
  readonly code = "INVALID_ARGUMENT";
  /** The name of the offending argument or option. */
  readonly argument: string;
  constructor(argument: string, problem: string, tip: string) {
    super({ message: `Invalid ${argument}: ${problem}`, tip });
    this.argument = argument;
  }
}
