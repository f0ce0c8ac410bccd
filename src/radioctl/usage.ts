import { InvalidArgumentError } from 'commander';

/** A bad flag value is a usage error (exit 2): commander only treats InvalidArgumentError so. */
export function usage<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
