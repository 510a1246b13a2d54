/**
 * The error for bad input to holdfast's API.
 *
 * @module
 */
import { HoldfastError } from "./holdfast_error.ts";

/** An argument or option was invalid; nothing was touched. Code `INVALID_ARGUMENT`. */
export class InvalidArgumentError extends HoldfastError {
  /** Always `"INVALID_ARGUMENT"`. */
  readonly code = "INVALID_ARGUMENT";
  /** The name of the offending argument or option. */
  readonly argument: string;
  /**
   * Builds the message `Invalid <argument>: <problem>` with `tip` as its Tip.
   *
   * @param argument the argument or option at fault
   * @param problem what is wrong with it
   * @param tip what to pass instead
   */
  constructor(argument: string, problem: string, tip: string) {
    super({ message: `Invalid ${argument}: ${problem}`, tip });
    this.argument = argument;
  }
}
