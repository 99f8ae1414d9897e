// Catching a typed error in a pure test: the FleetError a call throws, or a failure when it throws none.
import { FleetError } from '../../daemon/core/errors.ts';

export function thrown(fn: () => unknown): FleetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FleetError) return err;
    throw err;
  }
  throw new Error('expected a FleetError');
}
